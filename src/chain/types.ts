/**
 * Names and shapes shared by Ferry's chain bindings: task states, node statuses, roles, TEE
 * kinds, the deployed contract addresses and the client pair every action takes.
 */
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from 'viem';
import { FerryError } from '../kernel/index.ts';

/** Task states in on-chain enum order (protocol.md section 12). */
export const TASK_STATES = [
  'created',
  'seeded',
  'claimed',
  'attesting',
  'attested',
  'running',
  'completed',
  'rejected',
  'failed',
  'expired',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Node statuses in on-chain order; `none` means unregistered. */
export const NODE_STATUSES = ['none', 'active', 'inactive', 'jailed'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** Node roles and their bits. */
export const ROLES = { executor: 1, verifier: 2 } as const;
export type Role = keyof typeof ROLES;

/** TEE kinds and their bits in on-chain masks. */
export const TEE_KINDS = { sim: 1, tpm2: 2, tdx: 4, 'sev-snp': 8, sgx: 16 } as const;
export type TeeKind = keyof typeof TEE_KINDS;

/** Why an attempt ended (event AttemptEnded.reason). */
export const ATTEMPT_END_REASONS = [
  'none',
  'no-claim',
  'evidence-missed',
  'evidence-rejected',
  'votes-missed',
  'receipt-missed',
  'keys-missed',
  'abandoned',
  'fraud',
] as const;
export type AttemptEndReason = (typeof ATTEMPT_END_REASONS)[number];

/** Addresses of a Ferry deployment. */
export type FerryContracts = { NodeRegistry: Address; Assets: Address; Tasks: Address };

/** What read-only calls need. */
export type ChainReader = { public: PublicClient; contracts: FerryContracts };

/** What transactions need: a wallet client with an account and a chain. */
export type ChainWriter = ChainReader & { wallet: WalletClient<Transport, Chain, Account> };

/** Every transaction action resolves to this once the transaction is mined and succeeded. */
export type TxResult = { hash: Hex; blockNumber: bigint; gasUsed: bigint };

export function rolesToMask(roles: readonly Role[]): number {
  let m = 0;
  for (const r of roles) {
    const bit = (ROLES as Record<string, number>)[r];
    if (bit === undefined) {
      throw new FerryError('INVALID_ARGUMENT', 'roles: unknown role', {
        hints: ['expected: executor, verifier', `got: ${String(r)}`],
      });
    }
    m |= bit;
  }
  if (m === 0) throw new FerryError('INVALID_ARGUMENT', 'roles: at least one role is required');
  return m;
}

export function maskToRoles(mask: number): Role[] {
  return (Object.keys(ROLES) as Role[]).filter((r) => (mask & ROLES[r]) !== 0);
}

export function teeKindsToMask(kinds: readonly TeeKind[], what = 'teeKinds'): number {
  let m = 0;
  for (const k of kinds) {
    const bit = (TEE_KINDS as Record<string, number>)[k];
    if (bit === undefined) {
      throw new FerryError('INVALID_ARGUMENT', `${what}: unknown TEE kind`, {
        hints: [`expected: ${Object.keys(TEE_KINDS).join(', ')}`, `got: ${String(k)}`],
      });
    }
    m |= bit;
  }
  if (m === 0) throw new FerryError('INVALID_ARGUMENT', `${what}: at least one TEE kind is required`);
  return m;
}

export function maskToTeeKinds(mask: number): TeeKind[] {
  return (Object.keys(TEE_KINDS) as TeeKind[]).filter((k) => (mask & TEE_KINDS[k]) !== 0);
}

/** ISO 3166-1 alpha-2 region to bytes2 hex ('DE' -> 0x4445). */
export function regionToHex(region: string, what = 'region'): Hex {
  if (typeof region !== 'string' || !/^[A-Z]{2}$/.test(region)) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected an ISO 3166-1 alpha-2 code`, {
      hints: ['expected: two upper-case letters, e.g. DE', `got: ${JSON.stringify(region)}`],
    });
  }
  return `0x${Buffer.from(region, 'ascii').toString('hex')}`;
}

export function hexToRegion(hex: Hex): string {
  return Buffer.from(hex.slice(2), 'hex').toString('ascii');
}
