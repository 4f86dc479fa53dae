/**
 * Committee figures and the committee line people read (`ferry demo`, `ferry dataset add`):
 * seats are stake units of 10^15 wei selected with p = min(1, tau / W), as sortitionSeats does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { committeeCapture, committeeCaptureForStake, sortitionSeats } from '../crypto/sortition.ts';
import { STAKE_UNIT } from './stake.ts';
import { committeeFigures, committeeSeating } from './committee.ts';

const ETHER = 10n ** 18n;
const FIVE = [ETHER, ETHER, ETHER, ETHER, ETHER];

test('the demo committee: five verifiers of 1000 units, tau 5000, threshold 4000', () => {
  const f = committeeFigures(5000, 4000, 0.2, 5n * ETHER);
  assert.equal(f.model, 'binomial');
  assert.equal(f.totalStakeUnits, '5000');
  // Every verifier holds exactly its 1000 units as seats: 20% of the stake is one verifier,
  // 1000 seats, never 4000; the other four always hold 4000.
  assert.equal(f.capture, 0);
  assert.equal(f.livenessFailure, 0);
  for (const b of [0, 1, 127, 255]) {
    assert.equal(sortitionSeats(new Uint8Array(64).fill(b), 1000n, 5000n, 5000), 1000);
  }
  const s = committeeSeating(5000, 4000, FIVE);
  assert.equal(s.verifiers, 5);
  assert.equal(s.stakeUnits, '5000');
  assert.equal(s.everyVerifierSits, true);
  assert.equal(s.seatsPerVerifier, 1000);
  assert.equal(s.thresholdVerifiers, 4);
  assert.equal(s.expectedVerifiers, 5);
  assert.match(s.text, /^all 5 verifiers sit with 1000 seats each/);
  assert.match(s.text, /4000 of 5000 seats must pass = 4 of 5 verifiers$/);
});

test('tau above the verifier stake: p is 1 as on chain, the figures are exact (0 or 1), not Poisson', () => {
  // 2 verifiers of 1000 units, tau 60000, threshold 1000 (test/devnet-e2e.test.ts).
  const f = committeeFigures(60_000, 1000, 0.2, 2n * ETHER);
  assert.equal(f.model, 'binomial');
  assert.equal(f.capture, 0);
  assert.equal(f.livenessFailure, 0);
  // An adversary holding 20% = 1000 units of 5000 captures a threshold of 1000 seats for sure.
  const sure = committeeFigures(9000, 1000, 0.2, 5n * ETHER);
  assert.equal(sure.capture, 1);
  assert.equal(sure.livenessFailure, 0);
  // An honest 80% short of the threshold never attests.
  const dead = committeeFigures(5000, 4500, 0.2, 5n * ETHER);
  assert.equal(dead.capture, 0);
  assert.equal(dead.livenessFailure, 1);
  const s = committeeSeating(5000, 5001, FIVE);
  assert.equal(s.thresholdVerifiers, null);
  assert.match(s.text, /more than all 5 verifiers hold, no task can be attested/);
});

test('tau below the verifier stake: the binomial model of the sortition rule', () => {
  const f = committeeFigures(10, 7, 0.2, 5n * ETHER);
  assert.equal(f.model, 'binomial');
  const exact = committeeCaptureForStake({ tau: 10, threshold: 7, adversaryStake: 1000n, totalStake: 5000n });
  assert.equal(f.capture, exact.capture);
  assert.equal(f.livenessFailure, exact.livenessFailure);
  assert.ok(f.capture > 0 && f.capture < 1e-2);
  const s = committeeSeating(10, 7, FIVE);
  assert.equal(s.everyVerifierSits, false);
  assert.equal(s.seatsPerVerifier, null);
  // Each verifier sits unless all 1000 of its units miss: 1 - (1 - 0.002)^1000 ~ 1 - e^-2.
  assert.ok(Math.abs(s.expectedVerifiers - 5 * (1 - 0.998 ** 1000)) < 1e-9);
  assert.match(
    s.text,
    /^tau 10 of 5000 stake units .*5 verifiers.*p = 0\.002, about 4\.32 verifier\(s\) sit per task; 7 pass seats decide$/,
  );
  // A fraction threshold is of the task's tau.
  assert.equal(committeeFigures(3000, 2 / 3, 0.2, 3n * ETHER).threshold, 2 / 3);
  assert.equal(committeeFigures(3000, 2 / 3, 0.2, 3n * ETHER).livenessFailure, 0);
});

test('without the stake: Poisson; stake below one unit ignored', () => {
  const f = committeeFigures(10, 7, 0.2, null);
  assert.equal(f.model, 'poisson');
  assert.deepEqual(
    { capture: f.capture, livenessFailure: f.livenessFailure },
    committeeCapture({ tau: 10, threshold: 7, adversary: 0.2 }),
  );
  assert.equal(committeeFigures(10, 7, 0.2, STAKE_UNIT - 1n).model, 'poisson');
  const none = committeeSeating(10, 7, [STAKE_UNIT - 1n]);
  assert.equal(none.verifiers, 0);
  assert.match(none.text, /no active verifier stakes yet/);
  // Unequal stakes: every verifier sits, seats per verifier differ.
  const mixed = committeeSeating(3000, 2000, [ETHER, 2n * ETHER]);
  assert.equal(mixed.everyVerifierSits, true);
  assert.equal(mixed.seatsPerVerifier, null);
  assert.match(
    mixed.text,
    /all 2 verifiers sit with all their stake units as seats.*2000 of 3000 seats must pass$/,
  );
});
