/**
 * The signed request envelope (docs/protocol.md §13.2). A caller proves which key sent a
 * request by signing the tagged canonical object
 *
 *     ferry/http-request/v1 {method, path, bodyHash, timestamp, nonce, keyId}
 *
 * with its Ed25519 key, and sends the parts in four headers (`ferry-key`, `ferry-timestamp`,
 * `ferry-nonce`, `ferry-signature`). The server rebuilds the object from the request it
 * actually received (method, path with query, SHA-256 of the body bytes) and verifies it,
 * then checks freshness and that the (keyId, nonce) pair was not seen before.
 *
 * Verification failures are PEER_UNAUTHORIZED with a hint naming the failed check; they never
 * echo the signature or other header values back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { encodeTagged, FerryError, fromHex, toHex } from '../kernel/index.ts';
import { type RequestSigner, verifyEd25519 } from './ed25519.ts';

export const REQUEST_TAG = 'ferry/http-request/v1';
export const NONCE_BYTES = 16;
/** Default freshness window: a timestamp may be this far before or after the server's clock. */
export const DEFAULT_FRESHNESS_MS = 60_000;

export const HEADER_KEY = 'ferry-key';
export const HEADER_TIMESTAMP = 'ferry-timestamp';
export const HEADER_NONCE = 'ferry-nonce';
export const HEADER_SIGNATURE = 'ferry-signature';

export type RequestEnvelope = {
  /** Upper-case HTTP method. */
  method: string;
  /** The request target as sent: path plus `?query`, no scheme or host. */
  path: string;
  /** SHA-256 of the exact body bytes (of the empty string when there is no body). */
  bodyHash: Uint8Array;
  /** Unix time in milliseconds. */
  timestamp: number;
  nonce: Uint8Array;
  /** Raw 32-byte Ed25519 public key of the caller. */
  keyId: Uint8Array;
};

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** The exact bytes that are signed: encodeTagged('ferry/http-request/v1', envelope). */
export function envelopeBytes(e: RequestEnvelope): Uint8Array {
  return encodeTagged(REQUEST_TAG, {
    method: e.method,
    path: e.path,
    bodyHash: e.bodyHash,
    timestamp: e.timestamp,
    nonce: e.nonce,
    keyId: e.keyId,
  });
}

/** Builds and signs an envelope; returns the four headers to send. */
export function signRequest(
  signer: RequestSigner,
  req: { method: string; path: string; body?: Uint8Array; now?: number; nonce?: Uint8Array },
): Record<string, string> {
  const env: RequestEnvelope = {
    method: req.method.toUpperCase(),
    path: req.path,
    bodyHash: sha256(req.body ?? new Uint8Array(0)),
    timestamp: req.now ?? Date.now(),
    nonce: req.nonce ?? new Uint8Array(randomBytes(NONCE_BYTES)),
    keyId: signer.keyId,
  };
  const sig = signer.sign(envelopeBytes(env));
  return {
    [HEADER_KEY]: toHex(env.keyId),
    [HEADER_TIMESTAMP]: String(env.timestamp),
    [HEADER_NONCE]: toHex(env.nonce),
    [HEADER_SIGNATURE]: toHex(sig),
  };
}

function unauthorized(hint: string): FerryError {
  return new FerryError('PEER_UNAUTHORIZED', 'request signature rejected', { hints: [hint] });
}

/**
 * Remembers (keyId, nonce) pairs until their timestamp leaves the freshness window, so a
 * captured request cannot be replayed. Bounded: when full of live entries it refuses new
 * requests (fails closed) rather than forgetting nonces that are still replayable.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;

  constructor(maxEntries = 100_000) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records the pair; returns false when it was already present (a replay). */
  checkAndAdd(key: string, expiresAt: number, now: number): boolean {
    const prev = this.#seen.get(key);
    if (prev !== undefined && prev > now) return false;
    if (this.#seen.size >= this.#max) this.sweep(now);
    if (this.#seen.size >= this.#max) {
      throw new FerryError('PEER_UNAVAILABLE', 'too many signed requests in the freshness window', {
        hints: ['retry later'],
      });
    }
    this.#seen.set(key, expiresAt);
    return true;
  }

  sweep(now: number): void {
    for (const [k, exp] of this.#seen) if (exp <= now) this.#seen.delete(k);
  }
}

export type VerifyRequestOptions = {
  freshnessMs?: number;
  now?: number;
  replay: ReplayCache;
};

export type VerifiedCaller = { keyId: Uint8Array; keyIdHex: string; timestamp: number };

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  if (typeof v !== 'string' || v.length === 0) throw unauthorized(`missing header ${name}`);
  return v;
}

/**
 * Verifies a signed request as received. Order: parse headers, check the signature over the
 * rebuilt envelope, check freshness, then record the nonce (only authentic requests consume
 * cache space). Throws PEER_UNAUTHORIZED on any failure.
 */
export function verifyRequest(
  req: {
    method: string;
    path: string;
    body: Uint8Array;
    headers: Record<string, string | string[] | undefined>;
  },
  opts: VerifyRequestOptions,
): VerifiedCaller {
  let keyId: Uint8Array;
  let nonce: Uint8Array;
  let sig: Uint8Array;
  try {
    keyId = fromHex(header(req.headers, HEADER_KEY), HEADER_KEY, 32);
    nonce = fromHex(header(req.headers, HEADER_NONCE), HEADER_NONCE, NONCE_BYTES);
    sig = fromHex(header(req.headers, HEADER_SIGNATURE), HEADER_SIGNATURE, 64);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'PEER_UNAUTHORIZED') throw e;
    throw unauthorized('malformed signature headers (expected lowercase hex of the right length)');
  }
  const tsText = header(req.headers, HEADER_TIMESTAMP);
  if (!/^[0-9]{1,16}$/.test(tsText)) throw unauthorized(`malformed header ${HEADER_TIMESTAMP}`);
  const timestamp = Number(tsText);
  if (!Number.isSafeInteger(timestamp)) throw unauthorized(`malformed header ${HEADER_TIMESTAMP}`);
  const env: RequestEnvelope = {
    method: req.method.toUpperCase(),
    path: req.path,
    bodyHash: sha256(req.body),
    timestamp,
    nonce,
    keyId,
  };
  if (!verifyEd25519(keyId, envelopeBytes(env), sig)) {
    throw unauthorized('signature does not verify for this method, path, body and key');
  }
  const window = opts.freshnessMs ?? DEFAULT_FRESHNESS_MS;
  const now = opts.now ?? Date.now();
  if (Math.abs(now - timestamp) > window) {
    throw unauthorized(`timestamp outside the freshness window of ${window} ms (check the clock)`);
  }
  const keyIdHex = toHex(keyId);
  if (!opts.replay.checkAndAdd(`${keyIdHex}:${toHex(nonce)}`, timestamp + window + 1, now)) {
    throw unauthorized('nonce already used (replayed request)');
  }
  return { keyId, keyIdHex, timestamp };
}
