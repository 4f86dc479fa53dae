/**
 * `Tpm2Verifier`: appraisal of tpm2 evidence (docs/protocol.md §8, tpm2) against an appraisal
 * policy. Validity is `verifyQuote` (signature, AK attributes, nonce = SHA256(report_data),
 * PCR digest, AK proof). The policy then judges: kind `tpm2` allowed, `referenceValues.tpm2`
 * (`pcrDigest`: the quote's PCR digest; `pcrs`: per bank and index, the quoted value;
 * `events`: per bank and index, the measured events of the TCG event log), and the expected
 * report_data. When the evidence carries an event log (`body.eventLog`), it must parse and
 * replay to every quoted PCR it touches, or the evidence is invalid. A TPM quote carries no
 * wall-clock time, TCB status or debug flag: freshness comes from the nonce (the binding
 * contains the attempt's seed), so
 * `maxEvidenceAgeSeconds`, `allowedTcbStatuses` and `allowDebug` do not apply; tcbStatus and
 * debug are reported as null.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { type CanonicalValue, toHex } from '../../kernel/index.ts';
import {
  checkKind,
  checkReference,
  checkReportData,
  checkSoftwareIdentified,
  finishAppraisal,
  invalidAppraisal,
} from '../policy.ts';
import type {
  Appraisal,
  AppraisalContext,
  AppraisalPolicy,
  AppraisalReason,
  Evidence,
  Verifier,
} from '../types.ts';
import { type ActivationRecord, activationFromCanonical } from './activation.ts';
import { type EventLog, isMeasured, readEventLog, replayEventLog } from './eventlog.ts';
import type { PcrValues } from './pcrs.ts';
import type { HashName } from './structures.ts';
import { type AkProofInput, type AkPublic, parseAkPublic, parseCertificates, verifyQuote } from './verify.ts';

/** Everything a quote appraisal needs, already parsed. */
export type QuoteAppraisalInput = {
  quote: Uint8Array;
  signature: Uint8Array;
  ak: AkPublic;
  nonce?: Uint8Array;
  pcrs?: PcrValues;
  proof?: AkProofInput;
  requireAkProof?: boolean;
  policy: AppraisalPolicy;
  now: Date;
  /** The 64-byte report_data the nonce was derived from, when known (evidence path). */
  reportData?: Uint8Array;
  expectedReportData?: Uint8Array;
  /** The TCG event log (crypto-agile, as Linux exposes it), when the evidence carries one. */
  eventLog?: Uint8Array;
};

/** Quoted PCR values by `bank:index`, hex, in the quote's selection order. */
type Quoted = Map<string, string>;

/**
 * Validity of the event log against a verified quote: for every quoted PCR of a bank the log
 * has and that the log touches, the replay equals the quoted value. Returns the reason naming
 * the first PCR (selection order) that differs, or null.
 */
function replayReason(log: EventLog, quoted: Quoted): AppraisalReason | null {
  const replayed = new Map<string, Record<string, string>>();
  const bad: string[] = [];
  let first = '';
  for (const [key, value] of quoted) {
    const [bank, i] = key.split(':') as [HashName, string];
    if (!log.banks.includes(bank)) continue;
    let r = replayed.get(bank);
    if (!r) {
      r = replayEventLog(log.events, bank);
      replayed.set(bank, r);
    }
    const got = r[i];
    if (got === undefined || got === value) continue;
    if (bad.length === 0) first = `PCR ${key}: the log gives ${got}, the quote ${value}`;
    bad.push(key);
  }
  if (bad.length === 0) return null;
  return {
    code: 'ATTESTATION_PCR_MISMATCH',
    message: `the event log does not replay to the quoted PCRs (${first}${bad.length > 1 ? `; also ${bad.slice(1).join(', ')}` : ''})`,
  };
}

/** At most this many event reasons per PCR: after a missing or extra event the rest is noise. */
const MAX_EVENT_REASONS_PER_PCR = 4;

/**
 * Policy reasons from referenceValues.tpm2.events (docs/protocol.md §9, appraisal of tpm2):
 * each pinned PCR must be quoted, and the log's measured events for it must be the policy's,
 * type and digest, in order. `log` is null when the evidence has none; the log has already
 * been found to replay to the quote.
 */
function eventReasons(policy: AppraisalPolicy, log: EventLog | null, quoted: Quoted): AppraisalReason[] {
  const pinned = policy.referenceValues.tpm2?.events ?? {};
  const pcrKeys = Object.entries(pinned).flatMap(([bank, idx]) =>
    Object.keys(idx)
      .sort((a, b) => Number(a) - Number(b))
      .map((i) => [bank as HashName, i] as const),
  );
  if (pcrKeys.length === 0) return [];
  const out: AppraisalReason[] = [];
  const mismatch = (message: string) => out.push({ code: 'ATTESTATION_MEASUREMENT_MISMATCH', message });
  if (!log) {
    mismatch(
      `policy "${policy.name}" pins the measured-boot events of PCR ${pcrKeys.map(([b, i]) => `${b}:${i}`).join(', ')}, and the evidence carries no event log`,
    );
    return out;
  }
  const replayed = new Map<HashName, Record<string, string>>();
  for (const [bank, i] of pcrKeys) {
    const key = `${bank}:${i}`;
    const expected = pinned[bank]?.[i] ?? [];
    const q = quoted.get(key);
    if (q === undefined) {
      out.push({
        code: 'ATTESTATION_PCR_MISMATCH',
        message: `policy "${policy.name}" pins the events of PCR ${key}, which the quote does not cover with a supplied value`,
      });
      continue;
    }
    if (!log.banks.includes(bank)) {
      mismatch(
        `policy "${policy.name}" pins the events of PCR ${key}, and the event log has no ${bank} bank`,
      );
      continue;
    }
    const got = log.events.filter((e) => e.pcr === Number(i) && isMeasured(e));
    let r = replayed.get(bank);
    if (!r) {
      r = replayEventLog(log.events, bank);
      replayed.set(bank, r);
    }
    // A PCR the log does not touch was not part of the replay check: it must still be at its reset value.
    if (r[i] === undefined && /[^0]/.test(q)) {
      out.push({
        code: 'ATTESTATION_PCR_MISMATCH',
        message: `PCR ${key} is ${q} in the quote, and the event log has no event for it`,
      });
      continue;
    }
    const name = (k: number) => {
      const w = expected[k]?.what;
      return w === undefined ? `#${k} (${expected[k]?.type})` : `'${w}'`;
    };
    let n = 0;
    for (let k = 0; k < Math.min(got.length, expected.length) && n < MAX_EVENT_REASONS_PER_PCR; k++) {
      const g = got[k] as (typeof got)[number];
      const e = expected[k] as (typeof expected)[number];
      if (g.typeName !== e.type) {
        mismatch(`PCR ${key} event ${name(k)}: type ${g.typeName}, expected ${e.type}`);
        n++;
      } else if (g.digests[bank] !== e.digest) {
        mismatch(`PCR ${key} event ${name(k)}: digest ${g.digests[bank]}, expected ${e.digest}`);
        n++;
      }
    }
    if (got.length < expected.length) {
      mismatch(
        `PCR ${key}: the event log has ${got.length} measured event(s), the policy ${expected.length}; event ${name(got.length)} is missing`,
      );
    } else if (got.length > expected.length) {
      const extra = got[expected.length] as (typeof got)[number];
      mismatch(
        `PCR ${key}: the event log has ${got.length} measured event(s), the policy ${expected.length}; event #${expected.length} (${extra.typeName}, digest ${extra.digests[bank]}) is not in the policy`,
      );
    }
  }
  return out;
}

/** Policy reasons from referenceValues.tpm2 for a verified quote. */
function referenceReasons(
  policy: AppraisalPolicy,
  measurement: string,
  quoted: Map<string, string>,
): AppraisalReason[] {
  const out: AppraisalReason[] = [];
  const rv = policy.referenceValues.tpm2;
  const d = checkReference('PCR digest', rv?.pcrDigest, measurement);
  if (d) out.push(d);
  for (const [bank, idx] of Object.entries(rv?.pcrs ?? {})) {
    for (const [i, allowed] of Object.entries(idx)) {
      const v = quoted.get(`${bank}:${i}`);
      if (v === undefined) {
        out.push({
          code: 'ATTESTATION_PCR_MISMATCH',
          message: `policy "${policy.name}" constrains PCR ${bank}:${i}, which the quote does not cover with a supplied value`,
        });
        continue;
      }
      const r = checkReference(`PCR ${bank}:${i}`, allowed, v);
      if (r) out.push(r);
    }
  }
  return out;
}

/**
 * Appraises one quote: validity from `verifyQuote`, then the policy. Shared by `Tpm2Verifier`
 * and `ferry attest verify tpm2`. Never throws for bad evidence.
 */
export function appraiseQuote(input: QuoteAppraisalInput): Appraisal {
  const v = verifyQuote({
    quote: input.quote,
    signature: input.signature,
    ak: input.ak,
    nonce: input.nonce,
    pcrs: input.pcrs,
    now: input.now,
    proof: input.proof,
    requireAkProof: input.requireAkProof,
  });
  const a = v.attest;
  const measurement = a ? toHex(a.pcrDigest) : '';
  const reportData = input.reportData ? toHex(input.reportData) : a ? toHex(a.extraData) : '';
  const reasons: AppraisalReason[] = [...v.notes];
  const k = checkKind(input.policy, 'tpm2');
  if (k) reasons.push(k);
  const sw = checkSoftwareIdentified(input.policy, 'tpm2');
  if (sw) reasons.push(sw);
  const claims: Appraisal['claims'] = { akProof: v.akProof };
  const quoted = new Map<string, string>();
  if (a) {
    claims.extraData = toHex(a.extraData);
    claims.clock = a.clockInfo.clock.toString();
    claims.resetCount = a.clockInfo.resetCount;
    claims.restartCount = a.clockInfo.restartCount;
    claims.safe = a.clockInfo.safe;
    claims.firmwareVersion = a.firmwareVersion.toString(16).padStart(16, '0');
    claims.pcrSelection = a.pcrSelect.map((s) => `${s.bank}:${s.pcrs.join(',')}`).join('+');
    claims.qualifiedSigner = toHex(a.qualifiedSigner);
    if (input.pcrs && v.valid) {
      for (const s of a.pcrSelect) {
        for (const i of s.pcrs) {
          const val = input.pcrs.get(s.bank)?.get(i);
          if (val) {
            quoted.set(`${s.bank}:${i}`, toHex(val));
            claims[`pcr.${s.bank}.${i}`] = toHex(val);
          }
        }
      }
    }
  }
  if (input.ak.tpm) claims.akName = toHex(input.ak.tpm.name);
  const failures = [...v.failures];
  let log: EventLog | null = null;
  if (input.eventLog !== undefined) {
    try {
      log = readEventLog(input.eventLog);
      claims.eventLogEvents = log.events.length;
      claims.eventLogBanks = log.banks.join(',');
    } catch (e) {
      failures.push({ code: 'ATTESTATION_MALFORMED', message: (e as Error).message });
    }
  }
  let replays = false;
  if (log && v.valid) {
    const r = replayReason(log, quoted);
    if (r) failures.push(r);
    else replays = true;
  }
  if (v.valid) reasons.push(...referenceReasons(input.policy, measurement, quoted));
  // Events are judged only from a log that parsed and replays to a valid quote.
  if (v.valid && (input.eventLog === undefined || replays)) {
    reasons.push(...eventReasons(input.policy, log, quoted));
  }
  if (input.reportData) {
    const r = checkReportData(input.expectedReportData, input.reportData);
    if (r) reasons.push(r);
  }
  return finishAppraisal({
    kind: 'tpm2',
    tcbStatus: null,
    advisoryIds: [],
    measurement,
    reportData,
    debug: null,
    reasons,
    claims,
    validityReasons: failures,
  });
}

export type Tpm2VerifierOptions = {
  /** CAs trusted for EK certificates (TPM manufacturers) and AK certificates (cloud vTPM CAs). */
  trustedCas: readonly X509Certificate[];
  /** Ed25519 public keys (32 bytes) of trusted credential activators. */
  trustedActivators?: readonly Uint8Array[];
  /** Require the AK to be proven (default true). Only tests and tools turn this off. */
  requireAkProof?: boolean;
};

function bytesField(body: Evidence['body'], key: string, nullable: false): Uint8Array;
function bytesField(body: Evidence['body'], key: string, nullable: true): Uint8Array | null;
function bytesField(body: Evidence['body'], key: string, nullable: boolean): Uint8Array | null {
  const v = body[key];
  if (v instanceof Uint8Array) return v;
  if (nullable && (v === null || v === undefined)) return null;
  throw new Error(`body.${key} must be bytes${nullable ? ' or null' : ''}`);
}

function pcrsField(v: CanonicalValue | undefined): PcrValues {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new Error('body.pcrs must be a map {bank: {index: bytes}}');
  }
  const out: PcrValues = new Map();
  for (const [bank, m] of Object.entries(v as Record<string, CanonicalValue>)) {
    if (!['sha1', 'sha256', 'sha384', 'sha512'].includes(bank))
      throw new Error(`body.pcrs: unknown bank ${bank}`);
    if (typeof m !== 'object' || m === null || Array.isArray(m) || m instanceof Uint8Array) {
      throw new Error(`body.pcrs.${bank} must be a map`);
    }
    const inner = new Map<number, Uint8Array>();
    for (const [i, x] of Object.entries(m as Record<string, CanonicalValue>)) {
      if (!/^(?:[0-9]|1[0-9]|2[0-3])$/.test(i) || !(x instanceof Uint8Array)) {
        throw new Error(`body.pcrs.${bank}.${i} must be an index 0-23 mapping to bytes`);
      }
      inner.set(Number(i), x);
    }
    out.set(bank as HashName, inner);
  }
  return out;
}

export class Tpm2Verifier implements Verifier {
  readonly kind = 'tpm2' as const;
  readonly #opts: Required<Tpm2VerifierOptions>;

  constructor(opts: Tpm2VerifierOptions) {
    if (!Array.isArray(opts?.trustedCas)) {
      throw new TypeError('trustedCas: expected an array of X509Certificate');
    }
    this.#opts = {
      trustedCas: [...opts.trustedCas],
      trustedActivators: [...(opts.trustedActivators ?? [])],
      requireAkProof: opts.requireAkProof ?? true,
    };
  }

  /** Appraises tpm2 evidence; never throws for bad evidence (see the module comment). */
  async appraise(evidence: Evidence, ctx: AppraisalContext): Promise<Appraisal> {
    if (evidence?.kind !== 'tpm2') {
      return invalidAppraisal('tpm2', {
        code: 'ATTESTATION_MALFORMED',
        message: `not tpm2 evidence (kind ${String(evidence?.kind)})`,
      });
    }
    const rd = evidence.reportData;
    if (!(rd instanceof Uint8Array) || rd.length !== 64) {
      return invalidAppraisal('tpm2', {
        code: 'ATTESTATION_MALFORMED',
        message: 'reportData must be 64 bytes',
      });
    }
    let input: Omit<QuoteAppraisalInput, 'policy' | 'now'>;
    try {
      const b = evidence.body;
      const ak = parseAkPublic(bytesField(b, 'akPublic', false));
      const ekCert = bytesField(b, 'ekCert', true);
      const akCert = bytesField(b, 'akCert', true);
      const chain = b.certChain ?? [];
      if (!Array.isArray(chain) || !chain.every((c) => c instanceof Uint8Array)) {
        throw new Error('body.certChain must be a list of DER certificates');
      }
      const activation: ActivationRecord | undefined =
        b.activation === null || b.activation === undefined
          ? undefined
          : activationFromCanonical(b.activation);
      input = {
        quote: bytesField(b, 'quote', false),
        signature: bytesField(b, 'signature', false),
        ak,
        nonce: new Uint8Array(createHash('sha256').update(rd).digest()),
        pcrs: pcrsField(b.pcrs),
        proof: {
          ekCert: ekCert ? parseCertificates(ekCert, 'body.ekCert')[0] : undefined,
          akCert: akCert ? parseCertificates(akCert, 'body.akCert')[0] : undefined,
          intermediates: (chain as Uint8Array[]).map(
            (c, i) => parseCertificates(c, `body.certChain[${i}]`)[0],
          ),
          trustedCas: this.#opts.trustedCas,
          activation,
          trustedActivators: this.#opts.trustedActivators,
        },
        requireAkProof: this.#opts.requireAkProof,
        eventLog: bytesField(b, 'eventLog', true) ?? undefined,
        reportData: rd,
        expectedReportData: ctx.expectedReportData,
      };
    } catch (e) {
      return invalidAppraisal(
        'tpm2',
        { code: 'ATTESTATION_MALFORMED', message: `tpm2 evidence body: ${(e as Error).message}` },
        toHex(rd),
      );
    }
    return appraiseQuote({ ...input, policy: ctx.policy, now: ctx.now });
  }
}
