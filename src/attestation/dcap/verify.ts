/**
 * TDX and SGX verifiers on Intel DCAP. Validity comes from the steps of @phala/dcap-qvl
 * (pinned 0.3.9) as qvl.ts performs them, with a bounded cache of verified collateral and
 * PCK chains, the collateral and the time passed explicitly and Intel's SGX Root CA from
 * `roots.ts` as the trust anchor; Ferry's policy comes after: reference values (mr_td and
 * RTMRs, mr_enclave and mr_signer), the report_data binding, debug and TCB status
 * (docs/protocol.md §8 "tdx", "sgx" and §9).
 */
import { type Collateral, type EnclaveReport, Quote, type TDReport10 } from '@phala/dcap-qvl';
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { equalBytes, FerryError, type ErrorCode, isFerryError, toHex } from '../../kernel/index.ts';
import {
  checkDebug,
  checkKind,
  checkReference,
  checkSoftwareIdentified,
  checkReportData,
  checkTcb,
  finishAppraisal,
  invalidAppraisal,
} from '../policy.ts';
import type { Appraisal, AppraisalContext, AppraisalReason, Evidence, Verifier } from '../types.ts';
import { checkDcapCrls, type DcapCrlFacts, recheckDcapCrls } from './crl.ts';
import { cacheKey, DcapCache, keyOf, sealCollateral, verifyQuoteCached } from './qvl.ts';
import { intelSgxRootCaDer } from './roots.ts';

export { BoundedCache, DcapCache, type DcapCacheOptions } from './qvl.ts';

export type { Collateral as DcapCollateral } from '@phala/dcap-qvl';

const hexOrBytes = z.union([
  z.string().regex(/^(?:[0-9a-fA-F]{2})*$/),
  z.array(z.number().int().min(0).max(255)),
]);
const COLLATERAL_SCHEMA = z.object({
  pck_crl_issuer_chain: z.string().min(1),
  root_ca_crl: hexOrBytes,
  pck_crl: hexOrBytes,
  tcb_info_issuer_chain: z.string().min(1),
  tcb_info: z.string().min(1),
  tcb_info_signature: hexOrBytes,
  qe_identity_issuer_chain: z.string().min(1),
  qe_identity: z.string().min(1),
  qe_identity_signature: hexOrBytes,
});

/**
 * Parses DCAP collateral: dcap-qvl's JSON object (`pck_crl_issuer_chain`, `root_ca_crl`,
 * `pck_crl`, `tcb_info_issuer_chain`, `tcb_info`, `tcb_info_signature`,
 * `qe_identity_issuer_chain`, `qe_identity`, `qe_identity_signature`), given as JSON text,
 * UTF-8 bytes or a parsed value. Throws ATTESTATION_MALFORMED naming the bad fields.
 */
export function parseCollateral(input: string | Uint8Array | unknown): Collateral {
  let value = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      value = JSON.parse(typeof input === 'string' ? input : new TextDecoder().decode(input));
    } catch (e) {
      throw new FerryError('ATTESTATION_MALFORMED', 'collateral is not valid JSON', { cause: e });
    }
  }
  const r = COLLATERAL_SCHEMA.safeParse(value);
  if (!r.success) {
    throw new FerryError('ATTESTATION_MALFORMED', 'collateral does not have the DCAP collateral shape', {
      hints: r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    });
  }
  return r.data as Collateral;
}

/**
 * parseCollateral of JSON text, remembered in `cache` by the exact text (a frozen object,
 * shared by the appraisals of the same text). Errors are not remembered.
 */
function parseCollateralText(text: string, cache: DcapCache | null): Collateral {
  const hit = cache?.parsed.get(text);
  if (hit) return hit;
  const c = sealCollateral(parseCollateral(text));
  cache?.parsed.set(text, c);
  return c;
}

/** Maps a dcap-qvl error message to a stable code. */
export function classifyDcapError(message: string): ErrorCode {
  if (/expired|not yet valid|in the future/i.test(message)) return 'ATTESTATION_COLLATERAL_EXPIRED';
  if (/TCB status is invalid|No matching TCB level|ISVSVN .* below/i.test(message))
    return 'ATTESTATION_TCB_OUT_OF_DATE';
  if (
    /certificate chain|revoked|CaUsedAsEndEntity|Fmspc|MRSIGNER|ISVPRODID|MISCSELECT|ATTRIBUTES mismatch|QE Identity id|non-TDX|non-SGX|too short|PCK cert/i.test(
      message,
    )
  ) {
    return 'ATTESTATION_CHAIN_INVALID';
  }
  if (/signature|hash mismatch/i.test(message)) return 'ATTESTATION_SIGNATURE_INVALID';
  return 'ATTESTATION_MALFORMED';
}

/**
 * dcap-qvl refuses some quotes only after every signature verified: a debug TD or enclave
 * ("Debug mode is enabled"), and TD attributes with reserved bits, without SEPT_VE_DISABLE,
 * or a non-zero mr_servicetd. The QE report's own debug check throws the same debug message
 * before the quote signature is checked, so that message counts only when the quote's report
 * is debug and the QE report (its ATTRIBUTES at byte 48 of the REPORT_BODY) is not. Returns
 * the policy reason for such a refusal, or null when `message` means the quote is invalid.
 */
export function postSignatureRefusal(
  message: string,
  reportDebug: boolean,
  qeDebug: boolean,
): AppraisalReason | null {
  if (message === 'Debug mode is enabled') {
    return reportDebug && !qeDebug
      ? {
          code: 'ATTESTATION_DEBUG_ENABLED',
          message: 'the quote comes from a debug TEE; dcap-qvl evaluates no TCB status for it',
        }
      : null;
  }
  if (
    /^(SEPT_VE_DISABLE is not enabled|Reserved bits in TD attributes are set|Invalid mr service td)$/.test(
      message,
    )
  ) {
    return { code: 'ATTESTATION_CONFIGURATION_REJECTED', message: `TD attributes refused: ${message}` };
  }
  return null;
}

/** Fields of a TD report (TD 1.0 layout; TD 1.5 adds mr_servicetd). */
export type TdxClaims = {
  teeTcbSvn: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  xfam: string;
  mrTd: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  reportData: string;
};

export type SgxClaims = {
  cpuSvn: string;
  miscSelect: number;
  attributes: string;
  mrEnclave: string;
  mrSigner: string;
  isvProdId: number;
  isvSvn: number;
  reportData: string;
};

/** What DCAP verification established. `tcbStatus` is null when dcap-qvl refused to evaluate it. */
export type DcapVerified = {
  tee: 'tdx' | 'sgx';
  quoteVersion: number;
  tcbStatus: string | null;
  advisoryIds: string[];
  debug: boolean;
  reportData: Uint8Array;
  tdx: TdxClaims | null;
  sgx: SgxClaims | null;
  /** Reasons found after every signature checked out (debug, TD attributes). */
  postReasons: AppraisalReason[];
};

function tdClaims(td: TDReport10): TdxClaims {
  return {
    teeTcbSvn: toHex(td.teeTcbSvn),
    mrSeam: toHex(td.mrSeam),
    mrSignerSeam: toHex(td.mrSignerSeam),
    seamAttributes: toHex(td.seamAttributes),
    tdAttributes: toHex(td.tdAttributes),
    xfam: toHex(td.xfam),
    mrTd: toHex(td.mrTd),
    mrConfigId: toHex(td.mrConfigId),
    mrOwner: toHex(td.mrOwner),
    mrOwnerConfig: toHex(td.mrOwnerConfig),
    rtmr0: toHex(td.rtMr0),
    rtmr1: toHex(td.rtMr1),
    rtmr2: toHex(td.rtMr2),
    rtmr3: toHex(td.rtMr3),
    reportData: toHex(td.reportData),
  };
}

function sgxClaims(r: EnclaveReport): SgxClaims {
  return {
    cpuSvn: toHex(r.cpuSvn),
    miscSelect: r.miscSelect,
    attributes: toHex(r.attributes),
    mrEnclave: toHex(r.mrEnclave),
    mrSigner: toHex(r.mrSigner),
    isvProdId: r.isvProdId,
    isvSvn: r.isvSvn,
    reportData: toHex(r.reportData),
  };
}

let rootCert: X509Certificate | undefined;
let sharedCache: DcapCache | undefined;

/**
 * The process-wide DCAP cache that `verifyDcapQuote` and the TDX and SGX verifiers use unless
 * given another (or null). Bounded: see DcapCache.
 */
export function defaultDcapCache(): DcapCache {
  sharedCache ??= new DcapCache();
  return sharedCache;
}

/** The issuer of the PCK leaf certificate carried in the quote (certification data type 5). */
function pckLeafIssuer(quote: Quote, cache: DcapCache | null): string | undefined {
  try {
    const cd = quote.authData.intoV3().certificationData;
    if (cd.certType !== 5) return undefined;
    const key = cache ? cacheKey(['pck-leaf-issuer', cd.body]) : null;
    const hit = key === null ? undefined : cache?.issuers.get(key);
    if (hit !== undefined) return hit;
    const pem = new TextDecoder()
      .decode(cd.body)
      .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)?.[0];
    const issuer = pem ? new X509Certificate(pem).issuer : undefined;
    if (issuer !== undefined && key !== null) cache?.issuers.set(key, issuer);
    return issuer;
  } catch {
    return undefined; // dcap-qvl reports the malformed chain
  }
}

/** crl.ts's checks, from a cached result of the same bytes when there is one. */
function checkCrlsCached(
  collateral: Collateral,
  root: X509Certificate,
  now: Date,
  issuer: string | undefined,
  cache: DcapCache | null,
): void {
  const key = cache
    ? keyOf(collateral, 'crls', () =>
        cacheKey(['crls', collateral.root_ca_crl, collateral.pck_crl, collateral.pck_crl_issuer_chain]),
      )
    : null;
  if (!cache || key === null) {
    checkDcapCrls(collateral, root, now, issuer);
    return;
  }
  const hit = cache.crls.get(key) as DcapCrlFacts | undefined;
  if (hit) recheckDcapCrls(hit, now, issuer);
  else cache.crls.set(key, checkDcapCrls(collateral, root, now, issuer));
}

/**
 * Verifies a DCAP quote with its collateral at `now`: the CRL checks of crl.ts, then dcap-qvl's
 * steps (qvl.ts) with the Intel SGX Root CA built in. `cache` (default: the process-wide one,
 * null for none) holds only results that are a pure function of exact input bytes; the checks
 * that depend on time and every signature over the quote itself are made on each call.
 * `expect` is the TEE the caller wants. Throws FerryError with ATTESTATION_MALFORMED,
 * ATTESTATION_SIGNATURE_INVALID, ATTESTATION_CHAIN_INVALID, ATTESTATION_COLLATERAL_EXPIRED or
 * ATTESTATION_TCB_OUT_OF_DATE (revoked or no matching TCB level) when the quote is not valid.
 * A quote whose signatures all verify but that dcap-qvl refuses for its attributes (debug,
 * TD attributes) is returned with `tcbStatus: null` and the refusal in `postReasons`.
 */
export function verifyDcapQuote(
  expect: 'tdx' | 'sgx',
  quote: Uint8Array,
  collateral: Collateral,
  now: Date,
  cache: DcapCache | null = defaultDcapCache(),
): DcapVerified {
  if (!(quote instanceof Uint8Array))
    throw new FerryError('INVALID_ARGUMENT', 'quote: expected a Uint8Array');
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new FerryError('INVALID_ARGUMENT', 'now: expected a valid Date');
  }
  let parsed: Quote;
  try {
    parsed = Quote.parse(quote);
  } catch (e) {
    throw new FerryError('ATTESTATION_MALFORMED', `${expect} quote does not parse`, {
      cause: e,
      hints: [(e as Error).message],
    });
  }
  const tee = parsed.report.isSgx() ? 'sgx' : 'tdx';
  if (tee !== expect) {
    throw new FerryError('ATTESTATION_MALFORMED', `the quote is a ${tee} quote, not ${expect}`);
  }
  let tdx: TdxClaims | null = null;
  let sgx: SgxClaims | null = null;
  let debug: boolean;
  let reportData: Uint8Array;
  if (tee === 'tdx') {
    const td = parsed.report.asTd10() ?? parsed.report.asTd15()?.base;
    if (!td) throw new FerryError('ATTESTATION_MALFORMED', 'TDX quote without a TD report');
    tdx = tdClaims(td);
    // TD_ATTRIBUTES byte 0 is TUD ("TD under debug"): bit 0 DEBUG, the rest reserved for it.
    debug = td.tdAttributes[0] !== 0;
    reportData = Uint8Array.from(td.reportData);
  } else {
    const en = parsed.report.asSgx();
    if (!en) throw new FerryError('ATTESTATION_MALFORMED', 'SGX quote without an enclave report');
    sgx = sgxClaims(en);
    // SGX ATTRIBUTES.DEBUG is bit 1 of the flags.
    debug = (en.attributes[0] & 0x02) !== 0;
    reportData = Uint8Array.from(en.reportData);
  }
  if (cache !== null && !(cache instanceof DcapCache)) {
    throw new FerryError('INVALID_ARGUMENT', 'cache: expected a DcapCache or null');
  }
  rootCert ??= new X509Certificate(intelSgxRootCaDer());
  checkCrlsCached(collateral, rootCert, now, pckLeafIssuer(parsed, cache), cache);
  const base = { tee, quoteVersion: parsed.header.version, debug, reportData, tdx, sgx } as const;
  try {
    const r = verifyQuoteCached(quote, parsed, collateral, now.getTime(), intelSgxRootCaDer(), cache);
    return { ...base, tcbStatus: r.status, advisoryIds: r.advisoryIds, postReasons: [] };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const qeReport = parsed.authData.intoV3().qeReport;
    const qeDebug = qeReport.length < 49 || (qeReport[48] & 0x02) !== 0;
    const post = postSignatureRefusal(message, debug, qeDebug);
    if (post) return { ...base, tcbStatus: null, advisoryIds: [], postReasons: [post] };
    const code = classifyDcapError(message);
    const status = /TCB status is invalid: (\w+)/.exec(message)?.[1];
    throw new FerryError(code, `${tee} quote: ${message}`, {
      cause: e,
      details: status ? { tcbStatus: status } : undefined,
    });
  }
}

/** The evidence body of kinds `tdx` and `sgx`: the quote and its collateral (JSON text). */
export type DcapEvidenceBody = { quote: Uint8Array; collateral?: string };

/** Supplies collateral when the evidence carries none (e.g. from a PCCS). */
export type CollateralProvider = (kind: 'tdx' | 'sgx', quote: Uint8Array) => Promise<Collateral>;

export type DcapVerifierOptions = {
  collateralProvider?: CollateralProvider;
  /** The cache of verified collateral and PCK chains (default: the process-wide one; null: none). */
  cache?: DcapCache | null;
};

async function appraiseDcap(
  kind: 'tdx' | 'sgx',
  evidence: Evidence,
  ctx: AppraisalContext,
  opts: DcapVerifierOptions,
): Promise<Appraisal> {
  const body = (evidence?.body ?? {}) as Partial<Record<string, unknown>>;
  const envelopeRd = evidence?.reportData instanceof Uint8Array ? toHex(evidence.reportData) : '';
  if (evidence?.kind !== kind) {
    return invalidAppraisal(kind, {
      code: 'ATTESTATION_MALFORMED',
      message: `not ${kind} evidence (kind ${String(evidence?.kind)})`,
    });
  }
  if (!(evidence.reportData instanceof Uint8Array) || evidence.reportData.length !== 64) {
    return invalidAppraisal(kind, {
      code: 'ATTESTATION_MALFORMED',
      message: 'evidence reportData must be 64 bytes',
    });
  }
  if (!(body.quote instanceof Uint8Array)) {
    return invalidAppraisal(
      kind,
      { code: 'ATTESTATION_MALFORMED', message: 'evidence body lacks quote bytes' },
      envelopeRd,
    );
  }
  const cache = opts.cache === undefined ? defaultDcapCache() : opts.cache;
  let collateral: Collateral;
  try {
    if (typeof body.collateral === 'string') collateral = parseCollateralText(body.collateral, cache);
    else if (body.collateral === undefined && opts.collateralProvider) {
      collateral = parseCollateral(await opts.collateralProvider(kind, body.quote));
    } else {
      return invalidAppraisal(
        kind,
        {
          code: 'ATTESTATION_MALFORMED',
          message: 'no collateral: the evidence carries none and no provider is configured',
        },
        envelopeRd,
      );
    }
  } catch (e) {
    if (!isFerryError(e)) throw e;
    return invalidAppraisal(kind, { code: e.code, message: [e.message, ...e.hints].join('; ') }, envelopeRd);
  }
  let v: DcapVerified;
  try {
    v = verifyDcapQuote(kind, body.quote, collateral, ctx.now, cache);
  } catch (e) {
    if (!isFerryError(e)) throw e;
    const a = invalidAppraisal(kind, { code: e.code, message: e.message }, envelopeRd);
    const st = e.details?.tcbStatus;
    return typeof st === 'string' ? { ...a, tcbStatus: st } : a;
  }
  const policy = ctx.policy;
  const reasons: AppraisalReason[] = [];
  const push = (r: AppraisalReason | null) => {
    if (r) reasons.push(r);
  };
  push(checkKind(policy, kind));
  push(checkSoftwareIdentified(policy, kind));
  push(checkDebug(policy, v.debug));
  for (const r of v.postReasons) if (r.code !== 'ATTESTATION_DEBUG_ENABLED') reasons.push(r);
  reasons.push(...checkTcb(policy, v.tcbStatus, v.advisoryIds));
  let measurement: string;
  let claims: Record<string, string | number | boolean | null>;
  if (v.tdx) {
    const ref = policy.referenceValues.tdx ?? {};
    measurement = v.tdx.mrTd;
    push(checkReference('mr_td', ref.mrTd, v.tdx.mrTd));
    push(checkReference('rtmr0', ref.rtmr0, v.tdx.rtmr0));
    push(checkReference('rtmr1', ref.rtmr1, v.tdx.rtmr1));
    push(checkReference('rtmr2', ref.rtmr2, v.tdx.rtmr2));
    push(checkReference('rtmr3', ref.rtmr3, v.tdx.rtmr3));
    push(checkReference('mr_seam', ref.mrSeam, v.tdx.mrSeam));
    claims = { quoteVersion: v.quoteVersion, ...v.tdx };
  } else if (v.sgx) {
    const ref = policy.referenceValues.sgx ?? {};
    measurement = v.sgx.mrEnclave;
    push(checkReference('mr_enclave', ref.mrEnclave, v.sgx.mrEnclave));
    push(checkReference('mr_signer', ref.mrSigner, v.sgx.mrSigner));
    push(checkReference('isv_prod_id', ref.isvProdId, v.sgx.isvProdId));
    if (ref.minIsvSvn !== undefined && v.sgx.isvSvn < ref.minIsvSvn) {
      reasons.push({
        code: 'ATTESTATION_MEASUREMENT_MISMATCH',
        message: `isv_svn ${v.sgx.isvSvn} is below the policy minimum ${ref.minIsvSvn}`,
      });
    }
    claims = { quoteVersion: v.quoteVersion, ...v.sgx };
  } else {
    throw new FerryError('INTERNAL', 'DCAP verification returned no report');
  }
  if (!equalBytes(evidence.reportData, v.reportData)) {
    reasons.push({
      code: 'ATTESTATION_REPORT_DATA_MISMATCH',
      message: "the evidence's reportData differs from the quote's report_data",
    });
  }
  push(checkReportData(ctx.expectedReportData, v.reportData));
  return finishAppraisal({
    kind,
    tcbStatus: v.tcbStatus,
    advisoryIds: v.advisoryIds,
    measurement,
    reportData: toHex(v.reportData),
    debug: v.debug,
    reasons,
    claims,
  });
}

/** Appraises `tdx` evidence (DCAP quote v4/v5 with a TD report). */
export class TdxVerifier implements Verifier {
  readonly kind = 'tdx' as const;
  readonly #opts: DcapVerifierOptions;
  constructor(opts: DcapVerifierOptions = {}) {
    this.#opts = opts;
  }
  appraise(evidence: Evidence, ctx: AppraisalContext): Promise<Appraisal> {
    return appraiseDcap('tdx', evidence, ctx, this.#opts);
  }
}

/** Appraises `sgx` evidence (DCAP quote v3 with an enclave report). */
export class SgxVerifier implements Verifier {
  readonly kind = 'sgx' as const;
  readonly #opts: DcapVerifierOptions;
  constructor(opts: DcapVerifierOptions = {}) {
    this.#opts = opts;
  }
  appraise(evidence: Evidence, ctx: AppraisalContext): Promise<Appraisal> {
    return appraiseDcap('sgx', evidence, ctx, this.#opts);
  }
}
