/**
 * `ferry committee --tau N --threshold T --adversary F [--json]`: the capture and liveness
 * failure probabilities of a verifier committee (docs/protocol.md section 4), in the
 * many-small-stakes limit where seat counts are Poisson.
 */
import { FerryError } from '../kernel/index.ts';
import {
  committeeCapture,
  committeeCaptureForStake,
  MAX_COMMITTEE_TAU,
  parseThreshold,
} from '../crypto/index.ts';
import { defineCommand } from './command.ts';
import { optionalString, requireString } from './args.ts';

function invalid(what: string, expected: string, got: string): FerryError {
  return new FerryError('SORTITION_INVALID_PARAMETERS', `invalid --${what}`, {
    hints: [`expected: ${expected}`, `got: ${got}`],
  });
}

function formatProbability(p: number): string {
  if (p === 0) return '0';
  if (p >= 1e-3) return p.toPrecision(4);
  return p.toExponential(3);
}

export default defineCommand({
  name: 'committee',
  summary: 'capture and liveness-failure probabilities of a verifier committee (Poisson model)',
  usage: 'committee --tau N --threshold T --adversary F [--total-stake W] [--json]',
  description: `
Seats are Poisson in the many-small-stakes limit: with adversarial stake fraction F and
expected committee size N, capture = P[Poisson(F*N) >= t] (the adversary alone reaches the
threshold) and livenessFailure = P[Poisson((1-F)*N) < t] (the honest seats fall short).
T is a seat count (7) or a fraction of N (2/3, 0.6667): t = ceil(fraction * N), exactly.
With --total-stake W (whole stake units), the exact sortition model is used instead: the
adversary holds round(F*W) units, each unit a sub-user selected with p = N/W, so its seats are
Binomial(round(F*W), p) and the honest seats Binomial(W - round(F*W), p).
Example: ferry committee --tau 50 --threshold 2/3 --adversary 0.2`,
  options: {
    tau: { type: 'string', value: 'N', description: 'expected committee size (integer >= 1)' },
    threshold: {
      type: 'string',
      value: 'T',
      description: 'seats needed to decide: a count (7) or a fraction of tau (2/3, 0.6667)',
    },
    adversary: { type: 'string', value: 'F', description: 'adversarial stake fraction in [0, 1)' },
    'total-stake': {
      type: 'string',
      value: 'W',
      description: 'total stake in whole units: use the exact binomial model instead of Poisson',
    },
  },
  async run(ctx) {
    const tauText = requireString(ctx, 'tau').trim();
    const thresholdText = requireString(ctx, 'threshold');
    const adversaryText = requireString(ctx, 'adversary').trim();
    const tau = Number(tauText);
    if (!/^[0-9]+$/.test(tauText) || !Number.isSafeInteger(tau) || tau < 1 || tau > MAX_COMMITTEE_TAU) {
      throw invalid('tau', `an integer in 1..${MAX_COMMITTEE_TAU}`, tauText);
    }
    const adversary = Number(adversaryText);
    if (!/^[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?$/.test(adversaryText) || !(adversary >= 0 && adversary < 1)) {
      throw invalid('adversary', 'a stake fraction in [0, 1), e.g. 0.2', adversaryText);
    }
    let threshold: number;
    try {
      threshold = parseThreshold(thresholdText, tau);
    } catch (e) {
      const err = invalid(
        'threshold',
        'a seat count >= 1 (7) or a fraction in (0, 1] (2/3, 0.6667)',
        thresholdText,
      );
      throw new FerryError(err.code, err.message, { hints: err.hints, cause: e });
    }
    const totalText = optionalString(ctx, 'total-stake')?.trim();
    let model: 'poisson' | 'binomial' = 'poisson';
    let stake: { adversaryStake: bigint; totalStake: bigint } | undefined;
    if (totalText !== undefined) {
      const W = Number(totalText);
      if (!/^[0-9]+$/.test(totalText) || !Number.isSafeInteger(W) || W < tau) {
        throw invalid('total-stake', `an integer in ${tau}..2^53-1 (at least tau)`, totalText);
      }
      model = 'binomial';
      stake = { adversaryStake: BigInt(Math.round(adversary * W)), totalStake: BigInt(W) };
      if (stake.adversaryStake >= stake.totalStake) {
        throw invalid('adversary', 'a fraction that leaves some honest stake', adversaryText);
      }
    }
    const { capture, livenessFailure } = stake
      ? committeeCaptureForStake({ tau, threshold, ...stake })
      : committeeCapture({ tau, threshold, adversary });
    const rows = [
      ['expected committee (tau)', String(tau)],
      [
        'threshold (seats)',
        `${threshold}${thresholdText.trim() === String(threshold) ? '' : ` (${thresholdText.trim()} of tau)`}`,
      ],
      [
        'adversarial stake',
        stake ? `${adversary} (${stake.adversaryStake} of ${stake.totalStake} units)` : String(adversary),
      ],
      ['capture', formatProbability(capture)],
      ['liveness failure', formatProbability(livenessFailure)],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    return {
      json: {
        capture,
        livenessFailure,
        tau,
        threshold,
        adversary,
        model,
        ...(stake
          ? { adversaryStake: stake.adversaryStake.toString(), totalStake: stake.totalStake.toString() }
          : {}),
      },
      text: [
        ...rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`),
        model === 'poisson'
          ? 'model: Poisson seat counts (many small stakes)'
          : 'model: exact binomial seat counts for the given total stake',
      ].join('\n'),
    };
  },
});
