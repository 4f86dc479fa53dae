// The TCG event log parser: the recorded OVMF boot of test/vectors/image (a real log with four
// banks), logs written by encodeEventLog, and each malformation refused with its code.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isFerryError } from '../../kernel/index.ts';
import {
  EV,
  encodeEventLog,
  eventTypeFromName,
  eventTypeName,
  MAX_EVENT_LOG_BYTES,
  readEventLog,
  replayEventLog,
} from './eventlog.ts';

const VECTOR = JSON.parse(
  readFileSync(new URL('../../../test/vectors/image/ovmf-4m-q35-1cpu-1024mib.json', import.meta.url), 'utf8'),
) as { pcrs: { sha256: Record<string, string> }; eventLog: string };
const RECORDED = new Uint8Array(Buffer.from(VECTOR.eventLog, 'base64'));
const h = (alg: string, s: string | Uint8Array) => createHash(alg).update(s).digest('hex');
const malformed = (e: unknown) => isFerryError(e) && e.code === 'ATTESTATION_MALFORMED';

test('the recorded OVMF log: four banks, 24 events, the sha256 replay is what the guest read', () => {
  const log = readEventLog(RECORDED);
  assert.deepEqual(log.banks, ['sha1', 'sha256', 'sha384', 'sha512']);
  assert.equal(log.events.length, 24);
  for (const e of log.events)
    assert.deepEqual(Object.keys(e.digests).sort(), ['sha1', 'sha256', 'sha384', 'sha512']);
  assert.equal(log.events[0]?.typeName, 'EV_S_CRTM_VERSION');
  assert.deepEqual(
    log.events.filter((e) => e.pcr === 9).map((e) => e.typeName),
    ['EV_EVENT_TAG', 'EV_EVENT_TAG'],
  );
  const replayed = replayEventLog(log.events, 'sha256');
  for (const i of [0, 1, 2, 3, 4, 5, 6, 7, 9])
    assert.equal(replayed[String(i)], VECTOR.pcrs.sha256[String(i)]);
  assert.equal(replayed['8'], undefined, 'a PCR without events is not listed');
  // Each bank replays with its own hash: the sha1 value of PCR 2 (one separator) is SHA1(0^20 ‖ SHA1(0^4)).
  const sep1 = h('sha1', new Uint8Array(4));
  assert.equal(
    replayEventLog(log.events, 'sha1')['2'],
    h('sha1', Buffer.concat([Buffer.alloc(20), Buffer.from(sep1, 'hex')])),
  );
});

test('encodeEventLog writes what readEventLog reads; EV_NO_ACTION is not extended; StartupLocality sets PCR 0', () => {
  const d = (s: string) => ({ sha1: h('sha1', s), sha256: h('sha256', s) });
  const bytes = encodeEventLog(
    ['sha256', 'sha1'],
    [
      {
        pcr: 0,
        type: 'EV_NO_ACTION',
        digests: { sha1: '00'.repeat(20), sha256: '00'.repeat(32) },
        data: Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]),
      },
      { pcr: 0, type: 'EV_S_CRTM_VERSION', digests: d('crtm'), data: new Uint8Array(2) },
      { pcr: 9, type: EV.EVENT_TAG, digests: d('initrd') },
      { pcr: 9, type: 'EV_NO_ACTION', digests: d('ignored') },
      { pcr: 9, type: '0x00001234', digests: d('odd') },
    ],
  );
  const log = readEventLog(bytes);
  assert.deepEqual(log.banks, ['sha256', 'sha1']);
  assert.deepEqual(
    log.events.map((e) => [e.pcr, e.typeName]),
    [
      [0, 'EV_NO_ACTION'],
      [0, 'EV_S_CRTM_VERSION'],
      [9, 'EV_EVENT_TAG'],
      [9, 'EV_NO_ACTION'],
      [9, '0x00001234'],
    ],
  );
  const ext = (alg: string, old: string, dig: string) =>
    h(alg, Buffer.concat([Buffer.from(old, 'hex'), Buffer.from(dig, 'hex')]));
  const r = replayEventLog(log.events, 'sha256');
  assert.equal(r['0'], ext('sha256', `${'00'.repeat(31)}03`, h('sha256', 'crtm')));
  assert.equal(
    r['9'],
    ext('sha256', ext('sha256', '00'.repeat(32), h('sha256', 'initrd')), h('sha256', 'odd')),
  );
  assert.equal(
    replayEventLog(log.events, 'sha384')['9'],
    undefined,
    'a bank the log lacks replays to nothing',
  );
  assert.equal(eventTypeName(0x80000003), 'EV_EFI_BOOT_SERVICES_APPLICATION');
  assert.equal(eventTypeFromName('EV_EFI_BOOT_SERVICES_APPLICATION'), 0x80000003);
  assert.equal(eventTypeFromName('EV_NOT_A_TYPE'), null);
  assert.equal(eventTypeFromName(eventTypeName(0xdeadbeef)), 0xdeadbeef);
});

test('attacker: every malformation is ATTESTATION_MALFORMED, never a partial parse', () => {
  const good = encodeEventLog(
    ['sha256'],
    [{ pcr: 4, type: 'EV_SEPARATOR', digests: { sha256: '11'.repeat(32) } }],
  );
  assert.equal(readEventLog(good).events.length, 1);
  const edit = (f: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    f(b);
    return new Uint8Array(b);
  };
  // Spec ID event: 32-byte header, then the 33-byte TCG_EfiSpecIdEvent (one algorithm); the
  // event record starts at 65: pcr, type, count, alg id (77), digest (79..111), size (111).
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['truncated in the digest', good.subarray(0, 90)],
    ['truncated size field', good.subarray(0, 113)],
    ['one byte too many', Buffer.concat([good, Buffer.from([0])])],
    ['first event not EV_NO_ACTION', edit((b) => b.writeUInt32LE(EV.SEPARATOR, 4))],
    ['first event with a digest', edit((b) => (b[10] = 1))],
    ['no Spec ID signature', edit((b) => (b[32] = 0x73))],
    ['spec version 1', edit((b) => (b[32 + 21] = 1))],
    ['uintnSize 3', edit((b) => (b[32 + 23] = 3))],
    ['no algorithms', edit((b) => b.writeUInt32LE(0, 32 + 24))],
    ['unknown algorithm (SM3)', edit((b) => b.writeUInt16LE(0x12, 32 + 28))],
    ['wrong digest size', edit((b) => b.writeUInt16LE(20, 32 + 30))],
    ['vendor info beyond the event', edit((b) => (b[32 + 32] = 4))],
    ['PCR 24', edit((b) => b.writeUInt32LE(24, 65))],
    ['two digests for one algorithm', edit((b) => b.writeUInt32LE(2, 73))],
    ['no digest', edit((b) => b.writeUInt32LE(0, 73))],
    ['a digest of an algorithm not in the Spec ID event', edit((b) => b.writeUInt16LE(0x0004, 77))],
    ['event size beyond the end', edit((b) => b.writeUInt32LE(1, 111))],
    ['too large', new Uint8Array(MAX_EVENT_LOG_BYTES + 1)],
  ];
  for (const [what, bytes] of cases) assert.throws(() => readEventLog(bytes), malformed, what);
  // A Spec ID event that lists an algorithm twice.
  const twice = encodeEventLog(['sha256', 'sha1'], []);
  const t = Buffer.from(twice);
  t.writeUInt16LE(0x000b, 32 + 32);
  t.writeUInt16LE(32, 32 + 34);
  assert.throws(() => readEventLog(t), malformed, 'an algorithm listed twice');
  assert.throws(() => readEventLog('log' as unknown as Uint8Array), malformed);
});
