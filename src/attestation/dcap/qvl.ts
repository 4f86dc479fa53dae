/**
 * DCAP quote verification with a cache of verified collateral (docs/protocol.md §8 "tdx").
 *
 * The steps, their order and their error messages are those of @phala/dcap-qvl 0.3.9
 * `QuoteVerifier.verify` (src/verify.js there), whose parser (`Quote.parse`, `TcbInfo.fromJSON`,
 * the asn1.js certificate and CRL decoders) this module uses; qvl.test.ts checks both agree on
 * the Intel samples and on mutated quotes and collateral. What differs is that the results of
 * the checks that are a pure function of exact input bytes are kept in a bounded cache:
 *
 * - per collateral (its nine fields, keyed by the SHA-256 of their exact bytes): the parsed
 *   TCB info and QE identity, the TCB-info and QE-identity issuer chains verified to the root
 *   (signatures, leaf not a CA), the TCB info and QE identity signatures verified, and the
 *   serial numbers the two CRLs revoke;
 * - per PCK certificate chain (keyed by the SHA-256 of the quote's certification data, or of
 *   the collateral's `pck_certificate_chain`): the chain verified to the root, the leaf's
 *   public key and its Intel extension (CPUSVN, PCESVN, FMSPC);
 * - per attestation key (its 64 bytes): the parsed public key.
 *
 * An entry is stored only after every check of the step passed, at some time. Every appraisal
 * re-checks what depends on time or on other inputs: the TCB info and QE identity issue and
 * next-update dates, every certificate's validity period, and every certificate's serial
 * against the CRLs of the collateral at hand; and it verifies, on every call, the QE report
 * signature (PCK leaf key), the QE report hash binding the attestation key, the QE identity
 * policy, the attestation key's signature over the quote, FMSPC and the TCB level.
 */
import {
  createHash,
  createPublicKey,
  verify as cryptoVerify,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { type Collateral, constants, type Quote, TcbInfo, utils } from '@phala/dcap-qvl';
import { FerryError } from '../../kernel/index.ts';
import { TCB_STATUSES } from '../policy.ts';

const TEE_TYPE_SGX = 0x00000000;
const TEE_TYPE_TDX = 0x00000081;
const QE_HASH_DATA_BYTE_LEN = 96;
const ATTESTATION_KEY_LEN = 64;

/**
 * A map with at most `max` entries that forgets the least recently used one when full. Lookups
 * and insertions are O(1). Used for the DCAP caches so that no input can grow them without limit.
 */
export class BoundedCache<V> {
  readonly max: number;
  readonly #map = new Map<string, V>();

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new FerryError('INVALID_ARGUMENT', `max: expected a positive integer, got ${String(max)}`);
    }
    this.max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.max) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
    }
  }

  clear(): void {
    this.#map.clear();
  }
}

/** One certificate's facts re-checked at each appraisal. */
type CertFacts = { validFrom: number; validTo: number; serial: string };

/** A certificate chain verified to the root (signatures, leaf not a CA). */
export type VerifiedChain = {
  /** Leaf first, then the intermediates. */
  certs: CertFacts[];
  leafKey: KeyObject;
  /** X509Certificate.issuer of the leaf. */
  leafIssuer: string;
};

type PckFacts = VerifiedChain & {
  /** The leaf's Intel extension values, or the message of the error extracting them. */
  ext: { cpuSvn: Uint8Array; pceSvn: number; fmspc: Uint8Array } | { error: string };
};

type QeTcbLevel = { tcb: { isvsvn: number }; tcbStatus: string; advisoryIDs: string[] };
type QeIdentity = {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  miscselect: string;
  miscselectMask: string;
  attributes: string;
  attributesMask: string;
  mrsigner: string;
  isvprodid: number;
  tcbLevels: QeTcbLevel[];
};

/** Collateral whose signatures and chains verified; dates are re-checked at each use. */
type CollateralFacts = {
  tcbInfo: TcbInfo;
  tcbIssue: number;
  tcbNext: number;
  qeIdentity: QeIdentity;
  qeIssue: number;
  qeNext: number;
  /** Serials (hex, no leading zero bytes) revoked by the root CA CRL and the PCK CRL. */
  revoked: Set<string>;
  tcbChain: VerifiedChain;
  qeChain: VerifiedChain;
};

export type DcapCacheOptions = {
  /** Collateral entries kept (default 64). */
  maxCollateral?: number;
  /** PCK chains kept (default 1024). */
  maxPckChains?: number;
  /** Attestation keys kept (default 1024). */
  maxKeys?: number;
  /** Ferry's CRL check results kept (default 64, see crl.ts). */
  maxCrls?: number;
};

/** The caches of DCAP verification; bounded, see the module comment. */
export class DcapCache {
  readonly collateral: BoundedCache<CollateralFacts>;
  readonly pckChains: BoundedCache<PckFacts>;
  readonly keys: BoundedCache<KeyObject>;
  /** Used by verify.ts: crl.ts's facts, the issuer of a quote's PCK leaf, parsed collateral text. */
  readonly crls: BoundedCache<unknown>;
  readonly issuers: BoundedCache<string>;
  readonly parsed: BoundedCache<Collateral>;

  constructor(opts: DcapCacheOptions = {}) {
    this.collateral = new BoundedCache(opts.maxCollateral ?? 64);
    this.pckChains = new BoundedCache(opts.maxPckChains ?? 1024);
    this.keys = new BoundedCache(opts.maxKeys ?? 1024);
    this.crls = new BoundedCache(opts.maxCrls ?? 64);
    this.issuers = new BoundedCache(opts.maxPckChains ?? 1024);
    this.parsed = new BoundedCache(opts.maxCollateral ?? 64);
  }

  clear(): void {
    this.collateral.clear();
    this.pckChains.clear();
    this.keys.clear();
    this.crls.clear();
    this.issuers.clear();
    this.parsed.clear();
  }
}

/**
 * SHA-256 (hex) of tagged, length-prefixed parts: an unambiguous key for their exact bytes.
 * Null when a part is not text, bytes or an array of byte values (a malformed collateral
 * field given through the API): such an input is verified without the cache.
 */
export function cacheKey(parts: readonly unknown[]): string | null {
  const h = createHash('sha256');
  for (const p of parts) {
    let tag: string;
    let b: Uint8Array;
    if (typeof p === 'string') {
      tag = 's';
      b = Buffer.from(p, 'utf8');
    } else if (p instanceof Uint8Array) {
      tag = 'b';
      b = p;
    } else if (Array.isArray(p) && p.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) {
      tag = 'b';
      b = Buffer.from(p as number[]);
    } else {
      return null;
    }
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(b.length));
    h.update(tag);
    h.update(len);
    h.update(b);
  }
  return h.digest('hex');
}

/** Collateral objects frozen by `sealCollateral`, with the cache keys computed from them. */
const sealed = new WeakMap<object, Map<string, string | null>>();

/**
 * Freezes a parsed collateral object (and its byte arrays) so that the cache keys computed
 * from it can be remembered with it; returns it. Only objects sealed here are remembered.
 */
export function sealCollateral<T extends object>(c: T): T {
  for (const v of Object.values(c)) if (typeof v === 'object' && v !== null) Object.freeze(v);
  Object.freeze(c);
  sealed.set(c, new Map());
  return c;
}

/** `compute()`, remembered per sealed collateral object and `what`. */
export function keyOf(c: object, what: string, compute: () => string | null): string | null {
  const memo = sealed.get(c);
  if (!memo) return compute();
  if (memo.has(what)) return memo.get(what) as string | null;
  const k = compute();
  memo.set(what, k);
  return k;
}

function bytesOf(v: string | number[]): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'hex') : Buffer.from(v);
}

function serialHex(bn: { toString(base: number): string }): string {
  // bn.js renders a non-negative integer in minimal hex; dcap-qvl compares decimal strings.
  return bn.toString(16);
}

function certSerial(der: Uint8Array): string {
  return serialHex(utils.Certificate.decode(Buffer.from(der), 'der').tbsCertificate.serialNumber);
}

/** Serials revoked by a CRL, or none when it does not decode (dcap-qvl ignores such a CRL). */
function revokedSerials(crl: Buffer): string[] {
  try {
    const list = utils.CertificateList.decode(crl, 'der');
    const out: string[] = [];
    for (const r of list.tbsCertList.revokedCertificates ?? []) out.push(serialHex(r.userCertificate));
    return out;
  } catch {
    return [];
  }
}

/** dcap-qvl's isCaCertificate: basicConstraints with cA TRUE. */
function isCaCertificate(der: Uint8Array): boolean {
  try {
    const cert = utils.Certificate.decode(Buffer.from(der), 'der');
    for (const ext of cert.tbsCertificate.extensions ?? []) {
      const oid = ext.extnID as number[];
      if (Array.isArray(oid) && oid.join('.') === '2.5.29.19') {
        const v = ext.extnValue as Buffer;
        if (v.length >= 2 && v[0] === 0x30) {
          if (v[1] === 0) return false;
          if (v.length >= 5 && v[2] === 0x01 && v[3] === 0x01) return v[4] !== 0x00;
        }
        return false;
      }
    }
    return false;
  } catch {
    return false;
  }
}

function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----`;
}

const EXPIRED = 'Certificate is expired or not yet valid';
const REVOKED = 'Certificate is revoked';

/**
 * dcap-qvl's verifyCertificateChain, in its order: parse, leaf not a CA, leaf signed by the
 * first intermediate (or root), leaf valid at now, each intermediate signed by the next (or
 * root) and valid at now; then returns the facts for the revocation step (which the caller
 * does). Throws dcap-qvl's messages.
 */
function verifyChainUncached(
  leaf: Uint8Array,
  inter: Uint8Array[],
  nowMs: number,
  root: Uint8Array,
): VerifiedChain {
  const leafCert = new X509Certificate(pem(leaf));
  if (isCaCertificate(leaf)) throw new Error('CaUsedAsEndEntity');
  const issuerCert = new X509Certificate(pem(inter.length > 0 ? (inter[0] as Uint8Array) : root));
  if (!leafCert.verify(issuerCert.publicKey)) {
    throw new Error('Failed to verify certificate chain - leaf signature invalid');
  }
  const facts = (c: X509Certificate, der: Uint8Array): CertFacts => ({
    validFrom: new Date(c.validFrom).getTime(),
    validTo: new Date(c.validTo).getTime(),
    serial: certSerial(der),
  });
  const certs = [facts(leafCert, leaf)];
  if (!timeOk(certs[0] as CertFacts, nowMs)) throw new Error(EXPIRED);
  for (let i = 0; i < inter.length; i++) {
    const cert = new X509Certificate(pem(inter[i] as Uint8Array));
    const issuer = new X509Certificate(pem(i < inter.length - 1 ? (inter[i + 1] as Uint8Array) : root));
    if (!cert.verify(issuer.publicKey)) {
      throw new Error('Failed to verify certificate chain - intermediate signature invalid');
    }
    const f = facts(cert, inter[i] as Uint8Array);
    if (!timeOk(f, nowMs)) throw new Error(EXPIRED);
    certs.push(f);
  }
  return { certs, leafKey: leafCert.publicKey, leafIssuer: leafCert.issuer };
}

/** dcap-qvl's validity test: not (validFrom > now or validTo < now); NaN dates pass, as there. */
function timeOk(c: CertFacts, nowMs: number): boolean {
  return !(c.validFrom > nowMs || c.validTo < nowMs);
}

/** The checks of a cached chain that depend on time and on the CRLs, in dcap-qvl's order. */
function recheckChain(chain: VerifiedChain, nowMs: number): void {
  for (const c of chain.certs) if (!timeOk(c, nowMs)) throw new Error(EXPIRED);
}

function checkRevoked(chain: VerifiedChain, revoked: Set<string>, rootSerial: string): void {
  for (const c of chain.certs) if (revoked.has(c.serial)) throw new Error(REVOKED);
  if (revoked.has(rootSerial)) throw new Error(REVOKED);
}

/** A DER INTEGER of the unsigned big-endian `b` (minimal; a leading zero when the top bit is set). */
function derUint(b: Uint8Array): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  const pad = (v[0] as number) & 0x80 ? 1 : 0;
  const out = Buffer.alloc(2 + pad + v.length);
  out[0] = 0x02;
  out[1] = pad + v.length;
  out.set(v, 2 + pad);
  return out;
}

/**
 * dcap-qvl's encodeAsDer: raw r‖s (32 bytes each) as a DER ECDSA-Sig-Value. node:crypto
 * verifies DER signatures faster than `dsaEncoding: 'ieee-p1363'` ones.
 */
export function rawSignatureToDer(raw: Uint8Array): Buffer {
  const r = derUint(raw.subarray(0, 32));
  const s = derUint(raw.subarray(32, 64));
  return Buffer.concat([Buffer.from([0x30, r.length + s.length]), r, s]);
}

function verifyRawSignature(key: KeyObject, data: Uint8Array, raw: Uint8Array): boolean {
  if (raw.length !== 64) throw new Error(`Key length is invalid: expected 64, got ${raw.length}`);
  try {
    return cryptoVerify('sha256', data, key, rawSignatureToDer(raw));
  } catch {
    return false;
  }
}

function qeIdentityFromJson(json: string): QeIdentity {
  const obj = JSON.parse(json);
  const tcbLevels = obj.tcbLevels.map(
    (level: { tcb: { isvsvn: number }; tcbStatus: string; advisoryIDs?: string[] }) => ({
      tcb: { isvsvn: level.tcb.isvsvn },
      tcbStatus: level.tcbStatus,
      advisoryIDs: level.advisoryIDs || [],
    }),
  );
  return {
    id: obj.id,
    version: obj.version,
    issueDate: obj.issueDate,
    nextUpdate: obj.nextUpdate,
    miscselect: obj.miscselect,
    miscselectMask: obj.miscselectMask,
    attributes: obj.attributes,
    attributesMask: obj.attributesMask,
    mrsigner: obj.mrsigner,
    isvprodid: obj.isvprodid,
    tcbLevels,
  };
}

type Root = { der: Uint8Array; serial: string; key: string };
/** The last trust anchor used (in practice always Intel's), with its serial and cache key. */
let lastRoot: Root | undefined;

function rootOf(der: Uint8Array): Root {
  if (lastRoot && Buffer.from(lastRoot.der).equals(Buffer.from(der))) return lastRoot;
  const copy = Uint8Array.from(der);
  lastRoot = { der: copy, serial: certSerial(copy), key: cacheKey([copy]) as string };
  return lastRoot;
}

/**
 * The collateral steps of dcap-qvl's verify, from the TCB info to the QE identity signature,
 * in its order. Returns the facts to cache once they all passed at `nowMs`.
 */
function verifyCollateralUncached(collateral: Collateral, nowMs: number, root: Root): CollateralFacts {
  const nowSecs = nowMs / 1000;
  let tcbInfo: TcbInfo;
  try {
    tcbInfo = TcbInfo.fromJSON(collateral.tcb_info);
  } catch (e) {
    throw new Error('Failed to decode TcbInfo', { cause: e });
  }
  const tcbIssue = new Date(tcbInfo.issueDate).getTime();
  const tcbNext = new Date(tcbInfo.nextUpdate).getTime();
  checkTcbDates(tcbIssue, tcbNext, nowSecs);
  const revoked = new Set([
    ...revokedSerials(bytesOf(collateral.root_ca_crl)),
    ...revokedSerials(bytesOf(collateral.pck_crl)),
  ]);
  if (revoked.has(root.serial)) throw new Error(REVOKED);

  const tcbCerts = utils.extractCerts(Buffer.from(collateral.tcb_info_issuer_chain));
  if (tcbCerts.length < 2) throw new Error('Certificate chain is too short for TCB Info');
  const tcbChain = verifyChainUncached(tcbCerts[0] as Buffer, tcbCerts.slice(1), nowMs, root.der);
  checkRevoked(tcbChain, revoked, root.serial);
  if (
    !verifyRawSignature(
      tcbChain.leafKey,
      Buffer.from(collateral.tcb_info, 'utf-8'),
      bytesOf(collateral.tcb_info_signature),
    )
  ) {
    throw new Error('Signature is invalid for tcb_info');
  }

  let qeIdentity: QeIdentity;
  try {
    qeIdentity = qeIdentityFromJson(collateral.qe_identity);
  } catch (e) {
    throw new Error('Failed to decode QeIdentity', { cause: e });
  }
  const qeIssue = new Date(qeIdentity.issueDate).getTime();
  const qeNext = new Date(qeIdentity.nextUpdate).getTime();
  checkQeDates(qeIssue, qeNext, nowSecs);
  const qeCerts = utils.extractCerts(Buffer.from(collateral.qe_identity_issuer_chain));
  if (qeCerts.length < 2) throw new Error('Certificate chain is too short for QE Identity');
  const qeChain = verifyChainUncached(qeCerts[0] as Buffer, qeCerts.slice(1), nowMs, root.der);
  checkRevoked(qeChain, revoked, root.serial);
  if (
    !verifyRawSignature(
      qeChain.leafKey,
      Buffer.from(collateral.qe_identity, 'utf-8'),
      bytesOf(collateral.qe_identity_signature),
    )
  ) {
    throw new Error('Signature is invalid for qe_identity');
  }
  return { tcbInfo, tcbIssue, tcbNext, qeIdentity, qeIssue, qeNext, revoked, tcbChain, qeChain };
}

function checkTcbDates(issue: number, next: number, nowSecs: number): void {
  if (nowSecs < issue / 1000) throw new Error('TCBInfo issue date is in the future');
  if (nowSecs > next / 1000) throw new Error('TCBInfo expired');
}

function checkQeDates(issue: number, next: number, nowSecs: number): void {
  if (nowSecs < issue / 1000) throw new Error('QE Identity issue date is in the future');
  if (nowSecs > next / 1000) throw new Error('QE Identity expired');
}

/** The cached collateral's checks that depend on time, in dcap-qvl's order. */
function recheckCollateral(f: CollateralFacts, nowMs: number): void {
  const nowSecs = nowMs / 1000;
  checkTcbDates(f.tcbIssue, f.tcbNext, nowSecs);
  recheckChain(f.tcbChain, nowMs);
  checkQeDates(f.qeIssue, f.qeNext, nowSecs);
  recheckChain(f.qeChain, nowMs);
}

function collateralKey(c: Collateral, root: Root): string | null {
  return keyOf(c, `qvl:${root.key}`, () =>
    cacheKey([
      root.key,
      c.tcb_info,
      c.tcb_info_issuer_chain,
      c.tcb_info_signature,
      c.qe_identity,
      c.qe_identity_issuer_chain,
      c.qe_identity_signature,
      c.root_ca_crl,
      c.pck_crl,
    ]),
  );
}

function pckChainUncached(certs: Buffer[], nowMs: number, root: Root): PckFacts {
  const chain = verifyChainUncached(certs[0] as Buffer, certs.slice(1), nowMs, root.der);
  let ext: PckFacts['ext'];
  try {
    const section = utils.getIntelExtension(certs[0] as Buffer);
    ext = {
      cpuSvn: Uint8Array.from(utils.getCpuSvn(section)),
      pceSvn: utils.getPceSvn(section),
      fmspc: Uint8Array.from(utils.getFmspc(section)),
    };
  } catch (e) {
    ext = { error: e instanceof Error ? e.message : String(e) };
  }
  return { ...chain, ext };
}

/** The TCB status and advisories dcap-qvl's verify returns. */
export type QvlResult = { status: string; advisoryIds: string[] };

/**
 * dcap-qvl 0.3.9's verify of `raw` (already parsed as `quote`) with `collateral` at `nowMs`
 * against the trust anchor `rootDer`, using `cache` (none: every check from scratch). Throws
 * a plain Error with dcap-qvl's message when the quote is not valid.
 */
export function verifyQuoteCached(
  raw: Uint8Array,
  quote: Quote,
  collateral: Collateral,
  nowMs: number,
  rootDer: Uint8Array,
  cache: DcapCache | null,
): QvlResult {
  const nowSecs = Math.floor(nowMs / 1000);
  nowMs = nowSecs * 1000; // dcap-qvl works in whole seconds
  const signedQuoteLen = quote.signedLength();
  const h = quote.header;
  if (![3, 4, 5].includes(h.version)) throw new Error('Unsupported DCAP quote version');
  if (![TEE_TYPE_SGX, TEE_TYPE_TDX].includes(h.teeType)) throw new Error('Unsupported DCAP TEE type');
  if (h.teeType === TEE_TYPE_SGX && h.version !== 3) throw new Error('SGX TEE quote must have version 3');
  if (h.teeType === TEE_TYPE_TDX && h.version !== 4 && h.version !== 5) {
    throw new Error('TDX TEE quote must have version 4 or 5');
  }
  if (h.attestationKeyType !== constants.ATTESTATION_KEY_TYPE_ECDSA256_WITH_P256_CURVE) {
    throw new Error('Unsupported DCAP attestation key type');
  }

  const root = rootOf(rootDer);
  const cKey = cache ? collateralKey(collateral, root) : null;
  let facts = cKey === null ? undefined : cache?.collateral.get(cKey);
  if (facts) {
    recheckCollateral(facts, nowMs);
  } else {
    facts = verifyCollateralUncached(collateral, nowMs, root);
    if (cKey !== null) cache?.collateral.set(cKey, facts);
  }
  const { tcbInfo, qeIdentity, revoked } = facts;

  const expectedQeId = h.teeType === TEE_TYPE_TDX ? 'TD_QE' : 'QE';
  const allowedQeVersions = h.teeType === TEE_TYPE_TDX ? [2, 3] : [2];
  if (qeIdentity.id !== expectedQeId || !allowedQeVersions.includes(qeIdentity.version)) {
    throw new Error('Unsupported QE Identity id/version for the quote TEE type');
  }

  const authData = quote.authData.intoV3();
  const cd = authData.certificationData;
  const extra = (collateral as { pck_certificate_chain?: string }).pck_certificate_chain;
  let chainBytes: Uint8Array;
  if (extra) {
    chainBytes = Buffer.from(extra, 'utf-8');
    if (utils.extractCerts(Buffer.from(chainBytes)).length === 0) {
      throw new Error('Failed to extract PCK certificates from collateral');
    }
  } else {
    if (cd.certType !== constants.PCK_CERT_CHAIN) {
      throw new Error(
        `Unsupported DCAP PCK cert format: ${cd.certType}. Use get_collateral() to fetch PCK certificate.`,
      );
    }
    chainBytes = cd.body;
  }
  const pKey = cache ? cacheKey([root.key, chainBytes]) : null;
  let pck = pKey === null ? undefined : cache?.pckChains.get(pKey);
  if (pck) {
    recheckChain(pck, nowMs);
  } else {
    const certs = utils.extractCerts(Buffer.from(chainBytes));
    if (certs.length === 0) throw new Error('Failed to extract PCK certificates from quote');
    if (certs.length < 2) throw new Error('Certificate chain is too short in quote');
    pck = pckChainUncached(certs, nowMs, root);
    if (pKey !== null) cache?.pckChains.set(pKey, pck);
  }
  checkRevoked(pck, revoked, root.serial);

  // Every appraisal: the QE report signature by the PCK leaf key.
  if (!verifyRawSignature(pck.leafKey, authData.qeReport, authData.qeReportSignature)) {
    throw new Error('Signature is invalid for qe_report in quote');
  }
  const qeReport = decodeEnclaveReport(authData.qeReport);
  // The QE report binds the attestation key: SHA-256(key || QE auth data) in its report_data.
  const qeHashData = Buffer.alloc(QE_HASH_DATA_BYTE_LEN);
  Buffer.from(authData.ecdsaAttestationKey).copy(qeHashData, 0);
  Buffer.from(authData.qeAuthData).copy(qeHashData, ATTESTATION_KEY_LEN);
  const qeHash = createHash('sha256').update(qeHashData).digest();
  if (!qeHash.equals(Buffer.from(qeReport.reportData.subarray(0, 32))))
    throw new Error('QE report hash mismatch');
  const qeTcb = verifyQeIdentityPolicy(qeReport, qeIdentity);

  // Every appraisal: the attestation key's signature over the header and report.
  const akBytes = authData.ecdsaAttestationKey;
  const akKey = cache ? Buffer.from(akBytes).toString('hex') : '';
  let ak = cache?.keys.get(akKey);
  if (!ak) {
    ak = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(akBytes.slice(0, 32)).toString('base64url'),
        y: Buffer.from(akBytes.slice(32, 64)).toString('base64url'),
      },
      format: 'jwk',
    });
    cache?.keys.set(akKey, ak);
  }
  const signedData = raw.subarray(0, signedQuoteLen);
  if (!verifyRawSignature(ak, signedData, authData.ecdsaSignature)) {
    throw new Error('ISV enclave report signature is invalid');
  }

  if ('error' in pck.ext) throw new Error(pck.ext.error);
  const { cpuSvn, pceSvn, fmspc } = pck.ext;
  if (!Buffer.from(fmspc).equals(Buffer.from(tcbInfo.fmspc, 'hex'))) throw new Error('Fmspc mismatch');
  const tcbId = (tcbInfo as { id?: string }).id;
  if (h.teeType === TEE_TYPE_TDX) {
    if (tcbInfo.version < 3 || tcbId !== 'TDX')
      throw new Error('TDX quote with non-TDX TCB info in the collateral');
  } else if (tcbInfo.version < 2 || tcbId !== 'SGX') {
    throw new Error('SGX quote with non-SGX TCB info in the collateral');
  }
  const platform = matchPlatformTcb(tcbInfo, quote, cpuSvn, pceSvn);
  const final = mergeStatus(platform, qeTcb);
  if (!VALID_STATUSES.has(final.status)) throw new Error(`TCB status is invalid: ${final.status}`);
  validateAttrs(quote);
  return final;
}

type QeReport = {
  miscSelect: number;
  attributes: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
};

/** The fields dcap-qvl's EnclaveReport.decode reads from a 384-byte report. */
function decodeEnclaveReport(b: Uint8Array): QeReport {
  if (b.length < 384) throw new Error('Not enough data to fill buffer');
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  return {
    miscSelect: v.readUInt32LE(16),
    attributes: b.subarray(48, 64),
    mrSigner: b.subarray(128, 160),
    isvProdId: v.readUInt16LE(256),
    isvSvn: v.readUInt16LE(258),
    reportData: b.subarray(320, 384),
  };
}

/** The statuses a matched TCB level may have and still be accepted: every one but `Revoked`. */
const VALID_STATUSES = new Set<string>(TCB_STATUSES.filter((s) => s !== 'Revoked'));
const SEVERITY: Record<string, number> = {
  UpToDate: 0,
  SWHardeningNeeded: 1,
  ConfigurationNeeded: 2,
  ConfigurationAndSWHardeningNeeded: 3,
  OutOfDate: 4,
  OutOfDateConfigurationNeeded: 5,
  Revoked: 6,
};
const severity = (s: string) => SEVERITY[s] ?? 100;

function tcbStatus(status: string | undefined, advisoryIds: string[] | undefined): QvlResult {
  return { status: status || 'Unknown', advisoryIds: [...(advisoryIds || [])] };
}

function mergeStatus(a: QvlResult, b: QvlResult): QvlResult {
  const status = severity(b.status) > severity(a.status) ? b.status : a.status;
  const advisoryIds = [...a.advisoryIds];
  for (const id of b.advisoryIds) if (!advisoryIds.includes(id)) advisoryIds.push(id);
  return { status, advisoryIds };
}

function verifyQeIdentityPolicy(qe: QeReport, id: QeIdentity): QvlResult {
  const expectedMrsigner = Buffer.from(id.mrsigner, 'hex');
  if (!Buffer.from(qe.mrSigner).equals(expectedMrsigner)) {
    throw new Error(
      `QE MRSIGNER mismatch: expected ${id.mrsigner}, got ${Buffer.from(qe.mrSigner).toString('hex').toUpperCase()}`,
    );
  }
  if (qe.isvProdId !== id.isvprodid) {
    throw new Error(`QE ISVPRODID mismatch: expected ${id.isvprodid}, got ${qe.isvProdId}`);
  }
  if ((qe.attributes[0] as number) & 0x02) throw new Error('Debug mode is enabled');
  const misc = Buffer.from(id.miscselect, 'hex').readUInt32LE(0);
  const miscMask = Buffer.from(id.miscselectMask, 'hex').readUInt32LE(0);
  const qeMasked = qe.miscSelect & miscMask;
  const expMasked = misc & miscMask;
  if (qeMasked !== expMasked) {
    const f = (n: number) => n.toString(16).padStart(8, '0').toUpperCase();
    throw new Error(`QE MISCSELECT mismatch: expected ${f(expMasked)} (masked), got ${f(qeMasked)} (masked)`);
  }
  const attrs = Buffer.from(id.attributes, 'hex');
  const mask = Buffer.from(id.attributesMask, 'hex');
  for (let i = 0; i < 16; i++) {
    const e = (attrs[i] as number) & (mask[i] as number);
    const q = (qe.attributes[i] as number) & (mask[i] as number);
    if (e !== q) {
      const f = (n: number) => n.toString(16).padStart(2, '0').toUpperCase();
      throw new Error(`QE ATTRIBUTES mismatch at byte ${i}: expected ${f(e)} (masked), got ${f(q)} (masked)`);
    }
  }
  for (const level of id.tcbLevels) {
    if (qe.isvSvn >= level.tcb.isvsvn) return tcbStatus(level.tcbStatus, level.advisoryIDs);
  }
  if (id.tcbLevels.length === 0) throw new Error('No TCB levels found in QE Identity');
  const min = id.tcbLevels[id.tcbLevels.length - 1]?.tcb.isvsvn;
  throw new Error(`QE ISVSVN ${qe.isvSvn} is below minimum required ${min} from QE Identity`);
}

function svnAtLeast(actual: ArrayLike<number>, required: number[]): boolean {
  if (actual.length !== required.length) return false;
  for (let i = 0; i < actual.length; i++) if ((actual[i] as number) < (required[i] as number)) return false;
  return true;
}

function matchPlatformTcb(tcbInfo: TcbInfo, quote: Quote, cpuSvn: Uint8Array, pceSvn: number): QvlResult {
  for (const level of tcbInfo.tcbLevels) {
    if (pceSvn < level.tcb.pcesvn) continue;
    const sgx = level.tcb.sgxtcbcomponents.map((c) => c.svn);
    if (sgx.length === 0) throw new Error('No SGX components in the TCB info');
    if (!svnAtLeast(cpuSvn, sgx)) continue;
    if (quote.header.teeType === TEE_TYPE_TDX) {
      const td = quote.report.asTd10();
      if (!td) throw new Error('Failed to get TD10 report');
      const tdx = (level.tcb.tdxtcbcomponents ?? []).map((c) => c.svn);
      if (tdx.length === 0) throw new Error('No TDX components in the TCB info');
      if (!svnAtLeast(td.teeTcbSvn, tdx)) continue;
    }
    return tcbStatus(level.tcbStatus, level.advisoryIDs);
  }
  throw new Error('No matching TCB level found');
}

function validateAttrs(quote: Quote): void {
  const r = quote.report;
  const sgx = r.asSgx();
  if (sgx) {
    if ((sgx.attributes[0] as number) & 0x02) throw new Error('Debug mode is enabled');
    return;
  }
  const td15 = r.asTd15();
  if (td15 && !td15.mrServiceTd.every((b) => b === 0)) throw new Error('Invalid mr service td');
  const td = r.asTd10();
  if (!td) return;
  const a = td.tdAttributes as Uint8Array;
  const [b0, b1, b2, b3, b4, b5, b6, b7] = Array.from(a.subarray(0, 8)) as number[];
  if (b0 !== 0) throw new Error('Debug mode is enabled');
  const reservedLower = ((b3 & 0x0f) << 16) | (b2 << 8) | b1;
  const reservedBit29 = (b3 & 0x20) !== 0;
  const reservedOther = ((b7 & 0x7f) << 24) | (b6 << 16) | (b5 << 8) | b4;
  if (reservedLower !== 0 || reservedBit29 || reservedOther !== 0) {
    throw new Error('Reserved bits in TD attributes are set');
  }
  if ((b3 & 0x10) === 0) throw new Error('SEPT_VE_DISABLE is not enabled');
}
