/**
 * Ferry's own SEV-SNP verifier on node:crypto. `verifySnpReport` establishes validity: the
 * chain ARK (built in) -> ASK/ASVK -> VCEK/VLEK with RSA-PSS SHA-384, every certificate
 * valid at `now`, the report's ECDSA P-384 / SHA-384 signature over bytes 0x000..0x29F, and
 * the VCEK's TCB and hwID extensions equal to the report's reported_tcb and chip_id. The
 * `SevSnpVerifier` then applies the appraisal policy (docs/protocol.md §8 "sev-snp", §9).
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { equalBytes, FerryError, isFerryError, toHex } from '../../kernel/index.ts';
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
import { certificateFields, derIa5, derSmallUint } from './der.ts';
import { parseSnpReport, type SnpReport, type TcbVersion, tcbString } from './report.ts';
import {
  type AmdChain,
  type AmdProduct,
  type AmdSigningKeyKind,
  builtInChains,
  isTrustedArk,
  parseAmdChain,
} from './roots.ts';

const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
const AMD = '1.3.6.1.4.1.3704.1';
/** VCEK / VLEK extension OIDs (AMD "Versioned Chip Endorsement Key" specification). */
export const SNP_OIDS = {
  structVersion: `${AMD}.1`,
  productName: `${AMD}.2`,
  blSpl: `${AMD}.3.1`,
  teeSpl: `${AMD}.3.2`,
  snpSpl: `${AMD}.3.3`,
  ucodeSpl: `${AMD}.3.8`,
  fmcSpl: `${AMD}.3.9`,
  hwId: `${AMD}.4`,
} as const;

/** Raw material of one SEV-SNP verification. */
export type SnpInput = {
  /** The 1184-byte report. */
  report: Uint8Array;
  /** The VCEK or VLEK certificate, DER or PEM. */
  vcek: Uint8Array;
  /** ASK (or ASVK) then ARK, PEM; absent = try every built-in chain. */
  chain?: Uint8Array | string;
  /** Certificates are judged at this time. */
  now: Date;
  /**
   * Trusted ARKs replacing the built-in AMD roots (a private PKI, tests). Absent = the
   * built-in Milan, Genoa and Turin ARKs.
   */
  trustAnchors?: readonly X509Certificate[];
};

/** What a successful verification established. */
export type SnpVerified = {
  report: SnpReport;
  product: AmdProduct | null;
  productName: string | null;
  keyKind: AmdSigningKeyKind;
  /** The TCB the VCEK certifies (equal to the report's reported_tcb). */
  certifiedTcb: TcbVersion;
};

function fail(
  code: 'ATTESTATION_CHAIN_INVALID' | 'ATTESTATION_SIGNATURE_INVALID',
  message: string,
  hints: string[] = [],
): never {
  throw new FerryError(code, message, { hints });
}

function parseCert(bytes: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new FerryError('ATTESTATION_MALFORMED', `${what} is not an X.509 certificate (DER or PEM)`, {
      cause: e,
    });
  }
}

function checkValidity(cert: X509Certificate, what: string, now: Date): void {
  if (cert.validFromDate.getTime() > now.getTime() || cert.validToDate.getTime() < now.getTime()) {
    throw new FerryError('ATTESTATION_COLLATERAL_EXPIRED', `${what} is not valid at ${now.toISOString()}`, {
      hints: [`valid from ${cert.validFromDate.toISOString()} to ${cert.validToDate.toISOString()}`],
    });
  }
}

function isPss(cert: X509Certificate): boolean {
  const f = certificateFields(new Uint8Array(cert.raw));
  return f.signatureAlgorithm === OID_RSASSA_PSS && f.pssHash === OID_SHA384;
}

/** ARK self-signed, ASK by ARK, leaf by ASK; all RSASSA-PSS with SHA-384; names chain. */
function chainVerifies(chain: AmdChain, leaf: X509Certificate): boolean {
  const { ask, ark } = chain;
  // Only successes are cached, keyed by the exact bytes of all three certificates: the same
  // bytes verify the same way every time. Validity at `now` is checked on every call.
  const key = createHash('sha256').update(ark.raw).update(ask.raw).update(leaf.raw).digest('hex');
  if (VERIFIED_CHAINS.has(key)) return true;
  const ok =
    isPss(ark) &&
    isPss(ask) &&
    isPss(leaf) &&
    ark.checkIssued(ark) &&
    ark.verify(ark.publicKey) &&
    ask.checkIssued(ark) &&
    ask.verify(ark.publicKey) &&
    leaf.checkIssued(ask) &&
    leaf.verify(ask.publicKey);
  if (ok) {
    if (VERIFIED_CHAINS.size >= VERIFIED_CHAINS_MAX)
      VERIFIED_CHAINS.delete(VERIFIED_CHAINS.values().next().value as string);
    VERIFIED_CHAINS.add(key);
  }
  return ok;
}

/** Chains (ARK, ASK, leaf bytes) whose signatures verified; oldest evicted first. */
const VERIFIED_CHAINS = new Set<string>();
const VERIFIED_CHAINS_MAX = 1024;

/**
 * Verifies a report against its VCEK/VLEK and an AMD chain. Returns what it established, or
 * throws a FerryError: ATTESTATION_MALFORMED (unparseable input), ATTESTATION_CHAIN_INVALID
 * (no trusted chain, or VCEK extensions that do not match the report),
 * ATTESTATION_COLLATERAL_EXPIRED (a certificate outside its validity at `now`),
 * ATTESTATION_SIGNATURE_INVALID (the report signature).
 */
export function verifySnpReport(input: SnpInput): SnpVerified {
  if (!(input.now instanceof Date) || Number.isNaN(input.now.getTime())) {
    throw new FerryError('INVALID_ARGUMENT', 'now: expected a valid Date');
  }
  const report = parseSnpReport(input.report);
  if (report.signatureAlgo !== 1) {
    throw new FerryError('ATTESTATION_MALFORMED', `unsupported signature algorithm ${report.signatureAlgo}`, {
      hints: ['expected: 1 (ECDSA P-384 with SHA-384)'],
    });
  }
  if (report.signingKey !== 0 && report.signingKey !== 1) {
    throw new FerryError(
      'ATTESTATION_MALFORMED',
      `report signing key ${report.signingKey} is neither VCEK nor VLEK`,
    );
  }
  const keyKind: AmdSigningKeyKind = report.signingKey === 0 ? 'vcek' : 'vlek';
  const leaf = parseCert(input.vcek, keyKind.toUpperCase());

  let candidates: readonly AmdChain[];
  if (input.chain !== undefined) {
    const given = parseAmdChain(input.chain, 'chain');
    const trusted = input.trustAnchors
      ? input.trustAnchors.some((a) => a.raw.equals(given.ark.raw))
      : isTrustedArk(given.ark);
    if (!trusted) {
      fail('ATTESTATION_CHAIN_INVALID', 'the chain ends in an ARK that is not an AMD root of trust', [
        `ARK subject: ${given.ark.subject.replace(/\n/g, ', ')}`,
        'expected: the ARK of Milan, Genoa or Turin',
      ]);
    }
    candidates = [given];
  } else if (input.trustAnchors) {
    throw new FerryError('INVALID_ARGUMENT', 'chain: required with trustAnchors');
  } else {
    candidates = builtInChains().filter((c) => c.key === keyKind);
  }
  const chain = candidates.find((c) => chainVerifies(c, leaf));
  if (!chain) {
    fail('ATTESTATION_CHAIN_INVALID', `the ${keyKind.toUpperCase()} does not chain to a trusted AMD ARK`, [
      `${keyKind.toUpperCase()} issuer: ${leaf.issuer.replace(/\n/g, ', ')}`,
      input.chain !== undefined ? 'the given --chain does not sign it' : 'no built-in chain signs it',
    ]);
  }
  checkValidity(chain.ark, 'ARK', input.now);
  checkValidity(chain.ask, keyKind === 'vcek' ? 'ASK' : 'ASVK', input.now);
  checkValidity(leaf, keyKind.toUpperCase(), input.now);

  const details = leaf.publicKey.asymmetricKeyDetails;
  if (leaf.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    fail('ATTESTATION_CHAIN_INVALID', `${keyKind.toUpperCase()} key is not ECDSA P-384`);
  }
  if (!report.signaturePaddingZero) {
    fail('ATTESTATION_SIGNATURE_INVALID', 'report signature: non-zero bytes above the 48-byte r or s');
  }
  const sigOk = cryptoVerify(
    'sha384',
    report.signed,
    { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' },
    report.signatureP1363,
  );
  if (!sigOk) fail('ATTESTATION_SIGNATURE_INVALID', 'the report signature does not verify under the VCEK');

  // The VCEK certifies one TCB and (VCEK only) one chip.
  const ext = certificateFields(new Uint8Array(leaf.raw)).extensions;
  const spl = (oid: string, what: string): number => {
    const v = ext.get(oid);
    if (v === undefined)
      fail('ATTESTATION_CHAIN_INVALID', `${keyKind.toUpperCase()} lacks the ${what} extension`);
    return derSmallUint(v, what);
  };
  const certifiedTcb: TcbVersion = {
    bootloader: spl(SNP_OIDS.blSpl, 'blSPL'),
    tee: spl(SNP_OIDS.teeSpl, 'teeSPL'),
    snp: spl(SNP_OIDS.snpSpl, 'snpSPL'),
    microcode: spl(SNP_OIDS.ucodeSpl, 'ucodeSPL'),
    fmc: ext.has(SNP_OIDS.fmcSpl) ? spl(SNP_OIDS.fmcSpl, 'fmcSPL') : null,
  };
  const r = report.reportedTcb;
  if (
    certifiedTcb.bootloader !== r.bootloader ||
    certifiedTcb.tee !== r.tee ||
    certifiedTcb.snp !== r.snp ||
    certifiedTcb.microcode !== r.microcode ||
    (certifiedTcb.fmc !== null && certifiedTcb.fmc !== r.fmc)
  ) {
    fail(
      'ATTESTATION_CHAIN_INVALID',
      `${keyKind.toUpperCase()} TCB does not match the report's reported_tcb`,
      [`certificate: ${tcbString(certifiedTcb)}`, `report: ${tcbString(r)}`],
    );
  }
  if (keyKind === 'vcek') {
    const hwId = ext.get(SNP_OIDS.hwId);
    if (hwId === undefined) fail('ATTESTATION_CHAIN_INVALID', 'VCEK lacks the hwID extension');
    const head = report.chipId.subarray(0, hwId.length);
    const tail = report.chipId.subarray(hwId.length);
    if (hwId.length === 0 || !equalBytes(head, hwId) || !tail.every((b) => b === 0)) {
      fail('ATTESTATION_CHAIN_INVALID', "VCEK hwID does not equal the report's chip_id");
    }
  }
  const pn = ext.get(SNP_OIDS.productName);
  const productName = pn === undefined ? null : derIa5(pn, 'productName');
  if (productName !== null && chain.product !== null && !productName.startsWith(chain.product)) {
    fail(
      'ATTESTATION_CHAIN_INVALID',
      `${keyKind.toUpperCase()} product ${productName} does not match the ${chain.product} chain`,
    );
  }
  return { report, product: chain.product, productName, keyKind, certifiedTcb };
}

/** The evidence body of kind `sev-snp` (docs/protocol.md §8 "sev-snp"). */
export type SevSnpEvidenceBody = { report: Uint8Array; vcek?: Uint8Array; chain?: Uint8Array };

function tcbAtLeast(
  t: TcbVersion,
  min: { bootloader: number; tee: number; snp: number; microcode: number },
): boolean {
  return (
    t.bootloader >= min.bootloader && t.tee >= min.tee && t.snp >= min.snp && t.microcode >= min.microcode
  );
}

/** Appraises `sev-snp` evidence: `verifySnpReport`, then the policy. Never throws for bad evidence. */
export class SevSnpVerifier implements Verifier {
  readonly kind = 'sev-snp' as const;
  readonly #opts: SevSnpVerifierOptions;

  constructor(opts: SevSnpVerifierOptions = {}) {
    if (opts.trustAnchors !== undefined && !opts.trustAnchors.every((a) => a instanceof X509Certificate)) {
      throw new FerryError('INVALID_ARGUMENT', 'trustAnchors: expected X509Certificate[]');
    }
    this.#opts = { ...opts };
  }

  async appraise(evidence: Evidence, ctx: AppraisalContext): Promise<Appraisal> {
    return appraiseSevSnp(evidence, ctx, this.#opts);
  }
}

export type SevSnpVerifierOptions = {
  /**
   * ARKs trusted instead of the built-in AMD roots (a private PKI, tests); evidence must then
   * carry its chain. Absent = the built-in Milan, Genoa and Turin ARKs.
   */
  trustAnchors?: readonly X509Certificate[];
};

/** The function behind SevSnpVerifier.appraise. */
export function appraiseSevSnp(
  evidence: Evidence,
  ctx: AppraisalContext,
  opts: SevSnpVerifierOptions = {},
): Appraisal {
  const body = (evidence?.body ?? {}) as Partial<Record<string, unknown>>;
  const envelopeRd = evidence?.reportData instanceof Uint8Array ? toHex(evidence.reportData) : '';
  if (evidence?.kind !== 'sev-snp') {
    return invalidAppraisal('sev-snp', {
      code: 'ATTESTATION_MALFORMED',
      message: `not sev-snp evidence (kind ${String(evidence?.kind)})`,
    });
  }
  if (!(evidence.reportData instanceof Uint8Array) || evidence.reportData.length !== 64) {
    return invalidAppraisal('sev-snp', {
      code: 'ATTESTATION_MALFORMED',
      message: 'evidence reportData must be 64 bytes',
    });
  }
  if (!(body.report instanceof Uint8Array)) {
    return invalidAppraisal(
      'sev-snp',
      { code: 'ATTESTATION_MALFORMED', message: 'evidence body lacks report bytes' },
      envelopeRd,
    );
  }
  if (!(body.vcek instanceof Uint8Array)) {
    return invalidAppraisal(
      'sev-snp',
      { code: 'ATTESTATION_MALFORMED', message: 'evidence body lacks the VCEK certificate' },
      envelopeRd,
    );
  }
  if (body.chain !== undefined && !(body.chain instanceof Uint8Array)) {
    return invalidAppraisal(
      'sev-snp',
      { code: 'ATTESTATION_MALFORMED', message: 'evidence body chain must be bytes (PEM)' },
      envelopeRd,
    );
  }
  let v: SnpVerified;
  try {
    v = verifySnpReport({
      report: body.report,
      vcek: body.vcek,
      chain: body.chain as Uint8Array | undefined,
      now: ctx.now,
      trustAnchors: opts.trustAnchors,
    });
  } catch (e) {
    if (!isFerryError(e)) throw e;
    let rd = envelopeRd;
    try {
      rd = toHex(parseSnpReport(body.report as Uint8Array).reportData);
    } catch {
      // keep the envelope's
    }
    return invalidAppraisal('sev-snp', { code: e.code, message: [e.message, ...e.hints].join('; ') }, rd);
  }
  const rep = v.report;
  const policy = ctx.policy;
  const ref = policy.referenceValues['sev-snp'] ?? {};
  const reasons: AppraisalReason[] = [];
  const push = (r: AppraisalReason | null) => {
    if (r) reasons.push(r);
  };
  push(checkKind(policy, 'sev-snp'));
  push(checkSoftwareIdentified(policy, 'sev-snp'));
  push(checkDebug(policy, rep.policy.debug));
  const tcbOk = ref.minTcb === undefined || tcbAtLeast(rep.reportedTcb, ref.minTcb);
  const tcbStatus = tcbOk ? 'UpToDate' : 'OutOfDate';
  reasons.push(...checkTcb(policy, tcbStatus, []));
  if (!tcbOk && ref.minTcb) {
    reasons.push({
      code: 'ATTESTATION_TCB_OUT_OF_DATE',
      message: `reported TCB ${tcbString(rep.reportedTcb)} is below the policy minimum bl${ref.minTcb.bootloader}-tee${ref.minTcb.tee}-snp${ref.minTcb.snp}-ucode${ref.minTcb.microcode}`,
    });
  }
  const measurement = toHex(rep.measurement);
  push(checkReference('measurement', ref.measurement, measurement));
  push(checkReference('host_data', ref.hostData, toHex(rep.hostData)));
  if (ref.maxVmpl !== undefined && rep.vmpl > ref.maxVmpl) {
    reasons.push({
      code: 'ATTESTATION_CONFIGURATION_REJECTED',
      message: `VMPL ${rep.vmpl} exceeds the policy maximum ${ref.maxVmpl}`,
    });
  }
  if (rep.policy.migrationAgent && ref.allowMigrationAgent !== true) {
    reasons.push({
      code: 'ATTESTATION_CONFIGURATION_REJECTED',
      message: 'guest policy allows a migration agent and the appraisal policy does not',
    });
  }
  if (rep.policy.smt && ref.allowSmt === false) {
    reasons.push({
      code: 'ATTESTATION_CONFIGURATION_REJECTED',
      message: 'guest policy allows SMT and the appraisal policy does not',
    });
  }
  if (!equalBytes(evidence.reportData, rep.reportData)) {
    reasons.push({
      code: 'ATTESTATION_REPORT_DATA_MISMATCH',
      message: "the evidence's reportData differs from the report's report_data",
    });
  }
  push(checkReportData(ctx.expectedReportData, rep.reportData));
  return finishAppraisal({
    kind: 'sev-snp',
    tcbStatus,
    advisoryIds: [],
    measurement,
    reportData: toHex(rep.reportData),
    debug: rep.policy.debug,
    reasons,
    claims: {
      version: rep.version,
      product: v.product,
      productName: v.productName,
      signingKey: v.keyKind,
      guestPolicy: rep.policy.raw.toString(16).padStart(16, '0'),
      guestSvn: rep.guestSvn,
      vmpl: rep.vmpl,
      migrationAgent: rep.policy.migrationAgent,
      smt: rep.policy.smt,
      hostData: toHex(rep.hostData),
      idKeyDigest: toHex(rep.idKeyDigest),
      familyId: toHex(rep.familyId),
      imageId: toHex(rep.imageId),
      chipId: toHex(rep.chipId),
      reportedTcb: tcbString(rep.reportedTcb),
      currentTcb: tcbString(rep.currentTcb),
      launchTcb: tcbString(rep.launchTcb),
    },
  });
}
