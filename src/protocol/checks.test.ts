import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { TaskInfo } from '../chain/index.ts';
import { sortitionSeats } from '../crypto/sortition.ts';
import { claimAlpha, verifierAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { encodeCanonical, encodeTagged, isFerryError } from '../kernel/index.ts';
import { decodeTaskInput, STAKE_UNIT, seatsFor, stakeUnits, vrfProofMatches } from './checks.ts';
import { decodeEvidence } from './appraisal.ts';

const params = { chainId: 31337n, taskId: 5n, attempt: 1, seed: new Uint8Array(32).fill(7) };

test('vrfProofMatches: true only for the key, alpha, proof and output that belong together', () => {
  const a = vrfKeygen();
  const b = vrfKeygen();
  const alpha = claimAlpha(params);
  const pi = vrfProve(a.sk, alpha);
  const beta = vrfProofToHash(pi);
  assert.equal(vrfProofMatches(a.pk, alpha, pi, beta), true);
  assert.equal(vrfProofMatches(b.pk, alpha, pi, beta), false, 'another key');
  assert.equal(vrfProofMatches(a.pk, verifierAlpha(params), pi, beta), false, 'another alpha');
  const otherBeta = Uint8Array.from(beta);
  otherBeta[0] ^= 1;
  assert.equal(
    vrfProofMatches(a.pk, alpha, pi, otherBeta),
    false,
    'a claimed output that is not the proof’s',
  );
  assert.equal(
    vrfProofMatches(a.pk, alpha, new Uint8Array(80), beta),
    false,
    'malformed proof: false, no throw',
  );
  assert.equal(vrfProofMatches(new Uint8Array(31), alpha, pi, beta), false, 'malformed key: false, no throw');
});

function task(totalVerifierStake: bigint, tau: number): TaskInfo {
  return { totalVerifierStake, tau } as TaskInfo;
}

test('seatsFor: sortition in units of 10^15 wei, stake capped at the total', () => {
  assert.equal(STAKE_UNIT, 10n ** 15n);
  assert.equal(stakeUnits(10n ** 18n), 1000n);
  assert.equal(stakeUnits(10n ** 15n - 1n), 0n);
  const beta = vrfProofToHash(vrfProve(vrfKeygen().sk, verifierAlpha(params)));
  // tau at or above the total: every unit is a seat.
  assert.equal(seatsFor(beta, 10n ** 18n, task(2n * 10n ** 18n, 60_000)), 1000);
  // Below one unit, or no total stake: no seat.
  assert.equal(seatsFor(beta, 10n ** 14n, task(2n * 10n ** 18n, 10)), 0);
  assert.equal(seatsFor(beta, 10n ** 18n, task(0n, 10)), 0);
  // Otherwise exactly the binomial sortition of the units.
  assert.equal(seatsFor(beta, 10n ** 18n, task(5n * 10n ** 18n, 10)), sortitionSeats(beta, 1000n, 5000n, 10));
  // A stake above the snapshot total (stake added after the task) counts as the total.
  assert.equal(seatsFor(beta, 10n ** 19n, task(10n ** 18n, 10)), sortitionSeats(beta, 1000n, 1000n, 10));
});

test('decodeEvidence: the ferry/evidence/v1 object, and nothing else', () => {
  const ev = { kind: 'sim', reportData: new Uint8Array(64).fill(1), body: { x: 1 } };
  const bytes = encodeTagged('ferry/evidence/v1', ev);
  assert.deepEqual(decodeEvidence(bytes), ev);
  assert.throws(
    () => decodeEvidence(encodeTagged('ferry/receipt/v1', ev)),
    (e) => isFerryError(e, 'CBOR_WRONG_DOMAIN'),
  );
  assert.throws(
    () => decodeEvidence(createHash('sha256').update('x').digest()),
    (e) => isFerryError(e) && e.code.startsWith('CBOR_'),
  );
  // A tagged null (found by fuzzing: it used to throw a TypeError) is malformed evidence.
  for (const body of [null, [1, 2], 'x', 7]) {
    assert.throws(
      () => decodeEvidence(encodeTagged('ferry/evidence/v1', body)),
      (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
    );
  }
});

test('decodeTaskInput: inline JSON arguments must hash to the task input hash', () => {
  const hashOf = (args: string[]) =>
    new Uint8Array(createHash('sha256').update(encodeCanonical(args)).digest());
  const args = ['reading', 'a,b', 'ü'];
  const loc = `data:application/json,${encodeURIComponent(JSON.stringify(args))}`;
  assert.deepEqual(decodeTaskInput(loc, hashOf(args)), args);
  assert.deepEqual(decodeTaskInput('', hashOf([])), []);
  const refused = (l: string, h: Uint8Array) =>
    assert.throws(
      () => decodeTaskInput(l, h),
      (e) => isFerryError(e, 'TASK_FAILED'),
    );
  refused(loc, hashOf(['reading'])); // committed to other arguments
  refused('', hashOf(['x'])); // arguments dropped
  refused('https://example.invalid/input', hashOf([]));
  refused('data:application/json,%7Bnot-json', hashOf([]));
  refused(`data:application/json,${encodeURIComponent('[1,2]')}`, hashOf([]));
});
