/**
 * Shared pieces of the `ferry attest verify <kind>` commands: the one JSON shape they print,
 * the `--policy`, `--now` and input-file options, and the exit-code mapping
 * (0 accepted, 3 not accepted, 2 usage errors).
 */
import { readFile } from 'node:fs/promises';
import {
  parsePolicy,
  PRODUCTION_POLICY,
  type Appraisal,
  type AppraisalPolicy,
  type AppraisalReason,
} from '../../attestation/index.ts';
import { EXIT, FerryError, isFerryError } from '../../kernel/index.ts';
import type { CommandContext, CommandResult, OptionSpec } from '../command.ts';

/** The `--json` object of every `attest verify` command, keys in this order. */
export type AppraisalJson = {
  kind: string;
  valid: boolean;
  accepted: boolean;
  status: string;
  tcbStatus: string | null;
  advisoryIds: string[];
  measurement: string;
  reportData: string;
  debug: boolean | null;
  reasons: AppraisalReason[];
};

/** Exactly the CLI JSON fields, in the documented order (claims are not printed). */
export function appraisalToJson(a: Appraisal): AppraisalJson {
  return {
    kind: a.kind,
    valid: a.valid,
    accepted: a.accepted,
    status: a.status,
    tcbStatus: a.tcbStatus,
    advisoryIds: [...a.advisoryIds],
    measurement: a.measurement,
    reportData: a.reportData,
    debug: a.debug,
    reasons: a.reasons.map((r) => ({ code: r.code, message: r.message })),
  };
}

/** 0 when accepted, 3 otherwise. */
export function exitCodeForAppraisal(a: Appraisal): number {
  return a.accepted ? EXIT.ok : EXIT.verification;
}

/** Human-readable summary printed without --json. */
export function appraisalToText(a: Appraisal): string {
  const lines = [
    `${a.kind}: ${a.accepted ? 'ACCEPTED' : 'NOT ACCEPTED'} (${a.status})`,
    `  valid:       ${a.valid}`,
    `  tcb status:  ${a.tcbStatus ?? '-'}${a.advisoryIds.length ? ` (${a.advisoryIds.join(', ')})` : ''}`,
    `  measurement: ${a.measurement || '-'}`,
    `  report data: ${a.reportData || '-'}`,
    `  debug:       ${a.debug === null ? 'unknown' : a.debug}`,
  ];
  for (const r of a.reasons) lines.push(`  reason: ${r.code}: ${r.message}`);
  return lines.join('\n');
}

/** The command result for an appraisal: JSON, text, and exit code 0 or 3. */
export function appraisalResult(a: Appraisal): CommandResult {
  return { json: appraisalToJson(a), text: appraisalToText(a), exitCode: exitCodeForAppraisal(a) };
}

/** Option specs shared by every verify command. */
export const COMMON_VERIFY_OPTIONS: Record<string, OptionSpec> = {
  now: { type: 'string', value: 'ISO8601', description: 'judge certificates and collateral at this time' },
  policy: {
    type: 'string',
    value: 'FILE',
    description:
      'appraisal policy JSON (default: production settings without reference values, which accept no evidence)',
  },
};

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * `--now` as a Date: an ISO 8601 date-time with a zone (`Z` or `±hh:mm`); default the real
 * time. Throws USAGE_INVALID_ARGUMENT (exit 2) for anything else.
 */
export function nowOption(ctx: CommandContext): Date {
  const v = ctx.values.now;
  if (v === undefined) return new Date();
  const d = typeof v === 'string' && ISO_RE.test(v) ? new Date(v) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime())) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', '--now must be an ISO 8601 date-time with a time zone', {
      hints: ['expected: e.g. 2025-07-01T00:00:00Z', `got: ${String(v)}`],
    });
  }
  return d;
}

/**
 * Reads the file named by option `--name`. A missing option or an unreadable file is a
 * usage error (USAGE_MISSING_ARGUMENT / USAGE_INVALID_ARGUMENT, exit 2). With
 * `optional`, a missing option returns undefined.
 */
export async function readFileArg(ctx: CommandContext, name: string): Promise<Uint8Array>;
export async function readFileArg(
  ctx: CommandContext,
  name: string,
  opts: { optional: true },
): Promise<Uint8Array | undefined>;
export async function readFileArg(
  ctx: CommandContext,
  name: string,
  opts: { optional?: boolean } = {},
): Promise<Uint8Array | undefined> {
  const v = ctx.values[name];
  if (typeof v !== 'string' || v.length === 0) {
    if (opts.optional && v === undefined) return undefined;
    throw new FerryError('USAGE_MISSING_ARGUMENT', `missing --${name} FILE`, {
      hints: ['run with --help for usage'],
    });
  }
  try {
    return new Uint8Array(await readFile(v));
  } catch (e) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', `cannot read the --${name} file ${v}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
}

/**
 * `--policy FILE` parsed with `parsePolicy`, or PRODUCTION_POLICY when absent: production
 * settings with no reference values, so the verdict says whether the evidence is valid and
 * refuses it with ATTESTATION_NO_REFERENCE_VALUES (exit 3) until a policy pins the software.
 * An unreadable
 * file is USAGE_INVALID_ARGUMENT and an invalid one ATTESTATION_POLICY_INVALID (both exit 2).
 */
export async function loadPolicyOption(ctx: CommandContext): Promise<AppraisalPolicy> {
  const bytes = await readFileArg(ctx, 'policy', { optional: true });
  if (bytes === undefined) return PRODUCTION_POLICY;
  try {
    return parsePolicy(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    if (isFerryError(e)) throw e;
    throw new FerryError('ATTESTATION_POLICY_INVALID', 'the --policy file is not UTF-8 text', { cause: e });
  }
}
