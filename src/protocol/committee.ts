/**
 * What a verifier committee (tau, threshold seats) means on a network (docs/protocol.md §4,
 * §13.8): the capture and liveness-failure probabilities against an adversary's stake share
 * (`committeeFigures`), and how the active verifiers' stakes seat (`committeeSeating`). Seats
 * are stake units of 10^15 wei selected with p = min(1, tau / W), as sortitionSeats does. Used
 * by `ferry dataset add`, `ferry demo` and the network benchmark.
 */
import { type ChainReader, getStakeTotals, listNodes } from '../chain/index.ts';
import { committeeCapture, committeeCaptureForStake, committeeThresholdSeats } from '../crypto/index.ts';
import { STAKE_UNIT } from './stake.ts';

export type CommitteeFigures = {
  tau: number;
  threshold: number;
  adversary: number;
  capture: number;
  livenessFailure: number;
  model: 'poisson' | 'binomial';
  totalStakeUnits?: string;
};

/**
 * The capture and liveness-failure probabilities of a committee (tau, threshold seats) against
 * an adversary with stake fraction `adversary`. With the network's current verifier stake
 * known (W units of 10^15 wei, W < 2^53), the exact binomial model of the sortition rule: every
 * stake unit is a seat with p = min(1, tau / W) (sortitionSeats gives a node all its units as
 * seats when tau >= W, so then the figures are 0 or 1: the committee is every verifier with all
 * its stake). Without it, the Poisson model.
 */
export function committeeFigures(
  tau: number,
  threshold: number,
  adversary: number,
  verifierStakeWei: bigint | null,
): CommitteeFigures {
  const W = verifierStakeWei === null ? 0n : verifierStakeWei / STAKE_UNIT;
  if (W > 0n && W < 2n ** 53n) {
    const A = BigInt(Math.round(adversary * Number(W)));
    if (A < W) {
      // The seat count first (a fraction is of the task's tau), then p clamped at 1 as on chain.
      const t = committeeThresholdSeats({ tau, threshold });
      const s = committeeCaptureForStake({
        tau: Math.min(tau, Number(W)),
        threshold: t,
        adversaryStake: A,
        totalStake: W,
      });
      return { tau, threshold, adversary, ...s, model: 'binomial', totalStakeUnits: W.toString() };
    }
  }
  return { tau, threshold, adversary, ...committeeCapture({ tau, threshold, adversary }), model: 'poisson' };
}

export type CommitteeSeating = {
  /** Active verifiers now. */
  verifiers: number;
  /** Their stake, in units of 10^15 wei (the sortition's seats). */
  stakeUnits: string;
  /** tau >= the verifier stake: every verifier sits, each with all its stake units as seats. */
  everyVerifierSits: boolean;
  /** Each verifier's seats when every verifier sits with the same stake, else null. */
  seatsPerVerifier: number | null;
  /** When every verifier sits with the same stake: how many verifiers' pass votes reach the threshold. */
  thresholdVerifiers: number | null;
  /** Expected number of verifiers holding at least one seat for a task. */
  expectedVerifiers: number;
  /** One line for a person: what tau and the threshold mean on this network. */
  text: string;
};

/**
 * What a committee (tau, threshold seats) means on a network whose active verifiers stake
 * `stakeWei` each: seats are stake units (10^15 wei), each a seat with p = min(1, tau / W), so a
 * verifier with w units holds Binomial(w, p) seats. When tau >= W every verifier sits with all
 * its units; the line then counts verifiers (e.g. "all 5 verifiers sit, 1000 seats each (their
 * stake in units of 10^15 wei); 4000 of 5000 seats must pass = 4 of 5 verifiers").
 */
export function committeeSeating(
  tau: number,
  threshold: number,
  stakeWei: readonly bigint[],
): CommitteeSeating {
  const units = stakeWei.map((w) => w / STAKE_UNIT).filter((w) => w > 0n);
  const W = units.reduce((a, b) => a + b, 0n);
  const n = units.length;
  if (n === 0) {
    return {
      verifiers: 0,
      stakeUnits: '0',
      everyVerifierSits: false,
      seatsPerVerifier: null,
      thresholdVerifiers: null,
      expectedVerifiers: 0,
      text: `no active verifier stakes yet: tau ${tau}, threshold ${threshold} seats (seats are stake units of 10^15 wei)`,
    };
  }
  const every = BigInt(tau) >= W;
  const same = units.every((u) => u === units[0]);
  const per = same ? Number(units[0]) : null;
  const p = every ? 1 : tau / Number(W);
  const expectedVerifiers = units.reduce((a, u) => a + (1 - (1 - p) ** Number(u)), 0);
  if (every) {
    const thresholdVerifiers = per !== null ? Math.ceil(threshold / per) : null;
    const seats = per !== null ? `${per} seats each` : 'all their stake units as seats';
    const need =
      thresholdVerifiers === null
        ? `${threshold} of ${W} seats must pass`
        : thresholdVerifiers > n
          ? `${threshold} of ${W} seats must pass: more than all ${n} verifiers hold, no task can be attested`
          : `${threshold} of ${W} seats must pass = ${thresholdVerifiers} of ${n} verifiers`;
    return {
      verifiers: n,
      stakeUnits: W.toString(),
      everyVerifierSits: true,
      seatsPerVerifier: per,
      thresholdVerifiers: thresholdVerifiers !== null && thresholdVerifiers <= n ? thresholdVerifiers : null,
      expectedVerifiers: n,
      text: `all ${n} verifier${n === 1 ? '' : 's'} sit with ${seats} (a seat is a stake unit of 10^15 wei, and tau ${tau} covers the whole verifier stake of ${W} units); ${need}`,
    };
  }
  return {
    verifiers: n,
    stakeUnits: W.toString(),
    everyVerifierSits: false,
    seatsPerVerifier: null,
    thresholdVerifiers: null,
    expectedVerifiers,
    text:
      `tau ${tau} of ${W} stake units (10^15 wei each; ${n} verifier${n === 1 ? '' : 's'}): each unit is a seat with p = ${Number(p.toPrecision(3))}, ` +
      `about ${Number(expectedVerifiers.toPrecision(3))} verifier(s) sit per task; ${threshold} pass seats decide`,
  };
}

/** The stakes (wei) of the active verifiers now (from the registry). */
export async function activeVerifierStakes(c: ChainReader): Promise<bigint[]> {
  return (await listNodes(c))
    .filter((x) => x.roles.includes('verifier') && x.status === 'active')
    .map((x) => x.stake);
}

/** The verifier stake now, for committee figures (null when unreadable). */
export async function currentVerifierStake(c: ChainReader): Promise<bigint | null> {
  try {
    return (await getStakeTotals(c)).verifierStake;
  } catch {
    return null;
  }
}
