// Fuzz: the TCG event log parser (readEventLog) and the replay of what it accepts. Seeds: the
// recorded OVMF log of test/vectors/image (four banks) and logs written by encodeEventLog. Every
// failure must be a coded FerryError (ATTESTATION_MALFORMED); what parses must replay in every
// bank it declares and agree with a second parse.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { assertExercised, fuzz, summary } from '../../../test/helpers/fuzz.ts';
import { encodeEventLog, readEventLog, replayEventLog } from './eventlog.ts';

const VECTOR = JSON.parse(
  readFileSync(new URL('../../../test/vectors/image/ovmf-4m-q35-1cpu-1024mib.json', import.meta.url), 'utf8'),
) as { eventLog: string };

const seeds = [
  new Uint8Array(Buffer.from(VECTOR.eventLog, 'base64')),
  encodeEventLog(
    ['sha256'],
    [
      { pcr: 9, type: 'EV_EVENT_TAG', digests: { sha256: 'ab'.repeat(32) }, data: new Uint8Array([1, 2, 3]) },
      { pcr: 4, type: 'EV_SEPARATOR', digests: { sha256: '00'.repeat(32) } },
    ],
  ),
  encodeEventLog(
    ['sha1', 'sha384'],
    [
      {
        pcr: 0,
        type: 'EV_NO_ACTION',
        digests: { sha1: '00'.repeat(20), sha384: '00'.repeat(48) },
        data: new Uint8Array([...Buffer.from('StartupLocality\0', 'latin1'), 3]),
      },
      { pcr: 0, type: 'EV_S_CRTM_VERSION', digests: { sha1: '01'.repeat(20), sha384: '02'.repeat(48) } },
    ],
  ),
];

test('fuzz readEventLog and replayEventLog', (t) => {
  const stats = fuzz('event log', { seed: 0xe71, iterations: 3000, seeds }, (b) => {
    const log = readEventLog(b);
    for (const bank of log.banks) {
      const r = replayEventLog(log.events, bank);
      for (const [i, v] of Object.entries(r)) {
        assert.ok(Number(i) >= 0 && Number(i) <= 23);
        assert.match(v, /^[0-9a-f]+$/);
      }
    }
    assert.equal(readEventLog(b).events.length, log.events.length);
  });
  assertExercised('event log', stats);
  t.diagnostic(summary(stats));
});
