/**
 * The appraisal policy document (docs/protocol.md §9): what a verifier accepts beyond "the
 * evidence is cryptographically valid". A policy is a JSON document validated by
 * `POLICY_SCHEMA`; `policyHash` identifies it on chain; the `check*` helpers and
 * `finishAppraisal` are the shared steps every verifier applies, so all evidence kinds judge
 * debug, TCB status, reference values and the report_data binding the same way.
 */
import { z } from 'zod';
import {
  type CanonicalValue,
  decodeTagged,
  encodeTagged,
  equalBytes,
  FerryError,
  hashTagged,
  toHex,
} from '../kernel/index.ts';
import {
  type Appraisal,
  type AppraisalPolicy,
  type AppraisalReason,
  type AppraisalStatus,
  EVIDENCE_KINDS,
  type EvidenceKind,
} from './types.ts';

/** Domain tag of the policy hash. */
export const POLICY_TAG = 'ferry/appraisal-policy/v1';

/** Every TCB status name a verifier may report (Intel's names; AMD evaluates to the same). */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;

const hexOf = (bytes: number) =>
  z
    .string()
    .regex(new RegExp(`^(?:0x)?[0-9a-fA-F]{${bytes * 2}}$`), `expected ${bytes} bytes of hex`)
    .transform((s) => s.replace(/^0x/, '').toLowerCase());
const hexList = (bytes: number) => z.array(hexOf(bytes));
const anyHex = z
  .string()
  .regex(/^(?:0x)?(?:[0-9a-fA-F]{2})+$/, 'expected hex')
  .transform((s) => s.replace(/^0x/, '').toLowerCase());
const u8 = z.number().int().min(0).max(255);
const u16 = z.number().int().min(0).max(65535);

/**
 * `referenceValues.tpm2.events[bank]`: per PCR index, the measured events the TCG event log
 * must hold for it, in log order (EV_NO_ACTION excluded): the TCG type name (`EV_...`, or
 * `0x` and 8 hex digits), the bank's digest, and an optional description used in reasons.
 */
const tpm2Events = (bytes: number) =>
  z.record(
    z.string().regex(/^(?:[0-9]|1[0-9]|2[0-3])$/, 'expected a PCR index 0-23'),
    z
      .array(
        z.strictObject({
          type: z.string().regex(/^(?:EV_[A-Z0-9_]{1,40}|0x[0-9a-f]{8})$/, 'expected an event type name'),
          digest: hexOf(bytes),
          what: z.string().min(1).max(160).optional(),
        }),
      )
      .max(256),
  );

const kindSchema = z.enum(EVIDENCE_KINDS as unknown as [EvidenceKind, ...EvidenceKind[]]);

/** The zod schema of a policy document. Unknown keys are refused at every level. */
export const POLICY_SCHEMA = z.strictObject({
  version: z.literal(1),
  name: z.string().min(1).max(128),
  allowedKinds: z.array(kindSchema).min(1),
  allowDebug: z.boolean(),
  allowedTcbStatuses: z.array(z.enum(TCB_STATUSES)),
  allowedAdvisoryIds: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/)).optional(),
  maxEvidenceAgeSeconds: z.number().int().min(0),
  referenceValues: z.strictObject({
    sim: z.strictObject({ measurement: z.array(anyHex).optional() }).optional(),
    tpm2: z
      .strictObject({
        pcrDigest: z.array(anyHex).optional(),
        pcrs: z
          .partialRecord(
            z.enum(['sha1', 'sha256', 'sha384', 'sha512']),
            z.record(
              z.string().regex(/^(?:[0-9]|1[0-9]|2[0-3])$/, 'expected a PCR index 0-23'),
              z.array(anyHex),
            ),
          )
          .optional(),
        events: z
          .strictObject({
            sha1: tpm2Events(20).optional(),
            sha256: tpm2Events(32).optional(),
            sha384: tpm2Events(48).optional(),
            sha512: tpm2Events(64).optional(),
          })
          .optional(),
      })
      .optional(),
    tdx: z
      .strictObject({
        mrTd: hexList(48).optional(),
        rtmr0: hexList(48).optional(),
        rtmr1: hexList(48).optional(),
        rtmr2: hexList(48).optional(),
        rtmr3: hexList(48).optional(),
        mrSeam: hexList(48).optional(),
      })
      .optional(),
    sgx: z
      .strictObject({
        mrEnclave: hexList(32).optional(),
        mrSigner: hexList(32).optional(),
        isvProdId: z.array(u16).optional(),
        minIsvSvn: u16.optional(),
      })
      .optional(),
    'sev-snp': z
      .strictObject({
        measurement: hexList(48).optional(),
        hostData: hexList(32).optional(),
        minTcb: z.strictObject({ bootloader: u8, tee: u8, snp: u8, microcode: u8 }).optional(),
        maxVmpl: z.number().int().min(0).max(3).optional(),
        allowMigrationAgent: z.boolean().optional(),
        allowSmt: z.boolean().optional(),
      })
      .optional(),
  }),
});

const sortedUnique = <T extends string | number>(xs: readonly T[]): T[] =>
  [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * Normalizes a schema-checked policy: hex lowercase without 0x, every list sorted ascending
 * (strings by UTF-16 code units, numbers numerically) without duplicates, absent optional
 * fields omitted. Two policies that allow the same things normalize to the same object.
 */
function normalize(p: z.infer<typeof POLICY_SCHEMA>): AppraisalPolicy {
  const rv: AppraisalPolicy['referenceValues'] = {};
  const lists = <O extends Record<string, unknown>>(o: O): O => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (v === undefined) continue;
      out[k] = Array.isArray(v) ? sortedUnique(v as (string | number)[]) : v;
    }
    return out as O;
  };
  const r = p.referenceValues;
  if (r.sim) rv.sim = lists(r.sim);
  if (r.tpm2) {
    const t: NonNullable<AppraisalPolicy['referenceValues']['tpm2']> = {};
    if (r.tpm2.pcrDigest) t.pcrDigest = sortedUnique(r.tpm2.pcrDigest);
    if (r.tpm2.pcrs) {
      const banks: { [bank: string]: { [index: string]: string[] } } = {};
      for (const [bank, idx] of Object.entries(r.tpm2.pcrs)) {
        if (idx === undefined) continue;
        const m: { [index: string]: string[] } = {};
        for (const [i, vals] of Object.entries(idx)) m[i] = sortedUnique(vals);
        banks[bank] = m;
      }
      t.pcrs = banks;
    }
    if (r.tpm2.events) {
      // Event lists keep their order: it is the log order the PCR's value depends on.
      const banks: NonNullable<typeof t.events> = {};
      for (const [bank, idx] of Object.entries(r.tpm2.events)) {
        if (idx === undefined) continue;
        const m: (typeof banks)[string] = {};
        for (const [i, evs] of Object.entries(idx)) {
          m[i] = evs.map((e) =>
            e.what === undefined
              ? { type: e.type, digest: e.digest }
              : { type: e.type, digest: e.digest, what: e.what },
          );
        }
        banks[bank] = m;
      }
      t.events = banks;
    }
    rv.tpm2 = t;
  }
  if (r.tdx) rv.tdx = lists(r.tdx);
  if (r.sgx) rv.sgx = lists(r.sgx);
  if (r['sev-snp']) rv['sev-snp'] = lists(r['sev-snp']);
  const out: AppraisalPolicy = {
    version: 1,
    name: p.name,
    allowedKinds: sortedUnique(p.allowedKinds),
    allowDebug: p.allowDebug,
    allowedTcbStatuses: sortedUnique(p.allowedTcbStatuses),
    maxEvidenceAgeSeconds: p.maxEvidenceAgeSeconds,
    referenceValues: rv,
  };
  if (p.allowedAdvisoryIds !== undefined) out.allowedAdvisoryIds = sortedUnique(p.allowedAdvisoryIds);
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * A production-settings tpm2 policy pinning `tpm2` reference values: tpm2 evidence only, no
 * debug, TCB `UpToDate`, evidence at most 10 minutes old. What `ferry measure runtime
 * --policy-out` and `ferry image measure` write (the enclave runtime's PCR 23, the image's boot
 * PCRs).
 */
export function tpm2ProductionPolicy(
  name: string,
  tpm2: NonNullable<AppraisalPolicy['referenceValues']>['tpm2'],
): AppraisalPolicy {
  return parsePolicy({
    version: 1,
    name,
    allowedKinds: ['tpm2'],
    allowDebug: false,
    allowedTcbStatuses: ['UpToDate'],
    maxEvidenceAgeSeconds: 600,
    referenceValues: { tpm2 },
  });
}

/**
 * Parses a policy document: a JSON text or an already-parsed value. Returns the normalized,
 * frozen policy. Throws ATTESTATION_POLICY_INVALID naming every offending path.
 */
export function parsePolicy(input: string | unknown): AppraisalPolicy {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw new FerryError('ATTESTATION_POLICY_INVALID', 'policy is not valid JSON', {
        cause: e,
        hints: [(e as Error).message],
      });
    }
  }
  const parsed = POLICY_SCHEMA.safeParse(value);
  if (!parsed.success) {
    throw new FerryError('ATTESTATION_POLICY_INVALID', 'invalid appraisal policy', {
      hints: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    });
  }
  return deepFreeze(normalize(parsed.data));
}

/**
 * The former production default, kept only so that its hash still resolves (datasets
 * registered with `--policy production` name it on chain): every kind but `sim`, no debug,
 * TCB `UpToDate` only, evidence at most 10 minutes old, and no reference values. Since a
 * policy without reference values for a kind accepts no evidence of that kind
 * (`checkSoftwareIdentified`), this policy accepts nothing: appraisal under it fails with
 * ATTESTATION_NO_REFERENCE_VALUES. Never use it as a default; pin the runtime's published
 * reference values instead (`ferry measure runtime --policy-out`, src/enclave/release.ts).
 */
export const PRODUCTION_POLICY: AppraisalPolicy = parsePolicy({
  version: 1,
  name: 'production',
  allowedKinds: ['tpm2', 'tdx', 'sev-snp', 'sgx'],
  allowDebug: false,
  allowedTcbStatuses: ['UpToDate'],
  maxEvidenceAgeSeconds: 600,
  referenceValues: {},
});

/**
 * A development policy: every kind including `sim`, debug allowed, every TCB status but
 * `Revoked`, evidence at most one hour old, no reference values. Without reference values it
 * accepts only `sim` evidence (from a party whose allowSim is on, which only a development
 * chain permits); hardware evidence under it fails with ATTESTATION_NO_REFERENCE_VALUES.
 */
export function developmentPolicy(): AppraisalPolicy {
  return parsePolicy({
    version: 1,
    name: 'development',
    allowedKinds: [...EVIDENCE_KINDS],
    allowDebug: true,
    allowedTcbStatuses: TCB_STATUSES.filter((s) => s !== 'Revoked'),
    maxEvidenceAgeSeconds: 3600,
    referenceValues: {},
  });
}

/** The policy as a canonical value: the normalized JSON object (docs/protocol.md §9). */
export function policyCanonicalValue(policy: AppraisalPolicy): CanonicalValue {
  // Re-validate and normalize so a hand-built object hashes like its parsed form.
  return normalize(POLICY_SCHEMA.parse(policy)) as unknown as CanonicalValue;
}

/** hashTagged('ferry/appraisal-policy/v1', canonical policy): 32 bytes. */
export function policyHash(policy: AppraisalPolicy): Uint8Array {
  let canonical: CanonicalValue;
  try {
    canonical = policyCanonicalValue(policy);
  } catch (e) {
    throw new FerryError('ATTESTATION_POLICY_INVALID', 'policy: not a valid appraisal policy', { cause: e });
  }
  return hashTagged(POLICY_TAG, canonical);
}

/** Largest policy document, bytes (the Assets contract refuses larger ones). */
export const MAX_POLICY_DOCUMENT = 16384;

/**
 * The policy document published on chain (docs/protocol.md §9): the tagged canonical encoding
 * `encodeTagged('ferry/appraisal-policy/v1', canonical policy)`, whose SHA-256 is
 * `policyHash(policy)`. Throws ATTESTATION_POLICY_INVALID for an invalid policy or one whose
 * document exceeds MAX_POLICY_DOCUMENT bytes.
 */
export function encodePolicyDocument(policy: AppraisalPolicy): Uint8Array {
  let canonical: CanonicalValue;
  try {
    canonical = policyCanonicalValue(policy);
  } catch (e) {
    throw new FerryError('ATTESTATION_POLICY_INVALID', 'policy: not a valid appraisal policy', { cause: e });
  }
  const doc = encodeTagged(POLICY_TAG, canonical);
  if (doc.length > MAX_POLICY_DOCUMENT) {
    throw new FerryError('ATTESTATION_POLICY_INVALID', 'policy: the document is too large', {
      hints: [`expected: at most ${MAX_POLICY_DOCUMENT} bytes`, `got: ${doc.length} bytes`],
    });
  }
  return doc;
}

/**
 * Decodes a policy document: canonical CBOR `[tag, policy]` with tag
 * 'ferry/appraisal-policy/v1', a policy the schema accepts, in its normalized form (the exact
 * bytes `encodePolicyDocument` produces for it, so the document's SHA-256 is its policyHash).
 * Returns the frozen policy. Throws ATTESTATION_POLICY_DOCUMENT_INVALID (with the cause and
 * what failed) for anything else: not bytes, too large, not canonical CBOR, wrong tag, a
 * schema violation, or a policy not in normalized form (unsorted lists, upper-case hex...).
 */
export function decodePolicyDocument(bytes: Uint8Array): AppraisalPolicy {
  const bad = (message: string, hints: string[] = [], cause?: unknown) =>
    new FerryError('ATTESTATION_POLICY_DOCUMENT_INVALID', `policy document: ${message}`, { hints, cause });
  if (!(bytes instanceof Uint8Array)) throw bad('expected bytes', [`got: ${typeof bytes}`]);
  if (bytes.length === 0 || bytes.length > MAX_POLICY_DOCUMENT) {
    throw bad('wrong length', [`expected: 1 to ${MAX_POLICY_DOCUMENT} bytes`, `got: ${bytes.length} bytes`]);
  }
  let value: CanonicalValue;
  try {
    value = decodeTagged(POLICY_TAG, bytes);
  } catch (e) {
    const fe = e as FerryError;
    throw bad('not a tagged canonical appraisal policy', [`${fe.code ?? 'error'}: ${fe.message}`], e);
  }
  const parsed = POLICY_SCHEMA.safeParse(value);
  if (!parsed.success) {
    throw bad(
      'invalid appraisal policy',
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const policy = deepFreeze(normalize(parsed.data));
  if (!equalBytes(encodeTagged(POLICY_TAG, policy as unknown as CanonicalValue), bytes)) {
    throw bad('the policy is not in normalized form', [
      'expected: hex lower case without 0x, lists sorted without duplicates (encodePolicyDocument)',
    ]);
  }
  return policy;
}

// --- shared policy steps ------------------------------------------------------------------

/** The kind is allowed; `sim` outside the list gets its own code. */
export function checkKind(policy: AppraisalPolicy, kind: EvidenceKind): AppraisalReason | null {
  if (policy.allowedKinds.includes(kind)) return null;
  if (kind === 'sim') {
    return {
      code: 'ATTESTATION_SIMULATION_NOT_ALLOWED',
      message: `policy "${policy.name}" does not allow simulated evidence`,
    };
  }
  return { code: 'ATTESTATION_KIND_NOT_ALLOWED', message: `policy "${policy.name}" does not allow ${kind}` };
}

const nonEmpty = (xs: readonly unknown[] | undefined): boolean => xs !== undefined && xs.length > 0;

/**
 * What is missing for the policy to identify the software of evidence of `kind`, or null when
 * nothing is (docs/protocol.md §9, "Reference values that identify the software"). A policy
 * identifies the software when, for:
 * - `sim`: always (sim carries no hardware claim; only parties whose allowSim is on, which a
 *   development chain alone permits, accept it at all);
 * - `tpm2`: `pcrDigest` is a non-empty list, or `pcrs` has at least one PCR with a non-empty
 *   list, or `events` at least one PCR with a non-empty event list;
 * - `tdx`: `mrTd` (the TD's initial firmware image) and `rtmr0`, `rtmr1`, `rtmr2` (what that
 *   firmware measured: configuration and ACPI tables, kernel and initrd, command line) are
 *   all non-empty lists: mr_td alone admits any OS booted by that firmware, and RTMRs without
 *   mr_td are written by firmware nobody identified;
 * - `sgx`: `mrEnclave` is a non-empty list, or `mrSigner` and `isvProdId` both are (a signer
 *   alone admits every enclave that key ever signed);
 * - `sev-snp`: `measurement` is a non-empty list (the launch digest: it covers the kernel,
 *   initrd and command line only when the firmware boots them measured).
 * An empty list is no reference value: it allows nothing, and says nothing about the software.
 */
export function missingReferenceValues(policy: AppraisalPolicy, kind: EvidenceKind): string | null {
  const rv = policy.referenceValues;
  switch (kind) {
    case 'sim':
      return null;
    case 'tpm2': {
      const t = rv.tpm2;
      const pcrPinned = Object.values(t?.pcrs ?? {}).some((idx) =>
        Object.values(idx ?? {}).some((vals) => nonEmpty(vals)),
      );
      const eventsPinned = Object.values(t?.events ?? {}).some((idx) =>
        Object.values(idx ?? {}).some((evs) => nonEmpty(evs)),
      );
      return nonEmpty(t?.pcrDigest) || pcrPinned || eventsPinned
        ? null
        : 'tpm2.pcrs (a PCR value), tpm2.pcrDigest or tpm2.events';
    }
    case 'tdx': {
      const t = rv.tdx;
      const missing = (['mrTd', 'rtmr0', 'rtmr1', 'rtmr2'] as const).filter((f) => !nonEmpty(t?.[f]));
      return missing.length === 0 ? null : missing.map((f) => `tdx.${f}`).join(', ');
    }
    case 'sgx': {
      const s = rv.sgx;
      if (nonEmpty(s?.mrEnclave) || (nonEmpty(s?.mrSigner) && nonEmpty(s?.isvProdId))) return null;
      return 'sgx.mrEnclave, or sgx.mrSigner with sgx.isvProdId';
    }
    case 'sev-snp':
      return nonEmpty(rv['sev-snp']?.measurement) ? null : "'sev-snp'.measurement";
  }
}

/** True when the policy's reference values identify the software of `kind` (missingReferenceValues). */
export function identifiesSoftware(policy: AppraisalPolicy, kind: EvidenceKind): boolean {
  return missingReferenceValues(policy, kind) === null;
}

/**
 * No policy accepts unmeasured software: evidence of a kind the policy allows is refused with
 * ATTESTATION_NO_REFERENCE_VALUES unless the policy's reference values identify its software
 * (missingReferenceValues). Null for a kind the policy does not allow (checkKind reports it).
 */
export function checkSoftwareIdentified(policy: AppraisalPolicy, kind: EvidenceKind): AppraisalReason | null {
  if (!policy.allowedKinds.includes(kind)) return null;
  const missing = missingReferenceValues(policy, kind);
  if (missing === null) return null;
  return {
    code: 'ATTESTATION_NO_REFERENCE_VALUES',
    message: `policy "${policy.name}" has no reference values identifying the ${kind} software (needs ${missing})`,
  };
}

/** Debug is refused unless the policy allows it; `null` (unknown) is refused too. */
export function checkDebug(policy: AppraisalPolicy, debug: boolean | null): AppraisalReason | null {
  if (debug === false || policy.allowDebug) return null;
  return {
    code: 'ATTESTATION_DEBUG_ENABLED',
    message:
      debug === null
        ? 'debug state unknown and the policy forbids debug'
        : `the TEE allows debugging and policy "${policy.name}" forbids it`,
  };
}

/**
 * The TCB status must be listed in `allowedTcbStatuses` (null = unknown = refused), and
 * every advisory must be in `allowedAdvisoryIds` when that list is present.
 */
export function checkTcb(
  policy: AppraisalPolicy,
  tcbStatus: string | null,
  advisoryIds: readonly string[],
): AppraisalReason[] {
  const out: AppraisalReason[] = [];
  if (tcbStatus === null || !policy.allowedTcbStatuses.includes(tcbStatus)) {
    out.push({
      code: 'ATTESTATION_TCB_OUT_OF_DATE',
      message: `TCB status ${tcbStatus ?? 'unknown'} is not allowed by policy "${policy.name}" (allowed: ${policy.allowedTcbStatuses.join(', ') || 'none'})`,
    });
  }
  if (policy.allowedAdvisoryIds !== undefined) {
    const bad = advisoryIds.filter((a) => !policy.allowedAdvisoryIds?.includes(a));
    if (bad.length > 0) {
      out.push({
        code: 'ATTESTATION_TCB_OUT_OF_DATE',
        message: `advisories not tolerated by policy "${policy.name}": ${bad.join(', ')}`,
      });
    }
  }
  return out;
}

/**
 * A reference-value check: allowed when `allowed` is absent or contains `actual`
 * (lowercase hex, or numbers). `what` names the field in the message.
 */
export function checkReference<T extends string | number>(
  what: string,
  allowed: readonly T[] | undefined,
  actual: T,
): AppraisalReason | null {
  if (allowed === undefined || allowed.includes(actual)) return null;
  return {
    code: 'ATTESTATION_MEASUREMENT_MISMATCH',
    message: `${what} ${String(actual)} is not among the ${allowed.length} allowed reference value(s)`,
  };
}

/** The evidence's report_data equals the expected binding (skipped when none is expected). */
export function checkReportData(
  expected: Uint8Array | undefined,
  actual: Uint8Array,
): AppraisalReason | null {
  if (expected === undefined || equalBytes(expected, actual)) return null;
  return {
    code: 'ATTESTATION_REPORT_DATA_MISMATCH',
    message: `report_data ${toHex(actual).slice(0, 16)}... does not equal the expected binding ${toHex(expected).slice(0, 16)}...`,
  };
}

/** Inputs of `finishAppraisal`: what the verifier established, before the verdict. */
export type AppraisalFacts = Omit<Appraisal, 'accepted' | 'status' | 'valid'> & {
  /** Reasons the evidence is not valid (signature, chain, collateral, format). */
  validityReasons?: AppraisalReason[];
};

/**
 * Turns facts and reasons into the verdict: `valid` when there is no validity reason,
 * `accepted` when valid with no reason at all. Status (EAR): `contraindicated` when not
 * accepted; `warning` when accepted with a TCB status other than `UpToDate` or with
 * advisories; `affirming` otherwise. Validity reasons come first in `reasons`.
 */
export function finishAppraisal(facts: AppraisalFacts): Appraisal {
  const { validityReasons = [], ...rest } = facts;
  const reasons = [...validityReasons, ...facts.reasons];
  const valid = validityReasons.length === 0;
  const accepted = valid && reasons.length === 0;
  let status: AppraisalStatus = 'contraindicated';
  if (accepted) {
    status =
      (facts.tcbStatus !== null && facts.tcbStatus !== 'UpToDate') || facts.advisoryIds.length > 0
        ? 'warning'
        : 'affirming';
  }
  return { ...rest, valid, accepted, status, reasons };
}

/** The appraisal of evidence that could not be judged at all (malformed, wrong kind...). */
export function invalidAppraisal(kind: EvidenceKind, reason: AppraisalReason, reportData = ''): Appraisal {
  return finishAppraisal({
    kind,
    tcbStatus: null,
    advisoryIds: [],
    measurement: '',
    reportData,
    debug: null,
    reasons: [],
    claims: {},
    validityReasons: [reason],
  });
}
