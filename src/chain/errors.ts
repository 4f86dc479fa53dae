/**
 * Turns anything a chain call throws into a FerryError: contract custom errors become their
 * stable CHAIN_* code with a message saying what was refused and hints saying how to act;
 * an unreachable RPC endpoint becomes CHAIN_UNAVAILABLE; other reverts CHAIN_REVERTED.
 */
import { BaseError, ContractFunctionRevertedError, decodeErrorResult, type Hex } from 'viem';
import { type ErrorCode, FerryError } from '../kernel/index.ts';
import { ferryErrorsAbi } from './abi.ts';
import { TASK_WINDOW_BOUNDS } from './tasks.ts';
import { TASK_STATES } from './types.ts';

type Args = readonly unknown[];
type Mapping = { code: ErrorCode; message: (a: Args) => string; hints?: (a: Args) => string[] };

const ELIGIBILITY_REASONS = [
  '',
  'the account is not a registered node',
  'the node lacks the required role',
  'the node is not active (inactive or jailed)',
  'the node changed (stake, keys, region, TEE kinds, roles, operator or status) at or after the task was created',
  "the node's region is not allowed by every dataset of the task",
  "none of the node's TEE kinds is allowed by the task",
  'the node was excluded from this task after a failed attempt',
  'the node is the executor of this attempt',
  "the node has the executor's operator (a verifier never judges its own operator's executor)",
  "the node's claim VRF output is not below its claim threshold in this round: claim in a later round of the claim window (docs/protocol.md section 11.3)",
];

const s = (v: unknown) => String(v);
const time = (v: unknown) => new Date(Number(v) * 1000).toISOString();

/** Every custom error of the contracts, with its code and explanation. */
export const REVERT_CODES: Record<string, Mapping> = {
  NotOwner: {
    code: 'CHAIN_NOT_OWNER',
    message: () => 'only the owner may do this',
    hints: (a) => [
      `owner: ${s(a[1])}`,
      `caller: ${s(a[0])}`,
      "send the transaction from the owner's account",
    ],
  },
  OnlyTasks: { code: 'CHAIN_UNAUTHORIZED', message: () => 'only the Tasks contract may call this' },
  UnknownNode: {
    code: 'CHAIN_NOT_FOUND',
    message: (a) => `node ${s(a[0])} is not registered`,
    hints: () => ['register it first: registerNode'],
  },
  UnknownDataset: { code: 'CHAIN_NOT_FOUND', message: (a) => `dataset ${s(a[0])} does not exist` },
  UnknownApp: { code: 'CHAIN_NOT_FOUND', message: (a) => `app ${s(a[0])} does not exist` },
  UnknownTask: { code: 'CHAIN_NOT_FOUND', message: (a) => `task ${s(a[0])} does not exist` },
  InvalidParameter: {
    code: 'CHAIN_INVALID_PARAMETER',
    message: (a) => `invalid ${s(a[0])}`,
    hints: (a) => {
      const b = TASK_WINDOW_BOUNDS[s(a[0]) as keyof typeof TASK_WINDOW_BOUNDS];
      return [
        ...(b ? [`allowed: ${b.min} to ${b.max} seconds`] : []),
        'see docs/protocol.md section 11 for the allowed range',
      ];
    },
  },
  AlreadyRegistered: {
    code: 'CHAIN_ALREADY_REGISTERED',
    message: (a) => `node ${s(a[0])} is already registered`,
    hints: () => ['use updateNode to change it'],
  },
  InsufficientStake: {
    code: 'CHAIN_INSUFFICIENT_STAKE',
    message: () => 'not enough stake',
    hints: (a) => [`expected: at least ${s(a[0])} wei`, `got: ${s(a[1])} wei`],
  },
  AssetRevoked: {
    code: 'CHAIN_ASSET_REVOKED',
    message: (a) => `${a[0] === 1 ? 'dataset' : 'app'} ${s(a[1])} is revoked`,
    hints: () => ['a revoked asset is never used again; its owner must register a new one'],
  },
  AssetExpired: {
    code: 'CHAIN_ASSET_EXPIRED',
    message: (a) => `dataset ${s(a[0])} expired`,
    hints: (a) => [`expired at: ${time(a[1])}`],
  },
  UsesExhausted: {
    code: 'CHAIN_USES_EXHAUSTED',
    message: (a) => `dataset ${s(a[0])} has no uses left`,
    hints: (a) => [`maximum uses: ${s(a[1])}`, 'ask the data owner to raise maxUses'],
  },
  AppNotAllowed: {
    code: 'CHAIN_POLICY_FORBIDS',
    message: (a) => `dataset ${s(a[0])} does not allow this app`,
    hints: (a) => [`app measurement: ${s(a[1])}`, "ask the data owner to add it to the dataset's policy"],
  },
  RequesterNotAllowed: {
    code: 'CHAIN_POLICY_FORBIDS',
    message: (a) => `dataset ${s(a[0])} does not allow requester ${s(a[1])}`,
    hints: () => ["ask the data owner to add you to the dataset's requester allow-list"],
  },
  NoCommonTeeKind: {
    code: 'CHAIN_POLICY_FORBIDS',
    message: () => 'no TEE kind is allowed by the app and every dataset of the task',
    hints: () => ['use an app and datasets whose policies share at least one TEE kind'],
  },
  InsufficientFee: {
    code: 'CHAIN_INSUFFICIENT_FUNDS',
    message: () => 'the fee does not cover the app and dataset prices',
    hints: (a) => [`expected: at least ${s(a[0])} wei`, `got: ${s(a[1])} wei`],
  },
  WrongState: {
    code: 'CHAIN_WRONG_STATE',
    message: (a) =>
      `task ${s(a[0])} is ${TASK_STATES[Number(a[1])] ?? s(a[1])}; this call is not allowed now`,
    hints: () => ['see the task state machine in docs/protocol.md section 12'],
  },
  WrongAttempt: {
    code: 'CHAIN_WRONG_ATTEMPT',
    message: (a) => `task ${s(a[0])} is at attempt ${s(a[1])}, not ${s(a[2])}`,
    hints: () => ['claims and votes are bound to one attempt; recompute for the current one'],
  },
  TooEarly: {
    code: 'CHAIN_TOO_EARLY',
    message: () => 'too early for this call',
    hints: (a) => [
      `allowed from: ${s(a[0])}`,
      `now: ${s(a[1])}`,
      '(block number for seeds, unix seconds otherwise)',
    ],
  },
  DeadlinePassed: {
    code: 'CHAIN_DEADLINE_PASSED',
    message: () => 'the deadline for this call has passed',
    hints: (a) => [`deadline: ${time(a[0])}`, `now: ${time(a[1])}`],
  },
  NotEligible: {
    code: 'CHAIN_NOT_ELIGIBLE',
    message: (a) => `node ${s(a[0])} is not eligible`,
    hints: (a) => [ELIGIBILITY_REASONS[Number(a[1])] ?? `reason ${s(a[1])}`],
  },
  NotExecutor: {
    code: 'CHAIN_NOT_EXECUTOR',
    message: (a) => `only the executor of task ${s(a[0])} may do this`,
    hints: (a) => [`caller: ${s(a[1])}`],
  },
  AlreadyVoted: {
    code: 'CHAIN_ALREADY_VOTED',
    message: (a) => `verifier ${s(a[2])} already voted on task ${s(a[0])} attempt ${s(a[1])}`,
  },
  AlreadyClaimed: {
    code: 'CHAIN_ALREADY_CLAIMED',
    message: (a) => `node ${s(a[2])} already claimed task ${s(a[0])} attempt ${s(a[1])}`,
    hints: () => ['one claim per node per attempt'],
  },
  TooManySeats: {
    code: 'CHAIN_TOO_MANY_SEATS',
    message: () => "the vote claims more seats than the voter's stake share allows",
    hints: (a) => [
      `expected: at most ${s(a[1])} seats`,
      `got: ${s(a[0])}`,
      'see the seat bound in docs/protocol.md section 11.3',
    ],
  },
  StakeLocked: {
    code: 'CHAIN_STAKE_LOCKED',
    message: (a) => `the stake of node ${s(a[0])} backs ${s(a[1])} open attempt(s)`,
    hints: () => [
      'stake cannot be added, unbonded or withdrawn while the node executes an attempt',
      'stop claiming and retry once its attempts have ended',
    ],
  },
  NotJailed: {
    code: 'CHAIN_NOT_JAILED',
    message: (a) => `node ${s(a[0])} is not jailed`,
    hints: () => ['an inactive node returns with setNodeActive(true)'],
  },
  AlreadyReleased: {
    code: 'CHAIN_ALREADY_RELEASED',
    message: (a) => `the key of asset ${s(a[1])} of task ${s(a[0])} is already recorded`,
  },
  NothingToWithdraw: {
    code: 'CHAIN_NOTHING_TO_WITHDRAW',
    message: (a) => `nothing to withdraw for ${s(a[0])}`,
  },
  TransferFailed: {
    code: 'CHAIN_TRANSFER_FAILED',
    message: (a) => `payment of ${s(a[1])} wei to ${s(a[0])} failed`,
    hints: () => ['the receiving account must accept plain ether transfers'],
  },
  Reentrancy: { code: 'CHAIN_REENTRANCY', message: () => 're-entrant call refused' },
  ChallengeMismatch: {
    code: 'CHAIN_CHALLENGE_MISMATCH',
    message: (a) =>
      `what the challenge supplied is not what task ${s(a[0])} recorded for ${s(a[2])} in attempt ${s(a[1])}`,
    hints: () => [
      'resupply the VoteCast / TaskClaimed event, the seed and the node as registered before the task',
      'only votes and the best claim are recorded; a discarded vote cannot be challenged again',
    ],
  },
  NoFraud: {
    code: 'CHAIN_NO_FRAUD',
    message: (a) => `the ${s(a[2])} record of task ${s(a[0])} attempt ${s(a[1])} is true: nothing to prove`,
    hints: () => ['its VRF proof verifies and gives its output, and its seats are not provably too many'],
  },
};

/** Solidity's panic codes (0x01, 0x11, 0x12, 0x21, 0x31, 0x32, 0x41, 0x51), in words. */
const PANICS: Record<number, string> = {
  1: 'an assertion failed',
  17: 'an arithmetic overflow or underflow',
  18: 'a division by zero',
  33: 'an invalid enum value',
  49: 'pop on an empty array',
  50: 'an array index out of bounds',
  65: 'out of memory',
  81: 'a call to an uninitialized function',
};

/** Decodes raw revert data with every Ferry error; undefined if it is not one of ours. */
export function decodeRevertData(data: Hex): { errorName: string; args: Args } | undefined {
  try {
    const r = decodeErrorResult({ abi: ferryErrorsAbi, data });
    return { errorName: r.errorName, args: (r.args ?? []) as Args };
  } catch {
    return undefined;
  }
}

function fromRevert(errorName: string, args: Args, cause: unknown): FerryError {
  const m = REVERT_CODES[errorName];
  if (!m) {
    return new FerryError('CHAIN_REVERTED', `the contract refused the call: ${errorName}`, { cause });
  }
  return new FerryError(m.code, m.message(args), {
    hints: m.hints?.(args) ?? [],
    cause,
    details: { revert: errorName, args: args.map((v) => (typeof v === 'bigint' ? v.toString() : v)) },
  });
}

/**
 * Converts an error thrown by viem (or anything else) during a chain call into a FerryError.
 * `what` names the call for messages that have no contract error ("registerNode").
 */
export function toChainError(e: unknown, what: string): FerryError {
  if (e instanceof FerryError) return e;
  if (e instanceof BaseError) {
    const reverted = e.walk((x) => x instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      if (reverted.data?.errorName && REVERT_CODES[reverted.data.errorName]) {
        return fromRevert(reverted.data.errorName, (reverted.data.args ?? []) as Args, e);
      }
      const raw = reverted.raw;
      const decoded = raw ? decodeRevertData(raw) : undefined;
      if (decoded) return fromRevert(decoded.errorName, decoded.args, e);
      if (reverted.data?.errorName === 'Panic') {
        const code = Number(reverted.data.args?.[0] ?? 0);
        return new FerryError('CHAIN_REVERTED', `${what}: the contract stopped on an internal check`, {
          cause: e,
          hints: [
            PANICS[code] ?? `Solidity panic 0x${code.toString(16)}`,
            'this is a bug in the contracts or in the call; please report it',
          ],
        });
      }
      return new FerryError('CHAIN_REVERTED', `${what} reverted`, {
        cause: e,
        hints: [reverted.reason ?? reverted.shortMessage],
      });
    }
    // Errors that carry revert data without a decoded function context (e.g. estimateGas).
    const withData = e.walk((x) => typeof (x as { data?: unknown }).data === 'string') as
      | { data?: string }
      | undefined;
    if (withData && typeof withData.data === 'string' && withData.data.startsWith('0x')) {
      const decoded = decodeRevertData(withData.data as Hex);
      if (decoded) return fromRevert(decoded.errorName, decoded.args, e);
    }
    const poor = e.walk((x) => (x as { name?: string }).name === 'InsufficientFundsError');
    if (poor) {
      return new FerryError(
        'CHAIN_INSUFFICIENT_FUNDS',
        `${what}: the account cannot pay for this transaction (its gas plus the value sent)`,
        {
          cause: e,
          hints: [
            'fund the account, or act from a funded profile',
            'on a devnet: ferry profile show NAME prints the address; anvil_setBalance funds it',
          ],
        },
      );
    }
    const unavailable = e.walk(
      (x) =>
        (x as { name?: string }).name === 'HttpRequestError' ||
        (x as { name?: string }).name === 'TimeoutError',
    );
    if (unavailable) {
      return new FerryError('CHAIN_UNAVAILABLE', `${what}: the chain endpoint is unreachable`, {
        cause: e,
        hints: ['check the RPC URL and that the node is running'],
      });
    }
    return new FerryError('CHAIN_REVERTED', `${what} failed`, { cause: e, hints: [e.shortMessage] });
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (/fetch failed|ECONNREFUSED/.test(msg)) {
    return new FerryError('CHAIN_UNAVAILABLE', `${what}: the chain endpoint is unreachable`, { cause: e });
  }
  return new FerryError('CHAIN_REVERTED', `${what} failed`, { cause: e, hints: [msg] });
}
