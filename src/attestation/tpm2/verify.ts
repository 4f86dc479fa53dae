/**
 * TPM 2.0 quote verification on node:crypto.
 *
 * `verifyQuote` checks, in order: the TPMS_ATTEST parses and is a TPM-generated quote (magic
 * 0xff544347, type 0x8018); the TPMT_SIGNATURE verifies over the exact TPMS_ATTEST bytes with
 * the AK (RSASSA-PKCS1-v1_5, RSASSA-PSS, or ECDSA with r/s as TPM2B); the AK is a restricted,
 * fixedTPM signing key (when its TPMT_PUBLIC is known); extraData equals the expected nonce;
 * the pcrDigest equals the digest of the supplied PCR values (signing-scheme hash); and the AK
 * is proven by an AK certificate chaining to a trusted CA, or by an activation record tying it
 * to an EK certificate chaining to a trusted CA. It never throws for bad evidence: every
 * failure is a reason. `failures` make the quote invalid; `notes` (for instance "an EK
 * certificate alone does not bind the AK") do not, but a policy verdict treats them as
 * reasons not to accept.
 */
import {
  constants,
  createPublicKey,
  type KeyObject,
  verify as cryptoVerify,
  X509Certificate,
} from 'node:crypto';
import { concatBytes, equalBytes, FerryError, toHex } from '../../kernel/index.ts';
import type { AppraisalReason } from '../types.ts';
import { type ActivationRecord, checkActivationRecord } from './activation.ts';
import { computePcrDigest, type PcrValues } from './pcrs.ts';
import {
  parseQuoteAttest,
  parseSignature,
  parseTpm2bPublic,
  parseTpmtPublic,
  type QuoteAttest,
  TPM_ALG,
  TPMA_OBJECT,
  type TpmPublic,
  type TpmSignature,
} from './structures.ts';

/** An AK: its public key, and its TPMT_PUBLIC when known (then attributes and name are checked). */
export type AkPublic = { key: KeyObject; tpm: TpmPublic | null };

/**
 * Reads an AK public key in any of: PEM or DER SubjectPublicKeyInfo, TPM2B_PUBLIC, TPMT_PUBLIC.
 * Detection: PEM by its `-----BEGIN` line; DER by its leading SEQUENCE tag 0x30; TPM2B_PUBLIC
 * when the first u16 equals the remaining length; TPMT_PUBLIC otherwise.
 * Throws ATTESTATION_MALFORMED when none parses.
 */
export function parseAkPublic(bytes: Uint8Array): AkPublic {
  if (!(bytes instanceof Uint8Array) || bytes.length < 4) {
    throw new FerryError('ATTESTATION_MALFORMED', 'AK public key: too short or not bytes');
  }
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
  if (head.includes('-----BEGIN')) {
    try {
      return { key: createPublicKey(Buffer.from(bytes)), tpm: null };
    } catch (e) {
      throw new FerryError('ATTESTATION_MALFORMED', 'AK public key: PEM is not a public key', { cause: e });
    }
  }
  if (bytes[0] === 0x30) {
    try {
      return { key: createPublicKey({ key: Buffer.from(bytes), format: 'der', type: 'spki' }), tpm: null };
    } catch (e) {
      throw new FerryError('ATTESTATION_MALFORMED', 'AK public key: DER is not a SubjectPublicKeyInfo', {
        cause: e,
      });
    }
  }
  const size = (bytes[0] << 8) | bytes[1];
  const tpm = size === bytes.length - 2 ? parseTpm2bPublic(bytes) : parseTpmtPublic(bytes);
  return { key: tpm.key, tpm };
}

/** Parses certificates from PEM (one or more) or a single DER certificate. */
export function parseCertificates(bytes: Uint8Array, what: string): X509Certificate[] {
  const text = Buffer.from(bytes).toString('latin1');
  try {
    if (text.includes('-----BEGIN CERTIFICATE-----')) {
      const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      return blocks.map((b) => new X509Certificate(b));
    }
    return [new X509Certificate(Buffer.from(bytes))];
  } catch (e) {
    throw new FerryError('ATTESTATION_MALFORMED', `${what}: not an X.509 certificate (PEM or DER)`, {
      cause: e,
    });
  }
}

/**
 * Verifies that `leaf` chains to one of `trusted` through `intermediates`, every certificate
 * valid at `now`. Returns null when it does, else a message. A trusted certificate is a trust
 * anchor whatever its own issuer (its validity period is still checked); an intermediate must
 * be a CA certificate (basicConstraints cA = true).
 */
export function checkChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
  now: Date,
): string | null {
  if (trusted.length === 0) return 'no trusted CA certificates are configured';
  const t = now.getTime();
  const inTime = (c: X509Certificate) =>
    new Date(c.validFrom).getTime() <= t && t <= new Date(c.validTo).getTime();
  let cur = leaf;
  const seen = new Set<string>();
  for (let depth = 0; depth < 8; depth++) {
    if (!inTime(cur)) return `certificate "${cur.subject}" is not valid at ${now.toISOString()}`;
    if (trusted.some((a) => a.fingerprint256 === cur.fingerprint256)) return null;
    const anchor = trusted.find((a) => cur.checkIssued(a) && cur.verify(a.publicKey));
    if (anchor) return inTime(anchor) ? null : `CA "${anchor.subject}" is not valid at ${now.toISOString()}`;
    seen.add(cur.fingerprint256);
    const next = intermediates.find(
      (c) => c.ca && !seen.has(c.fingerprint256) && cur.checkIssued(c) && cur.verify(c.publicKey),
    );
    if (!next) return `certificate "${cur.subject}" (issuer "${cur.issuer}") does not chain to a trusted CA`;
    cur = next;
  }
  return 'certificate chain too long';
}

/** What can prove the AK belongs to a genuine TPM. */
export type AkProofInput = {
  /** An AK certificate (cloud vTPMs issue these), chained through `intermediates` to `trustedCas`. */
  akCert?: X509Certificate;
  /** The EK certificate, chained to `trustedCas` (TPM manufacturer CAs). */
  ekCert?: X509Certificate;
  intermediates?: readonly X509Certificate[];
  trustedCas?: readonly X509Certificate[];
  /** An activation record binding the AK name to `ekCert`, from a trusted activator. */
  activation?: ActivationRecord;
  trustedActivators?: readonly Uint8Array[];
};

export type QuoteVerifyInput = {
  quote: Uint8Array;
  signature: Uint8Array;
  ak: AkPublic;
  /** Expected extraData; absent = not checked. */
  nonce?: Uint8Array;
  /** PCR values to recompute the digest from; absent = digest not checked. */
  pcrs?: PcrValues;
  /** Time at which certificates are judged. */
  now: Date;
  proof?: AkProofInput;
  /** When true, an AK that nothing proves is a failure rather than a note. */
  requireAkProof?: boolean;
};

/** How the AK was established. */
export type AkProofKind = 'ak-cert' | 'activation' | 'ek-cert-only' | 'none';

export type QuoteVerification = {
  valid: boolean;
  /** Reasons the quote is invalid. */
  failures: AppraisalReason[];
  /** Findings that do not affect validity but should stop acceptance. */
  notes: AppraisalReason[];
  /** The parsed quote, or null when it does not parse. */
  attest: QuoteAttest | null;
  sig: TpmSignature | null;
  akProof: AkProofKind;
};

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO };

function curveSize(key: KeyObject): number {
  const c = key.asymmetricKeyDetails?.namedCurve;
  return c === 'prime256v1' ? 32 : c === 'secp384r1' ? 48 : c === 'secp521r1' ? 66 : 0;
}

function leftPad(b: Uint8Array, n: number): Uint8Array | null {
  if (b.length > n) return null;
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

/** Verifies a TPMT_SIGNATURE over `message` with `key`. Returns null when valid, else a message. */
export function checkSignature(sig: TpmSignature, message: Uint8Array, key: KeyObject): string | null {
  const kt = key.asymmetricKeyType;
  try {
    if (sig.sigAlg === TPM_ALG.RSASSA || sig.sigAlg === TPM_ALG.RSAPSS) {
      if (kt !== 'rsa') return `an RSA signature cannot come from an ${kt} AK`;
      const k =
        sig.sigAlg === TPM_ALG.RSAPSS ? { key, ...PSS } : { key, padding: constants.RSA_PKCS1_PADDING };
      return cryptoVerify(sig.hash, message, k, sig.sig)
        ? null
        : 'the quote signature does not verify with the AK';
    }
    if (sig.sigAlg !== TPM_ALG.ECDSA) return 'unsupported signature scheme';
    if (kt !== 'ec') return `an ECDSA signature cannot come from an ${kt} AK`;
    const n = curveSize(key);
    const r = leftPad(sig.r, n);
    const s = leftPad(sig.s, n);
    if (!r || !s) return 'ECDSA r or s is longer than the curve order';
    const ok = cryptoVerify(sig.hash, message, { key, dsaEncoding: 'ieee-p1363' }, concatBytes(r, s));
    return ok ? null : 'the quote signature does not verify with the AK';
  } catch (e) {
    return `the quote signature cannot be checked: ${(e as Error).message}`;
  }
}

function spkiEqual(a: KeyObject, b: KeyObject): boolean {
  const da = a.export({ format: 'der', type: 'spki' });
  const db = b.export({ format: 'der', type: 'spki' });
  return equalBytes(new Uint8Array(da), new Uint8Array(db));
}

/** Verifies a quote; see the module comment. Throws only for arguments of the wrong type. */
export function verifyQuote(input: QuoteVerifyInput): QuoteVerification {
  if (!(input?.quote instanceof Uint8Array))
    throw new FerryError('INVALID_ARGUMENT', 'quote: expected a Uint8Array');
  if (!(input.signature instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'signature: expected a Uint8Array');
  }
  if (input.ak?.key?.type !== 'public') {
    throw new FerryError('INVALID_ARGUMENT', 'ak: expected an AkPublic (see parseAkPublic)');
  }
  if (!(input.now instanceof Date) || Number.isNaN(input.now.getTime())) {
    throw new FerryError('INVALID_ARGUMENT', 'now: expected a valid Date');
  }
  const failures: AppraisalReason[] = [];
  const notes: AppraisalReason[] = [];
  const out: QuoteVerification = { valid: false, failures, notes, attest: null, sig: null, akProof: 'none' };
  const fail = (code: AppraisalReason['code'], message: string) => failures.push({ code, message });

  try {
    out.attest = parseQuoteAttest(input.quote);
  } catch (e) {
    fail('ATTESTATION_MALFORMED', (e as Error).message);
    return out;
  }
  try {
    out.sig = parseSignature(input.signature);
  } catch (e) {
    fail('ATTESTATION_MALFORMED', (e as Error).message);
    return out;
  }
  const attest = out.attest;
  const sig = out.sig;
  const sigErr = checkSignature(sig, attest.raw, input.ak.key);
  if (sigErr) fail('ATTESTATION_SIGNATURE_INVALID', sigErr);

  const tpm = input.ak.tpm;
  if (tpm) {
    const need = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;
    if ((tpm.objectAttributes & need) !== need) {
      fail(
        'ATTESTATION_AK_ATTRIBUTES_INVALID',
        `the AK is not a restricted fixedTPM signing key (objectAttributes 0x${tpm.objectAttributes.toString(16).padStart(8, '0')})`,
      );
    }
    if (
      tpm.scheme.scheme !== TPM_ALG.NULL &&
      (tpm.scheme.scheme !== sig.sigAlg || tpm.scheme.hashAlg !== sig.hashAlg)
    ) {
      fail('ATTESTATION_SIGNATURE_INVALID', "the signature scheme is not the AK's scheme");
    }
  }

  if (input.nonce !== undefined && !equalBytes(input.nonce, attest.extraData)) {
    fail(
      'ATTESTATION_NONCE_MISMATCH',
      `the quote's extraData ${toHex(attest.extraData).slice(0, 16)}... is not the expected nonce ${toHex(input.nonce).slice(0, 16)}...`,
    );
  }

  if (input.pcrs !== undefined) {
    try {
      const d = computePcrDigest(attest.pcrSelect, input.pcrs, sig.hash);
      if (!equalBytes(d, attest.pcrDigest)) {
        fail(
          'ATTESTATION_PCR_MISMATCH',
          `the supplied PCR values digest to ${toHex(d)}, the quote says ${toHex(attest.pcrDigest)}`,
        );
      }
    } catch (e) {
      fail('ATTESTATION_PCR_MISMATCH', (e as Error).message);
    }
  }

  const p = input.proof ?? {};
  const trusted = p.trustedCas ?? [];
  const inter = p.intermediates ?? [];
  if (p.akCert) {
    if (!spkiEqual(p.akCert.publicKey, input.ak.key)) {
      fail('ATTESTATION_AK_NOT_PROVEN', 'the AK certificate is for a different key than the AK');
    } else {
      const err = checkChain(p.akCert, inter, trusted, input.now);
      if (err) fail('ATTESTATION_CHAIN_INVALID', `AK certificate: ${err}`);
      else out.akProof = 'ak-cert';
    }
  }
  if (p.ekCert && out.akProof === 'none') {
    const err = checkChain(p.ekCert, inter, trusted, input.now);
    if (err) {
      fail('ATTESTATION_CHAIN_INVALID', `EK certificate: ${err}`);
    } else if (p.activation) {
      const name = tpm?.name;
      const aerr = name
        ? checkActivationRecord(p.activation, name, p.ekCert, p.trustedActivators ?? [])
        : 'the AK name is unknown (the AK was given as a bare public key, not TPM2B_PUBLIC)';
      if (aerr) fail('ATTESTATION_AK_NOT_PROVEN', aerr);
      else out.akProof = 'activation';
    } else {
      out.akProof = 'ek-cert-only';
      notes.push({
        code: 'ATTESTATION_AK_NOT_PROVEN',
        message:
          'the EK certificate chains to a trusted CA, but without an activation record nothing binds this AK to that EK',
      });
    }
  }
  if (out.akProof === 'none' && input.requireAkProof && !p.akCert && !p.ekCert) {
    fail(
      'ATTESTATION_AK_NOT_PROVEN',
      'neither an AK certificate nor an EK certificate with an activation record',
    );
  }
  out.valid = failures.length === 0;
  return out;
}
