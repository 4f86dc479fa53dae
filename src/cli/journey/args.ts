/** Argument parsing shared by the journey commands; every bad value is a USAGE_* error naming it. */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  developmentPolicy,
  PRODUCTION_POLICY,
  parsePolicy,
  type AppraisalPolicy,
} from '../../attestation/index.ts';
import { pinnedDevelopmentPolicy, RELEASE_POLICY_NAME, releasePolicy } from '../../enclave/index.ts';
import { TEE_KINDS, type TeeKind } from '../../chain/index.ts';
import { FerryError, isFerryError } from '../../kernel/index.ts';
import { stringList } from '../args.ts';
import type { CommandContext } from '../command.ts';

function usage(message: string, got: string, expected?: string): FerryError {
  return new FerryError('USAGE_INVALID_ARGUMENT', message, {
    hints: [...(expected ? [`expected: ${expected}`] : []), `got: ${got.slice(0, 80)}`],
  });
}

/** A decimal on-chain id (>= 1). */
export function parseId(text: string, what: string): bigint {
  if (!/^[0-9]{1,78}$/.test(text) || BigInt(text) < 1n)
    throw usage(`${what} must be a positive integer id`, text);
  return BigInt(text);
}

/** Repeatable, comma-separated values of an option. */
export function listOption(ctx: CommandContext, name: string): string[] {
  return stringList(ctx, name)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** Regions (ISO 3166-1 alpha-2, upper case); `any` alone means no restriction. */
export function parseRegions(values: string[]): string[] {
  if (values.length === 1 && values[0].toLowerCase() === 'any') return [];
  for (const r of values) {
    if (!/^[A-Z]{2}$/.test(r))
      throw usage('--region must be ISO 3166-1 alpha-2 codes (or any)', r, 'e.g. DE, FR');
  }
  return [...new Set(values)];
}

/** The TEE kinds an asset allows when --tee is absent: sim on a devnet, every hardware kind elsewhere. */
export function defaultTeeKinds(isDevnet: boolean): TeeKind[] {
  return isDevnet ? ['sim'] : ['tpm2', 'tdx', 'sev-snp', 'sgx'];
}

export function parseTeeKinds(values: string[]): TeeKind[] {
  for (const k of values) {
    if (!(k in TEE_KINDS)) throw usage('--tee: unknown TEE kind', k, Object.keys(TEE_KINDS).join(', '));
  }
  return [...new Set(values)] as TeeKind[];
}

/** A wei amount (decimal integer). */
export function parseWei(text: string | undefined, what: string, dflt: bigint): bigint {
  if (text === undefined) return dflt;
  if (!/^[0-9]{1,78}$/.test(text)) throw usage(`${what} must be an amount in wei (a decimal integer)`, text);
  return BigInt(text);
}

/** `--expires`: an ISO 8601 date-time, or `+N` with a unit s, m, h or d; returns Unix seconds. */
export function parseExpires(text: string | undefined, nowSeconds: number): number {
  if (text === undefined) return 0;
  const rel = /^\+([0-9]{1,9})([smhd])$/.exec(text);
  if (rel) {
    const mult = { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return nowSeconds + Number(rel[1]) * mult;
  }
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(t)) {
    throw usage(
      '--expires must be an ISO 8601 date-time or +N[s|m|h|d]',
      text,
      '2027-01-01T00:00:00Z or +30d',
    );
  }
  const s = Math.floor(t / 1000);
  if (s <= nowSeconds) throw usage('--expires must be in the future', text);
  return s;
}

/** What --policy accepts, for hints. */
export const POLICY_CHOICES = 'release, production, development, pinned, or a policy JSON file';

/**
 * `--policy` of `dataset add` and `app publish`, with its only default: `pinned` on a devnet.
 * Elsewhere a missing --policy is USAGE_MISSING_ARGUMENT (exit 2): an owner names the appraisal
 * policy its keys are released under; no default accepts every platform.
 */
export async function policyOptionFor(text: string | undefined, isDevnet: boolean): Promise<AppraisalPolicy> {
  if (text !== undefined) return parsePolicyOption(text);
  if (isDevnet) return parsePolicyOption('pinned');
  throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --policy (required off a devnet)', {
    hints: [
      `expected: --policy P with P one of ${POLICY_CHOICES} (docs/protocol.md section 9)`,
      "release: the published reference values of this release's enclave runtime (`ferry measure runtime`); production pins none and accepts nothing",
    ],
  });
}

/**
 * `--policy`: `release` (production settings pinning this release's published runtime reference
 * values, release/reference-values.json), `production` (no reference values: accepts nothing,
 * kept for scripts), `development`, `pinned` (the development policy with reference values
 * pinned to this checkout's enclave runtime, pinnedDevelopmentPolicy), or a policy JSON file
 * (section 9).
 */
export async function parsePolicyOption(text: string): Promise<AppraisalPolicy> {
  if (text === RELEASE_POLICY_NAME) return releasePolicy();
  if (text === 'production') return PRODUCTION_POLICY;
  if (text === 'development') return developmentPolicy();
  if (text === 'pinned') return pinnedDevelopmentPolicy();
  let body: string;
  try {
    body = readFileSync(text, 'utf8');
  } catch (e) {
    throw new FerryError('IO_READ_FAILED', `cannot read --policy file ${text}`, {
      cause: e,
      hints: [`expected: ${POLICY_CHOICES}`],
    });
  }
  try {
    return parsePolicy(body);
  } catch (e) {
    if (isFerryError(e)) throw e;
    throw usage('--policy is not a valid appraisal policy', text);
  }
}

/** A 32-byte hex value as 0x-hex (an app measurement). */
export function parseMeasurement(text: string): `0x${string}` {
  const h = text.startsWith('0x') ? text.slice(2) : text;
  if (!/^[0-9a-fA-F]{64}$/.test(h))
    throw usage('--allow-app must be an app measurement (64 hex digits) or any', text);
  return `0x${h.toLowerCase()}`;
}

/** Why a file could not be read, in words (the errno code stays in the cause). */
export function fileProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file (check the path)';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a folder, not a file';
  return code ?? 'not a regular file';
}

/**
 * Refuses (USAGE_INVALID_ARGUMENT, exit 2) an output path that cannot be written: its folder
 * missing or not writable, or the path itself a folder or read-only. Checked before anything
 * is spent on chain; the file is not created here.
 */
export function checkWritable(path: string, option: string): void {
  const full = resolve(path);
  const dir = dirname(full);
  const refusal = (why: string) =>
    new FerryError('USAGE_INVALID_ARGUMENT', `${option}: cannot write to ${path}`, {
      hints: [why, `path: ${full}`],
    });
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  };
  const writable = (p: string) => {
    try {
      accessSync(p, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  };
  const st = stat(full);
  if (st?.isDirectory()) throw refusal('it is a folder; name a file');
  if (st) {
    if (!writable(full)) throw refusal('the file is not writable');
    return;
  }
  const d = stat(dir);
  if (!d) throw refusal(`the folder ${dir} does not exist (create it first)`);
  if (!d.isDirectory()) throw refusal(`${dir} is not a folder`);
  if (!writable(dir)) throw refusal(`the folder ${dir} is not writable`);
}
