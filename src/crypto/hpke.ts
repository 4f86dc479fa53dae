/**
 * HPKE (RFC 9180), base mode, for one suite only: DHKEM(X25519, HKDF-SHA256) (kem_id 0x0020),
 * HKDF-SHA256 (kdf_id 0x0001), ChaCha20-Poly1305 (aead_id 0x0003). Built directly on
 * node:crypto (X25519, HMAC-SHA256, chacha20-poly1305). See docs/protocol.md section 6.
 *
 * The single-shot `hpkeSeal` / `hpkeOpen` seal one message (sequence number 0) and are what
 * the enclave and the owner agents use for key release (the `info` that binds a sealed key to
 * the task commitments, the evidence and the asset is built by src/protocol/release-info.ts,
 * docs/protocol.md §6.2). The context API
 * (`createSenderContext`, `createRecipientContext`) seals several messages and exports
 * secrets, as in RFC 9180 sections 5.2 and 5.3.
 *
 * Errors: HPKE_INVALID_KEY for a key of the wrong type or length, or a recipient public key
 * of low order when sealing; HPKE_OPEN_FAILED for anything that prevents opening (tampered
 * enc, ciphertext, info or aad; wrong key; low-order enc); INVALID_ARGUMENT for other bad
 * arguments. Messages never contain key material or plaintext.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { concatBytes, describe, FerryError, wipe } from '../kernel/index.ts';

const enc8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Suite identifiers (RFC 9180 section 7). */
export const HPKE_KEM_ID = 0x0020;
export const HPKE_KDF_ID = 0x0001;
export const HPKE_AEAD_ID = 0x0003;

const N_SECRET = 32; // Nsecret of DHKEM(X25519, HKDF-SHA256)
const N_PK = 32; // Npk = Nenc
const N_SK = 32;
const N_K = 32; // ChaCha20-Poly1305 key
const N_N = 12; // nonce
const N_T = 16; // tag
const N_H = 32; // SHA-256
const MODE_BASE = 0x00;

const HPKE_V1 = enc8('HPKE-v1');
const KEM_SUITE_ID = concatBytes(enc8('KEM'), i2osp(HPKE_KEM_ID, 2));
const HPKE_SUITE_ID = concatBytes(
  enc8('HPKE'),
  i2osp(HPKE_KEM_ID, 2),
  i2osp(HPKE_KDF_ID, 2),
  i2osp(HPKE_AEAD_ID, 2),
);
const EMPTY = new Uint8Array(0);

const X25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const X25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
]);

function i2osp(n: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = x & 0xff;
    x = Math.floor(x / 256);
  }
  return out;
}

function bytesArg(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', `${what} must be a Uint8Array`, {
      hints: [`got: ${describe(value)}`],
    });
  }
  return value;
}

function keyArg(value: unknown, what: string, len: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== len) {
    throw new FerryError('HPKE_INVALID_KEY', `${what} must be a ${len}-byte X25519 key`, {
      hints: [`expected: Uint8Array(${len})`, `got: ${describe(value)}`],
    });
  }
  return value;
}

// --- HKDF-SHA256 and the labeled variants (RFC 5869; RFC 9180 section 4) ------------------

function hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmac(salt.length === 0 ? new Uint8Array(N_H) : salt, ikm);
}

function hkdfExpand(prk: Uint8Array, info: Uint8Array, len: number): Uint8Array {
  if (len > 255 * N_H) throw new FerryError('INVALID_ARGUMENT', 'HKDF output length too large');
  const out = new Uint8Array(len);
  let t: Uint8Array = EMPTY;
  for (let i = 0, off = 0; off < len; i++) {
    t = hmac(prk, t, info, Uint8Array.of(i + 1));
    out.set(t.subarray(0, Math.min(N_H, len - off)), off);
    off += N_H;
  }
  return out;
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return hkdfExtract(salt, concatBytes(HPKE_V1, suiteId, enc8(label), ikm));
}

function labeledInfo(suiteId: Uint8Array, label: string, info: Uint8Array, len: number): Uint8Array {
  return concatBytes(i2osp(len, 2), HPKE_V1, suiteId, enc8(label), info);
}

function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  len: number,
): Uint8Array {
  return hkdfExpand(prk, labeledInfo(suiteId, label, info, len), len);
}

/**
 * LabeledExpand(LabeledExtract(salt, extractLabel, ikm), expandLabel, info, len) in one native
 * HKDF call (node:crypto hkdfSync is extract-then-expand; an empty salt is HashLen zeros in
 * both). Faster than two HMAC objects; the intermediate PRK never reaches JS.
 */
function labeledExtractExpand(
  suiteId: Uint8Array,
  salt: Uint8Array,
  extractLabel: string,
  ikm: Uint8Array,
  expandLabel: string,
  info: Uint8Array,
  len: number,
): Uint8Array {
  return new Uint8Array(
    hkdfSync(
      'sha256',
      concatBytes(HPKE_V1, suiteId, enc8(extractLabel), ikm),
      salt,
      labeledInfo(suiteId, expandLabel, info, len),
      len,
    ),
  );
}

// --- X25519 on node:crypto -------------------------------------------------------------------

function privateKeyObject(sk: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.from(concatBytes(X25519_PKCS8_PREFIX, sk)),
    format: 'der',
    type: 'pkcs8',
  });
}

function publicKeyObject(pk: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.from(concatBytes(X25519_SPKI_PREFIX, pk)),
    format: 'der',
    type: 'spki',
  });
}

/** The raw 32-byte public key of a public KeyObject, or of a private one (derived). */
function rawPublicKey(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  // The JWK export is several times cheaper than a DER export in node:crypto.
  const jwk = pub.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x as string, 'base64url'));
}

/** X25519(sk, pk); null when the output is all zero (pk of low order) or OpenSSL refuses it. */
function dh(sk: KeyObject, pk: Uint8Array): Uint8Array | null {
  let out: Uint8Array;
  try {
    out = new Uint8Array(diffieHellman({ privateKey: sk, publicKey: publicKeyObject(pk) }));
  } catch {
    return null;
  }
  let acc = 0;
  for (const b of out) acc |= b;
  return acc === 0 ? null : out;
}

/** The X25519 public key of a 32-byte private key. Throws HPKE_INVALID_KEY on a bad length. */
export function hpkePublicKey(privateKey: Uint8Array): Uint8Array {
  keyArg(privateKey, 'privateKey', N_SK);
  return rawPublicKey(privateKeyObject(privateKey));
}

/** A fresh X25519 key pair (raw 32-byte keys) from the system CSPRNG. */
export function hpkeGenerateKeyPair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const sk = new Uint8Array(der.subarray(der.length - N_SK));
  der.fill(0);
  return { privateKey: sk, publicKey: rawPublicKey(publicKey) };
}

/**
 * DeriveKeyPair(ikm) of DHKEM(X25519, HKDF-SHA256) (RFC 9180 section 7.1.3): a deterministic
 * key pair from at least 32 bytes of input keying material. Throws INVALID_ARGUMENT for
 * shorter `ikm`.
 */
export function hpkeDeriveKeyPair(ikm: Uint8Array): { privateKey: Uint8Array; publicKey: Uint8Array } {
  bytesArg(ikm, 'ikm');
  if (ikm.length < N_SK) {
    throw new FerryError('INVALID_ARGUMENT', 'ikm is too short', {
      hints: [`expected: at least ${N_SK} bytes`, `got: ${ikm.length} bytes`],
    });
  }
  const prk = labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKey = labeledExpand(KEM_SUITE_ID, prk, 'sk', EMPTY, N_SK);
  wipe(prk);
  return { privateKey, publicKey: hpkePublicKey(privateKey) };
}

function extractAndExpand(dhOut: Uint8Array, kemContext: Uint8Array): Uint8Array {
  return labeledExtractExpand(KEM_SUITE_ID, EMPTY, 'eae_prk', dhOut, 'shared_secret', kemContext, N_SECRET);
}

/** Encap with an ephemeral KeyObject and its raw public key `enc`. */
function encap(
  recipientPublicKey: Uint8Array,
  ephemeral: KeyObject,
  enc: Uint8Array,
): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const dhOut = dh(ephemeral, recipientPublicKey);
  if (dhOut === null) {
    throw new FerryError('HPKE_INVALID_KEY', 'recipientPublicKey is of low order', {
      hints: ['X25519 with this public key gives the all-zero value; it cannot be sealed to'],
    });
  }
  const sharedSecret = extractAndExpand(dhOut, concatBytes(enc, recipientPublicKey));
  wipe(dhOut);
  return { sharedSecret, enc };
}

/**
 * Encap(pkR) with a caller-chosen ephemeral private key (RFC 9180 section 4.1). Deterministic,
 * hence `Unsafe`: reusing `ephemeralPrivateKey` breaks confidentiality. For test vectors and
 * for callers that derive the ephemeral key themselves. Throws HPKE_INVALID_KEY for bad key
 * lengths or a recipient public key of low order.
 */
export function kemEncapUnsafe(
  recipientPublicKey: Uint8Array,
  ephemeralPrivateKey: Uint8Array,
): { sharedSecret: Uint8Array; enc: Uint8Array } {
  keyArg(recipientPublicKey, 'recipientPublicKey', N_PK);
  keyArg(ephemeralPrivateKey, 'ephemeralPrivateKey', N_SK);
  const skE = privateKeyObject(ephemeralPrivateKey);
  return encap(recipientPublicKey, skE, rawPublicKey(skE));
}

/**
 * Decap(enc, skR) (RFC 9180 section 4.1). Throws HPKE_INVALID_KEY for a bad private key
 * length and HPKE_OPEN_FAILED for a bad `enc` (wrong length or low order).
 */
export function kemDecap(enc: Uint8Array, recipientPrivateKey: Uint8Array): Uint8Array {
  keyArg(recipientPrivateKey, 'recipientPrivateKey', N_SK);
  if (!(enc instanceof Uint8Array) || enc.length !== N_PK) {
    throw new FerryError('HPKE_OPEN_FAILED', 'cannot open: enc has the wrong length', {
      hints: [`expected: Uint8Array(${N_PK})`, `got: ${describe(enc)}`],
    });
  }
  const skR = privateKeyObject(recipientPrivateKey);
  const dhOut = dh(skR, enc);
  if (dhOut === null) {
    throw new FerryError('HPKE_OPEN_FAILED', 'cannot open: enc is of low order');
  }
  const pkR = rawPublicKey(skR);
  const ss = extractAndExpand(dhOut, concatBytes(enc, pkR));
  wipe(dhOut);
  return ss;
}

/** LabeledExtract("", "psk_id_hash", psk_id = "") — a constant of the suite. */
const PSK_ID_HASH = labeledExtract(HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);

/** The base-mode key schedule's outputs (RFC 9180 section 5.1). Secret: never log them. */
export type KeySchedule = { key: Uint8Array; baseNonce: Uint8Array; exporterSecret: Uint8Array };

/** KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = ""). */
export function keyScheduleBase(sharedSecret: Uint8Array, info: Uint8Array): KeySchedule {
  bytesArg(sharedSecret, 'sharedSecret');
  bytesArg(info, 'info');
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'info_hash', info);
  const ctx = concatBytes(Uint8Array.of(MODE_BASE), PSK_ID_HASH, infoHash);
  // secret = LabeledExtract(shared_secret, "secret", psk = ""); each output is
  // LabeledExpand(secret, ...), done as one native extract-then-expand per output.
  const derive = (label: string, len: number) =>
    labeledExtractExpand(HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY, label, ctx, len);
  return {
    key: derive('key', N_K),
    baseNonce: derive('base_nonce', N_N),
    exporterSecret: derive('exp', N_H),
  };
}

/** An HPKE context's common part: the sequence number and the secret export interface. */
export type HpkeContext = {
  /** The sequence number of the next message (starts at 0). */
  readonly seq: number;
  /** Export(exporter_context, L) (RFC 9180 section 5.3); L at most 255 * 32. */
  export(exporterContext: Uint8Array, length: number): Uint8Array;
  /** Wipes the context's keys; later calls throw INVALID_ARGUMENT. */
  destroy(): void;
};

export type SenderContext = HpkeContext & {
  /** The encapsulated key to send with the ciphertexts. */
  readonly enc: Uint8Array;
  /** Seals the next message (sequence number `seq`, then increments it). */
  seal(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
};

export type RecipientContext = HpkeContext & {
  /**
   * Opens the next message (sequence number `seq`). Throws HPKE_OPEN_FAILED when the
   * ciphertext, aad or order of messages does not authenticate; `seq` then stays unchanged.
   */
  open(ciphertext: Uint8Array, aad?: Uint8Array): Uint8Array;
};

function makeContext(ks: KeySchedule) {
  let seq = 0;
  let destroyed = false;
  const alive = () => {
    if (destroyed) throw new FerryError('INVALID_ARGUMENT', 'HPKE context was destroyed');
  };
  const nonce = (): Uint8Array => {
    if (seq >= Number.MAX_SAFE_INTEGER) {
      throw new FerryError('INVALID_ARGUMENT', 'HPKE message limit reached', {
        hints: ['a context seals at most 2^53 - 1 messages'],
      });
    }
    const n = Uint8Array.from(ks.baseNonce);
    const s = i2osp(seq, 8);
    for (let i = 0; i < 8; i++) n[N_N - 8 + i] ^= s[i];
    return n;
  };
  return {
    get seq() {
      return seq;
    },
    nonce,
    alive,
    next() {
      seq++;
    },
    export(exporterContext: Uint8Array, length: number): Uint8Array {
      alive();
      bytesArg(exporterContext, 'exporterContext');
      if (!Number.isSafeInteger(length) || length < 0 || length > 255 * N_H) {
        throw new FerryError('INVALID_ARGUMENT', 'export length out of range', {
          hints: [`expected: an integer 0..${255 * N_H}`, `got: ${String(length)}`],
        });
      }
      return labeledExpand(HPKE_SUITE_ID, ks.exporterSecret, 'sec', exporterContext, length);
    },
    destroy() {
      destroyed = true;
      wipe(ks.key, ks.baseNonce, ks.exporterSecret);
    },
  };
}

function aeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: N_T });
  c.setAAD(aad, { plaintextLength: pt.length });
  const body = c.update(pt);
  const fin = c.final();
  return concatBytes(body, fin, c.getAuthTag());
}

function aeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  if (ct.length < N_T) {
    throw new FerryError('HPKE_OPEN_FAILED', 'cannot open: ciphertext is shorter than the tag', {
      hints: [`expected: at least ${N_T} bytes`, `got: ${ct.length} bytes`],
    });
  }
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: N_T });
  d.setAuthTag(ct.subarray(ct.length - N_T));
  d.setAAD(aad, { plaintextLength: ct.length - N_T });
  const body = d.update(ct.subarray(0, ct.length - N_T));
  try {
    const fin = d.final();
    return concatBytes(body, fin);
  } catch (e) {
    body.fill(0);
    throw new FerryError('HPKE_OPEN_FAILED', 'cannot open: authentication failed', {
      cause: e,
      hints: ['the enc, ciphertext, info or aad was altered, or this is not the recipient key'],
    });
  }
}

export type SenderOptions = {
  recipientPublicKey: Uint8Array;
  info: Uint8Array;
  /**
   * A fixed ephemeral private key, for test vectors only: reusing one breaks confidentiality.
   * Default: a fresh key from the CSPRNG.
   */
  ephemeralPrivateKeyUnsafe?: Uint8Array;
};

/** SetupBaseS(pkR, info) (RFC 9180 section 5.1.1). Throws HPKE_INVALID_KEY for a bad pkR. */
export function createSenderContext(opts: SenderOptions): SenderContext {
  keyArg(opts.recipientPublicKey, 'recipientPublicKey', N_PK);
  bytesArg(opts.info, 'info');
  let sharedSecret: Uint8Array;
  let enc: Uint8Array;
  if (opts.ephemeralPrivateKeyUnsafe !== undefined) {
    ({ sharedSecret, enc } = kemEncapUnsafe(opts.recipientPublicKey, opts.ephemeralPrivateKeyUnsafe));
  } else {
    const pair = generateKeyPairSync('x25519');
    ({ sharedSecret, enc } = encap(opts.recipientPublicKey, pair.privateKey, rawPublicKey(pair.publicKey)));
  }
  const ks = keyScheduleBase(sharedSecret, opts.info);
  wipe(sharedSecret);
  const c = makeContext(ks);
  return {
    enc,
    get seq() {
      return c.seq;
    },
    export: c.export,
    destroy: c.destroy,
    seal(plaintext: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array {
      c.alive();
      bytesArg(plaintext, 'plaintext');
      bytesArg(aad, 'aad');
      const ct = aeadSeal(ks.key, c.nonce(), aad, plaintext);
      c.next();
      return ct;
    },
  };
}

/**
 * SetupBaseR(enc, skR, info) (RFC 9180 section 5.1.1). Throws HPKE_INVALID_KEY for a bad
 * private key and HPKE_OPEN_FAILED for a bad `enc`.
 */
export function createRecipientContext(opts: {
  recipientPrivateKey: Uint8Array;
  enc: Uint8Array;
  info: Uint8Array;
}): RecipientContext {
  bytesArg(opts.info, 'info');
  const sharedSecret = kemDecap(opts.enc, opts.recipientPrivateKey);
  const ks = keyScheduleBase(sharedSecret, opts.info);
  wipe(sharedSecret);
  const c = makeContext(ks);
  return {
    get seq() {
      return c.seq;
    },
    export: c.export,
    destroy: c.destroy,
    open(ciphertext: Uint8Array, aad: Uint8Array = EMPTY): Uint8Array {
      c.alive();
      bytesArg(ciphertext, 'ciphertext');
      bytesArg(aad, 'aad');
      const pt = aeadOpen(ks.key, c.nonce(), aad, ciphertext);
      c.next();
      return pt;
    },
  };
}

/**
 * Single-shot base-mode seal (RFC 9180 section 6.1, sequence number 0) with a fresh ephemeral
 * key. Throws HPKE_INVALID_KEY for a recipient public key of the wrong length or of low order.
 */
export async function hpkeSeal(
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array = EMPTY,
): Promise<{ enc: Uint8Array; ciphertext: Uint8Array }> {
  bytesArg(plaintext, 'plaintext');
  bytesArg(aad, 'aad');
  const ctx = createSenderContext({ recipientPublicKey, info });
  try {
    return { enc: ctx.enc, ciphertext: ctx.seal(plaintext, aad) };
  } finally {
    ctx.destroy();
  }
}

/**
 * Single-shot base-mode open (RFC 9180 section 6.1). Returns the plaintext; throws
 * HPKE_OPEN_FAILED when `enc`, `ciphertext`, `info` or `aad` was altered or the key is not the
 * recipient's, and HPKE_INVALID_KEY for a private key of the wrong length.
 */
export async function hpkeOpen(
  recipientPrivateKey: Uint8Array,
  enc: Uint8Array,
  ciphertext: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array = EMPTY,
): Promise<Uint8Array> {
  bytesArg(ciphertext, 'ciphertext');
  bytesArg(aad, 'aad');
  const ctx = createRecipientContext({ recipientPrivateKey, enc, info });
  try {
    return ctx.open(ciphertext, aad);
  } finally {
    ctx.destroy();
  }
}
