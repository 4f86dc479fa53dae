/**
 * Credential activation (TPM 2.0 Library Part 1 §24, "Credential Protection") on node:crypto,
 * and Ferry's signed activation record.
 *
 * The activator (a verifier at node registration) knows an EK only by its certificate and an
 * AK only by its name. `makeCredential` seals a random secret to the EK so that only a TPM
 * holding that EK *and* a loaded object with that exact name can recover it with
 * TPM2_ActivateCredential. When the node returns the secret, the activator knows the AK lives
 * in the same TPM as the certified EK and signs an `ActivationRecord` (docs/protocol.md §8,
 * tpm2) that other verifiers accept when they trust the activator's Ed25519 key.
 */
import {
  createCipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  constants as cryptoConstants,
  type KeyObject,
  publicEncrypt,
  randomBytes,
  sign as cryptoSign,
  verify as cryptoVerify,
  type X509Certificate,
} from 'node:crypto';
import {
  type CanonicalValue,
  concatBytes,
  decodeCanonical,
  encodeCanonical,
  encodeTagged,
  equalBytes,
  FerryError,
  toHex,
  utf8,
} from '../../kernel/index.ts';
import { type HashName, hashAlgId } from './structures.ts';

function u16(n: number): Uint8Array {
  return new Uint8Array([(n >> 8) & 0xff, n & 0xff]);
}
function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
function tpm2b(b: Uint8Array): Uint8Array {
  return concatBytes(u16(b.length), b);
}
function label(s: string): Uint8Array {
  return concatBytes(utf8(s), new Uint8Array([0]));
}

/** KDFa (Part 1 §11.4.10.2, SP800-108 counter mode with HMAC): `bits` bits of key. */
export function kdfa(
  hash: HashName,
  key: Uint8Array,
  lbl: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  const out: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const d = createHmac(hash, key)
      .update(u32(i))
      .update(label(lbl))
      .update(contextU)
      .update(contextV)
      .update(u32(bits))
      .digest();
    out.push(new Uint8Array(d));
    have += d.length;
  }
  return concatBytes(...out).slice(0, Math.ceil(bits / 8));
}

/** KDFe (Part 1 §11.4.10.3, SP800-56A concatenation KDF): `bits` bits from the ECDH value Z. */
export function kdfe(
  hash: HashName,
  z: Uint8Array,
  lbl: string,
  partyU: Uint8Array,
  partyV: Uint8Array,
  bits: number,
): Uint8Array {
  const out: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const d = createHash(hash)
      .update(u32(i))
      .update(z)
      .update(label(lbl))
      .update(partyU)
      .update(partyV)
      .digest();
    out.push(new Uint8Array(d));
    have += d.length;
  }
  return concatBytes(...out).slice(0, Math.ceil(bits / 8));
}

/** The EK parameters MakeCredential needs beyond its public key (TCG EK Credential Profile templates). */
export type EkParameters = { nameAlg: HashName; symKeyBits: 128 | 256 };

/**
 * The default-template parameters for an EK public key: RSA 2048 and ECC P-256 (templates
 * L-1, L-2) use SHA-256 and AES-128-CFB; ECC P-384 (H-3) uses SHA-384 and AES-256-CFB.
 */
export function defaultEkParameters(ek: KeyObject): EkParameters {
  if (ek.asymmetricKeyType === 'rsa') return { nameAlg: 'sha256', symKeyBits: 128 };
  if (ek.asymmetricKeyType === 'ec') {
    const crv = ek.asymmetricKeyDetails?.namedCurve;
    if (crv === 'prime256v1') return { nameAlg: 'sha256', symKeyBits: 128 };
    if (crv === 'secp384r1') return { nameAlg: 'sha384', symKeyBits: 256 };
  }
  throw new FerryError('INVALID_ARGUMENT', 'ekPublic: unsupported EK key type', {
    hints: ['expected: RSA 2048, ECC P-256 or ECC P-384', `got: ${ek.asymmetricKeyType}`],
  });
}

/** MakeCredential's output: TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET (each with its size prefix). */
export type MadeCredential = { credentialBlob: Uint8Array; encryptedSecret: Uint8Array };

/**
 * TPM2_MakeCredential done outside the TPM: protects `credential` (1..digest-size bytes) so that
 * only the TPM holding `ekPublic` can release it, and only for an object named `akName`.
 * Throws INVALID_ARGUMENT naming the bad argument.
 */
export function makeCredential(
  ekPublic: KeyObject,
  akName: Uint8Array,
  credential: Uint8Array,
  params: EkParameters = defaultEkParameters(ekPublic),
): MadeCredential {
  if (!(akName instanceof Uint8Array) || akName.length < 3 || hashAlgId(hashNameOfName(akName)) === null) {
    throw new FerryError('INVALID_ARGUMENT', 'akName: expected a TPM name (u16 nameAlg || digest)');
  }
  const digestSize = createHash(params.nameAlg).digest().length;
  if (!(credential instanceof Uint8Array) || credential.length < 1 || credential.length > digestSize) {
    throw new FerryError('INVALID_ARGUMENT', 'credential: wrong length', {
      hints: [`expected: 1..${digestSize} bytes`, `got: ${credential?.length}`],
    });
  }
  let seed: Uint8Array;
  let secret: Uint8Array;
  if (ekPublic.asymmetricKeyType === 'rsa') {
    seed = new Uint8Array(randomBytes(digestSize));
    secret = new Uint8Array(
      publicEncrypt(
        {
          key: ekPublic,
          padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: params.nameAlg,
          oaepLabel: Buffer.from(label('IDENTITY')),
        },
        seed,
      ),
    );
  } else if (ekPublic.asymmetricKeyType === 'ec') {
    const jwk = ekPublic.export({ format: 'jwk' });
    const curve = jwk.crv === 'P-256' ? 'prime256v1' : jwk.crv === 'P-384' ? 'secp384r1' : '';
    if (!curve || !jwk.x || !jwk.y) throw new FerryError('INVALID_ARGUMENT', 'ekPublic: unsupported curve');
    const ekX = new Uint8Array(Buffer.from(jwk.x, 'base64url'));
    const ekY = new Uint8Array(Buffer.from(jwk.y, 'base64url'));
    const ecdh = createECDH(curve);
    const eph = new Uint8Array(ecdh.generateKeys());
    const size = ekX.length;
    const z = new Uint8Array(ecdh.computeSecret(concatBytes(new Uint8Array([4]), ekX, ekY)));
    const ephX = eph.slice(1, 1 + size);
    const ephY = eph.slice(1 + size);
    seed = kdfe(params.nameAlg, z, 'IDENTITY', ephX, ekX, digestSize * 8);
    secret = concatBytes(tpm2b(ephX), tpm2b(ephY));
  } else {
    throw new FerryError('INVALID_ARGUMENT', 'ekPublic: expected an RSA or EC public key');
  }
  const symKey = kdfa(params.nameAlg, seed, 'STORAGE', akName, new Uint8Array(0), params.symKeyBits);
  const cipher = createCipheriv(`aes-${params.symKeyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = new Uint8Array(Buffer.concat([cipher.update(tpm2b(credential)), cipher.final()]));
  const hmacKey = kdfa(
    params.nameAlg,
    seed,
    'INTEGRITY',
    new Uint8Array(0),
    new Uint8Array(0),
    digestSize * 8,
  );
  const outerHmac = new Uint8Array(
    createHmac(params.nameAlg, hmacKey).update(encIdentity).update(akName).digest(),
  );
  seed.fill(0);
  return {
    credentialBlob: tpm2b(concatBytes(tpm2b(outerHmac), encIdentity)),
    encryptedSecret: tpm2b(secret),
  };
}

function hashNameOfName(name: Uint8Array): string {
  const alg = (name[0] << 8) | name[1];
  return ({ 4: 'sha1', 11: 'sha256', 12: 'sha384', 13: 'sha512' } as Record<number, string>)[alg] ?? '';
}

/**
 * The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i` reads:
 * u32 0xBADCC0DE || u32 1 || TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET.
 */
export function credentialFile(made: MadeCredential): Uint8Array {
  return concatBytes(u32(0xbadcc0de), u32(1), made.credentialBlob, made.encryptedSecret);
}

// --- activation record -----------------------------------------------------------------------

/** Domain tag of the signed part of an activation record. */
export const ACTIVATION_TAG = 'ferry/tpm2-activation/v1';

/**
 * An activator's statement that the AK named `akName` answered a credential challenge sealed
 * to the EK whose certificate hashes to `ekCertHash`, at `activatedAt` (Unix seconds).
 */
export type ActivationRecord = {
  akName: Uint8Array;
  ekCertHash: Uint8Array;
  activatedAt: number;
  /** The activator's Ed25519 public key (32 bytes). */
  activator: Uint8Array;
  /** Ed25519 signature over encodeTagged(ACTIVATION_TAG, {akName, ekCertHash, activatedAt, activator}). */
  signature: Uint8Array;
};

function signedPart(r: Omit<ActivationRecord, 'signature'>): Uint8Array {
  return encodeTagged(ACTIVATION_TAG, {
    akName: r.akName,
    ekCertHash: r.ekCertHash,
    activatedAt: r.activatedAt,
    activator: r.activator,
  });
}

function ed25519Public(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/** Signs an activation record with the activator's Ed25519 private key. */
export function signActivationRecord(
  activatorKey: KeyObject,
  fields: { akName: Uint8Array; ekCert: X509Certificate; activatedAt: number },
): ActivationRecord {
  if (activatorKey?.type !== 'private' || activatorKey.asymmetricKeyType !== 'ed25519') {
    throw new FerryError('INVALID_ARGUMENT', 'activatorKey: expected an Ed25519 private KeyObject');
  }
  if (!Number.isSafeInteger(fields.activatedAt) || fields.activatedAt < 0) {
    throw new FerryError('INVALID_ARGUMENT', 'activatedAt: expected Unix seconds');
  }
  const jwk = createPublicKey(activatorKey).export({ format: 'jwk' });
  const activator = new Uint8Array(Buffer.from(jwk.x as string, 'base64url'));
  const body = {
    akName: fields.akName.slice(),
    ekCertHash: new Uint8Array(createHash('sha256').update(fields.ekCert.raw).digest()),
    activatedAt: fields.activatedAt,
    activator,
  };
  return { ...body, signature: new Uint8Array(cryptoSign(null, signedPart(body), activatorKey)) };
}

/**
 * Checks an activation record against the AK name, the EK certificate and the trusted
 * activator keys. Returns null when it holds, else a message saying what failed.
 */
export function checkActivationRecord(
  record: ActivationRecord,
  akName: Uint8Array,
  ekCert: X509Certificate,
  trustedActivators: readonly Uint8Array[],
): string | null {
  if (!equalBytes(record.akName, akName))
    return `the activation record is for AK ${toHex(record.akName)}, not this AK`;
  const h = new Uint8Array(createHash('sha256').update(ekCert.raw).digest());
  if (!equalBytes(record.ekCertHash, h)) return 'the activation record names a different EK certificate';
  if (!trustedActivators.some((k) => equalBytes(k, record.activator))) {
    return `activator ${toHex(record.activator)} is not trusted`;
  }
  let ok = false;
  try {
    ok = cryptoVerify(null, signedPart(record), ed25519Public(record.activator), record.signature);
  } catch {
    ok = false;
  }
  return ok ? null : 'the activation record signature does not verify';
}

/** The record as a canonical map (for the evidence body). */
export function activationToCanonical(r: ActivationRecord): { [k: string]: CanonicalValue } {
  return {
    akName: r.akName,
    ekCertHash: r.ekCertHash,
    activatedAt: r.activatedAt,
    activator: r.activator,
    signature: r.signature,
  };
}

/** Reads a record from its canonical map; throws ATTESTATION_MALFORMED on a bad shape. */
export function activationFromCanonical(v: CanonicalValue): ActivationRecord {
  const o = v as Record<string, CanonicalValue>;
  const bytes = (k: string, n?: number): Uint8Array => {
    const x = o?.[k];
    if (!(x instanceof Uint8Array) || (n !== undefined && x.length !== n)) {
      throw new FerryError('ATTESTATION_MALFORMED', `activation record: ${k} must be ${n ?? 'some'} bytes`);
    }
    return x;
  };
  if (typeof o !== 'object' || o === null || typeof o.activatedAt !== 'number') {
    throw new FerryError(
      'ATTESTATION_MALFORMED',
      'activation record: expected {akName, ekCertHash, activatedAt, activator, signature}',
    );
  }
  return {
    akName: bytes('akName'),
    ekCertHash: bytes('ekCertHash', 32),
    activatedAt: o.activatedAt,
    activator: bytes('activator', 32),
    signature: bytes('signature', 64),
  };
}

/** Encodes a record as canonical CBOR bytes (the `--activation` file format). */
export function encodeActivationRecord(r: ActivationRecord): Uint8Array {
  return encodeCanonical(activationToCanonical(r));
}

/** Decodes canonical CBOR bytes into a record. */
export function decodeActivationRecord(bytes: Uint8Array): ActivationRecord {
  return activationFromCanonical(decodeCanonical(bytes));
}
