/**
 * Parsers for the TPM 2.0 structures a quote is made of (TPM 2.0 Library, Part 2), written on
 * node:crypto: TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC / TPM2B_PUBLIC. All TPM wire
 * structures are big-endian. Every parser takes the exact bytes of one structure and throws
 * `ATTESTATION_MALFORMED` (naming the structure and the field) on truncated input, trailing
 * bytes, or values outside what Ferry supports; they never return partial results.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { concatBytes, FerryError, toHex } from '../../kernel/index.ts';

/** TPM_ALG_ID values Ferry handles. */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  KDF1_SP800_56A: 0x0020,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** TPM_GENERATED_VALUE: the first field of every TPMS_ATTEST the TPM signs. */
export const TPM_GENERATED_VALUE = 0xff544347;
/** TPM_ST_ATTEST_QUOTE. */
export const TPM_ST_ATTEST_QUOTE = 0x8018;

/** TPMA_OBJECT bits used in AK checks. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const HASHES: ReadonlyMap<number, { name: HashName; size: number }> = new Map([
  [TPM_ALG.SHA1, { name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
]);

/** The node:crypto name and digest size of a TPM hash algorithm id, or null if unsupported. */
export function hashInfo(alg: number): { name: HashName; size: number } | null {
  return HASHES.get(alg) ?? null;
}

/** The TPM_ALG_ID of a hash name (sha1, sha256, sha384, sha512), or null. */
export function hashAlgId(name: string): number | null {
  for (const [id, h] of HASHES) if (h.name === name) return id;
  return null;
}

function malformed(what: string, message: string, hints: string[] = []): FerryError {
  return new FerryError('ATTESTATION_MALFORMED', `${what}: ${message}`, { hints });
}

/** A bounds-checked big-endian reader over one structure. */
export class TpmReader {
  readonly bytes: Uint8Array;
  readonly what: string;
  offset = 0;
  readonly #view: DataView;

  constructor(bytes: Uint8Array, what: string) {
    if (!(bytes instanceof Uint8Array)) {
      throw new FerryError('INVALID_ARGUMENT', `${what}: expected a Uint8Array`);
    }
    this.bytes = bytes;
    this.what = what;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(n: number, field: string): void {
    if (this.offset + n > this.bytes.length) {
      throw malformed(this.what, `truncated at ${field}`, [
        `expected: ${n} more byte(s) at offset ${this.offset}`,
        `got: ${this.bytes.length - this.offset}`,
      ]);
    }
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.#view.getUint8(this.offset++);
  }

  u16(field: string): number {
    this.#need(2, field);
    const v = this.#view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.#need(4, field);
    const v = this.#view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  u64(field: string): bigint {
    this.#need(8, field);
    const v = this.#view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }

  raw(n: number, field: string): Uint8Array {
    this.#need(n, field);
    const v = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** A TPM2B: u16 size then that many bytes; `max` bounds the size. */
  tpm2b(field: string, max = 0xffff): Uint8Array {
    const n = this.u16(`${field}.size`);
    if (n > max)
      throw malformed(this.what, `${field} is too large`, [`expected: <= ${max} bytes`, `got: ${n}`]);
    return this.raw(n, field);
  }

  end(): void {
    if (this.offset !== this.bytes.length) {
      throw malformed(this.what, 'trailing bytes', [
        `expected: ${this.offset} bytes`,
        `got: ${this.bytes.length} bytes`,
      ]);
    }
  }
}

/** One TPMS_PCR_SELECTION: a bank (hash algorithm) and the PCR indices selected in it, ascending. */
export type PcrSelection = { hashAlg: number; bank: HashName; pcrs: number[] };

/** Reads a big-endian TPML_PCR_SELECTION. */
export function readPcrSelectionList(r: TpmReader): PcrSelection[] {
  const count = r.u32('pcrSelect.count');
  if (count > 16) throw malformed(r.what, 'too many PCR banks', ['expected: <= 16', `got: ${count}`]);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hashAlg = r.u16(`pcrSelect[${i}].hash`);
    const size = r.u8(`pcrSelect[${i}].sizeofSelect`);
    if (size > 8) throw malformed(r.what, `pcrSelect[${i}].sizeofSelect too large`, [`got: ${size}`]);
    const bits = r.raw(size, `pcrSelect[${i}].pcrSelect`);
    const h = hashInfo(hashAlg);
    if (!h) throw malformed(r.what, `unsupported PCR bank 0x${hashAlg.toString(16)}`);
    out.push({ hashAlg, bank: h.name, pcrs: selectBitsToIndices(bits) });
  }
  return out;
}

/** PCR indices set in a pcrSelect bitmap (byte i bit j = PCR 8i+j). */
export function selectBitsToIndices(bits: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bits.length; i++)
    for (let b = 0; b < 8; b++) if (bits[i] & (1 << b)) out.push(i * 8 + b);
  return out;
}

/** TPMS_CLOCK_INFO. */
export type ClockInfo = { clock: bigint; resetCount: number; restartCount: number; safe: boolean };

/** A parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE. */
export type QuoteAttest = {
  /** The exact bytes that were signed. */
  raw: Uint8Array;
  magic: number;
  type: number;
  /** TPM2B_NAME: the AK's qualified name. */
  qualifiedSigner: Uint8Array;
  /** TPM2B_DATA qualifyingData: Ferry's nonce. */
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  pcrSelect: PcrSelection[];
  /** Digest of the selected PCR values under the signing scheme's hash. */
  pcrDigest: Uint8Array;
};

/**
 * Parses a TPMS_ATTEST as written by `tpm2_quote -m`. Throws ATTESTATION_MALFORMED unless the
 * magic is TPM_GENERATED_VALUE, the type is TPM_ST_ATTEST_QUOTE and the bytes are exactly one
 * structure.
 */
export function parseQuoteAttest(bytes: Uint8Array): QuoteAttest {
  const r = new TpmReader(bytes, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) {
    throw malformed('TPMS_ATTEST', 'not generated by a TPM (bad magic)', [
      'expected: 0xff544347',
      `got: 0x${magic.toString(16).padStart(8, '0')}`,
    ]);
  }
  const type = r.u16('type');
  if (type !== TPM_ST_ATTEST_QUOTE) {
    throw malformed('TPMS_ATTEST', 'not a quote', ['expected: type 0x8018', `got: 0x${type.toString(16)}`]);
  }
  const qualifiedSigner = r.tpm2b('qualifiedSigner', 2 + 64);
  const extraData = r.tpm2b('extraData', 2 + 64);
  const clockInfo: ClockInfo = {
    clock: r.u64('clockInfo.clock'),
    resetCount: r.u32('clockInfo.resetCount'),
    restartCount: r.u32('clockInfo.restartCount'),
    safe: false,
  };
  const safe = r.u8('clockInfo.safe');
  if (safe > 1) throw malformed('TPMS_ATTEST', 'clockInfo.safe is not a TPMI_YES_NO', [`got: ${safe}`]);
  clockInfo.safe = safe === 1;
  const firmwareVersion = r.u64('firmwareVersion');
  const pcrSelect = readPcrSelectionList(r);
  const pcrDigest = r.tpm2b('pcrDigest', 64);
  r.end();
  return {
    raw: bytes.slice(),
    magic,
    type,
    qualifiedSigner,
    extraData,
    clockInfo,
    firmwareVersion,
    pcrSelect,
    pcrDigest,
  };
}

/** A parsed TPMT_SIGNATURE. */
export type TpmSignature =
  | {
      sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS;
      hashAlg: number;
      hash: HashName;
      sig: Uint8Array;
    }
  | { sigAlg: typeof TPM_ALG.ECDSA; hashAlg: number; hash: HashName; r: Uint8Array; s: Uint8Array };

/**
 * Parses a TPMT_SIGNATURE as written by `tpm2_quote -s`: RSASSA (0x0014), RSAPSS (0x0016) or
 * ECDSA (0x0018, r and s as TPM2B). Other schemes (HMAC, ECDAA, ECSCHNORR, SM2) are rejected
 * with ATTESTATION_MALFORMED.
 */
export function parseSignature(bytes: Uint8Array): TpmSignature {
  const r = new TpmReader(bytes, 'TPMT_SIGNATURE');
  const sigAlg = r.u16('sigAlg');
  const hashAlg = r.u16('hash');
  const h = hashInfo(hashAlg);
  if (!h) throw malformed('TPMT_SIGNATURE', `unsupported hash 0x${hashAlg.toString(16)}`);
  let out: TpmSignature;
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    out = { sigAlg, hashAlg, hash: h.name, sig: r.tpm2b('sig', 512) };
  } else if (sigAlg === TPM_ALG.ECDSA) {
    const rr = r.tpm2b('signatureR', 66);
    const ss = r.tpm2b('signatureS', 66);
    out = { sigAlg, hashAlg, hash: h.name, r: rr, s: ss };
  } else {
    throw malformed('TPMT_SIGNATURE', `unsupported signature scheme 0x${sigAlg.toString(16)}`, [
      'expected: RSASSA 0x0014, RSAPSS 0x0016 or ECDSA 0x0018',
    ]);
  }
  r.end();
  return out;
}

/** ECC curves (TPM_ECC_CURVE) Ferry maps to node:crypto JWK names. */
const CURVES: ReadonlyMap<number, { crv: 'P-256' | 'P-384' | 'P-521'; size: number }> = new Map([
  [0x0003, { crv: 'P-256', size: 32 }],
  [0x0004, { crv: 'P-384', size: 48 }],
  [0x0005, { crv: 'P-521', size: 66 }],
]);

/** A parsed TPMT_PUBLIC for an RSA or ECC key. */
export type TpmPublic = {
  /** The exact TPMT_PUBLIC bytes (what the name is computed over). */
  raw: Uint8Array;
  type: typeof TPM_ALG.RSA | typeof TPM_ALG.ECC;
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  /** symmetric.algorithm (TPM_ALG_NULL for signing keys), keyBits and mode when not NULL. */
  symmetric: { alg: number; keyBits: number; mode: number };
  /** scheme.scheme and its hash (0 when the scheme is NULL). */
  scheme: { scheme: number; hashAlg: number };
  /** RSA: modulus bits and exponent; ECC: curve id and coordinates. */
  rsa?: { keyBits: number; exponent: number; modulus: Uint8Array };
  ecc?: { curveId: number; crv: string; x: Uint8Array; y: Uint8Array };
  /** The key as a node:crypto public KeyObject. */
  key: KeyObject;
  /** The TPM name: u16(nameAlg) || H_nameAlg(raw). */
  name: Uint8Array;
};

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

function leftPad(b: Uint8Array, n: number): Uint8Array {
  if (b.length >= n) return b;
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

/** Computes a TPM object name: u16(nameAlg) || H(TPMT_PUBLIC). */
export function tpmName(nameAlg: number, tpmtPublic: Uint8Array): Uint8Array {
  const h = hashInfo(nameAlg);
  if (!h) throw malformed('TPMT_PUBLIC', `unsupported nameAlg 0x${nameAlg.toString(16)}`);
  const d = createHash(h.name).update(tpmtPublic).digest();
  return concatBytes(new Uint8Array([nameAlg >> 8, nameAlg & 0xff]), new Uint8Array(d));
}

function readPublicArea(r: TpmReader): Omit<TpmPublic, 'raw' | 'name' | 'key'> {
  const type = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', 64);
  const symAlg = r.u16('parameters.symmetric.algorithm');
  const symmetric = { alg: symAlg, keyBits: 0, mode: 0 };
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) {
    throw malformed(r.what, `unsupported key type 0x${type.toString(16)}`, [
      'expected: RSA 0x0001 or ECC 0x0023',
    ]);
  }
  if (symAlg !== TPM_ALG.NULL) {
    symmetric.keyBits = r.u16('parameters.symmetric.keyBits');
    symmetric.mode = r.u16('parameters.symmetric.mode');
  }
  const schemeId = r.u16('parameters.scheme.scheme');
  const scheme = { scheme: schemeId, hashAlg: 0 };
  if (schemeId !== TPM_ALG.NULL) {
    scheme.hashAlg = r.u16('parameters.scheme.details.hashAlg');
    if (schemeId === TPM_ALG.ECDAA) r.u16('parameters.scheme.details.count');
  }
  if (type === TPM_ALG.RSA) {
    const keyBits = r.u16('parameters.keyBits');
    const exp = r.u32('parameters.exponent');
    const modulus = r.tpm2b('unique.rsa', 512);
    if (modulus.length * 8 !== keyBits) {
      throw malformed(r.what, 'RSA modulus length does not match keyBits', [
        `expected: ${keyBits / 8} bytes`,
        `got: ${modulus.length}`,
      ]);
    }
    return {
      type,
      nameAlg,
      objectAttributes,
      authPolicy,
      symmetric,
      scheme,
      rsa: { keyBits, exponent: exp === 0 ? 65537 : exp, modulus },
    };
  }
  const curveId = r.u16('parameters.curveID');
  const kdf = r.u16('parameters.kdf.scheme');
  if (kdf !== TPM_ALG.NULL) r.u16('parameters.kdf.details.hashAlg');
  const x = r.tpm2b('unique.ecc.x', 66);
  const y = r.tpm2b('unique.ecc.y', 66);
  const c = CURVES.get(curveId);
  if (!c)
    throw malformed(r.what, `unsupported ECC curve 0x${curveId.toString(16)}`, [
      'expected: P-256, P-384, P-521',
    ]);
  return {
    type,
    nameAlg,
    objectAttributes,
    authPolicy,
    symmetric,
    scheme,
    ecc: { curveId, crv: c.crv, x, y },
  };
}

function toKeyObject(p: Omit<TpmPublic, 'raw' | 'name' | 'key'>, what: string): KeyObject {
  try {
    if (p.rsa) {
      const e = new Uint8Array(4);
      new DataView(e.buffer).setUint32(0, p.rsa.exponent);
      let i = 0;
      while (i < 3 && e[i] === 0) i++;
      return createPublicKey({
        key: { kty: 'RSA', n: b64u(p.rsa.modulus), e: b64u(e.slice(i)) },
        format: 'jwk',
      });
    }
    if (p.ecc) {
      const size = CURVES.get(p.ecc.curveId)?.size ?? 0;
      return createPublicKey({
        key: { kty: 'EC', crv: p.ecc.crv, x: b64u(leftPad(p.ecc.x, size)), y: b64u(leftPad(p.ecc.y, size)) },
        format: 'jwk',
      });
    }
  } catch (e) {
    throw new FerryError('ATTESTATION_MALFORMED', `${what}: the public key is not valid`, { cause: e });
  }
  throw malformed(what, 'no key');
}

/** Parses a TPMT_PUBLIC (RSA or ECC) and builds its KeyObject and name. */
export function parseTpmtPublic(bytes: Uint8Array): TpmPublic {
  const r = new TpmReader(bytes, 'TPMT_PUBLIC');
  const p = readPublicArea(r);
  r.end();
  return { ...p, raw: bytes.slice(), key: toKeyObject(p, 'TPMT_PUBLIC'), name: tpmName(p.nameAlg, bytes) };
}

/** Parses a TPM2B_PUBLIC (u16 size || TPMT_PUBLIC), as written by `tpm2_createak -u` / `tpm2_readpublic -f tss`. */
export function parseTpm2bPublic(bytes: Uint8Array): TpmPublic {
  const r = new TpmReader(bytes, 'TPM2B_PUBLIC');
  const inner = r.tpm2b('publicArea');
  r.end();
  try {
    return parseTpmtPublic(inner);
  } catch (e) {
    if (e instanceof FerryError) {
      throw new FerryError(e.code, e.message.replace(/^TPMT_PUBLIC/, 'TPM2B_PUBLIC.publicArea'), {
        hints: e.hints,
        cause: e,
      });
    }
    throw e;
  }
}

/** Serialises a TPMT_PUBLIC into a TPM2B_PUBLIC. */
export function toTpm2bPublic(tpmtPublic: Uint8Array): Uint8Array {
  return concatBytes(new Uint8Array([tpmtPublic.length >> 8, tpmtPublic.length & 0xff]), tpmtPublic);
}

/** Lowercase hex of a TPM name, for messages and claims. */
export function nameHex(name: Uint8Array): string {
  return toHex(name);
}
