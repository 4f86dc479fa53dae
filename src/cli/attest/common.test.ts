import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { invalidAppraisal, PRODUCTION_POLICY } from '../../attestation/policy.ts';
import { isFerryError } from '../../kernel/index.ts';
import type { CommandContext } from '../command.ts';
import { appraisalToJson, exitCodeForAppraisal, loadPolicyOption, nowOption } from './common.ts';

const ctx = (values: CommandContext['values']) => ({ values }) as CommandContext;

test('nowOption accepts zoned ISO 8601 and refuses the rest', () => {
  assert.equal(nowOption(ctx({ now: '2025-07-01T00:00:00Z' })).getTime(), 1751328000000);
  assert.equal(nowOption(ctx({ now: '2025-07-01T02:00:00+02:00' })).getTime(), 1751328000000);
  // Without --now it is the current time: between two readings of the clock, however slow.
  const before = Date.now();
  const now = nowOption(ctx({})).getTime();
  assert.ok(before <= now && now <= Date.now(), 'the current time');
  for (const bad of ['2025-07-01', '2025-07-01T00:00:00', 'yesterday', '2025-13-01T00:00:00Z', '']) {
    assert.throws(
      () => nowOption(ctx({ now: bad })),
      (e) => isFerryError(e, 'USAGE_INVALID_ARGUMENT'),
      bad,
    );
  }
});

test('loadPolicyOption: default production, file, unreadable and invalid files', async () => {
  assert.equal(await loadPolicyOption(ctx({})), PRODUCTION_POLICY);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-policy-'));
  const good = join(dir, 'p.json');
  writeFileSync(good, JSON.stringify({ ...PRODUCTION_POLICY, name: 'mine' }));
  assert.equal((await loadPolicyOption(ctx({ policy: good }))).name, 'mine');
  await assert.rejects(loadPolicyOption(ctx({ policy: join(dir, 'none') })), (e) =>
    isFerryError(e, 'USAGE_INVALID_ARGUMENT'),
  );
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"version":1}');
  await assert.rejects(
    loadPolicyOption(ctx({ policy: bad })),
    (e) => isFerryError(e, 'ATTESTATION_POLICY_INVALID') && e.exitCode === 2,
  );
});

test('appraisalToJson prints exactly the CLI fields; exit code 3 when not accepted', () => {
  const a = invalidAppraisal('tdx', { code: 'ATTESTATION_SIGNATURE_INVALID', message: 'x' });
  const j = appraisalToJson({ ...a, claims: { secret: 'not printed' } });
  assert.deepEqual(Object.keys(j), [
    'kind',
    'valid',
    'accepted',
    'status',
    'tcbStatus',
    'advisoryIds',
    'measurement',
    'reportData',
    'debug',
    'reasons',
  ]);
  assert.equal(exitCodeForAppraisal(a), 3);
  assert.equal(exitCodeForAppraisal({ ...a, accepted: true }), 0);
});
