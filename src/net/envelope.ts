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

type Expiry = { exp: number; key: string; owner: string };

/**
 * Remembers (keyId, nonce) pairs until their timestamp leaves the freshness window, so a
 * captured request cannot be replayed. The server records a nonce only once the caller's key is
 * authorised for the route (docs/protocol.md §13.2), so keys nobody authorised cannot fill it.
 *
 * Bounded: expired entries leave incrementally (a min-heap on expiry time, a few entries per
 * call, never a sweep of the whole map); each key holds at most `maxPerKey` live entries
 * (beyond: PEER_RATE_LIMITED for that key only) and the cache at most `maxEntries` (beyond:
 * PEER_UNAVAILABLE, failing closed rather than forgetting nonces that are still replayable).
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #heap: Expiry[] = [];
  readonly #perOwner = new Map<string, number>();
  readonly #max: number;
  readonly #maxPerKey: number;

  constructor(opts: number | { maxEntries?: number; maxPerKey?: number } = {}) {
    const o = typeof opts === 'number' ? { maxEntries: opts } : opts;
    this.#max = o.maxEntries ?? 100_000;
    this.#maxPerKey = o.maxPerKey ?? Math.max(1, Math.floor(this.#max / 10));
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Live entries recorded for `owner` (a key id). */
  countFor(owner: string): number {
    return this.#perOwner.get(owner) ?? 0;
  }

  /**
   * Records the pair; returns false when it was already present (a replay). `owner` (the
   * caller's key id) is what the per-key bound counts; it defaults to the part of `key` before
   * the first `:`.
   */
  checkAndAdd(key: string, expiresAt: number, now: number, owner = key.split(':')[0]): boolean {
    this.sweep(now);
    const prev = this.#seen.get(key);
    if (prev !== undefined && prev > now) return false;
    if ((this.#perOwner.get(owner) ?? 0) >= this.#maxPerKey) {
      throw new FerryError(
        'PEER_RATE_LIMITED',
        'too many signed requests from this key in the freshness window',
        {
          hints: ['retry later'],
        },
      );
    }
    if (this.#seen.size >= this.#max) {
      throw new FerryError('PEER_UNAVAILABLE', 'too many signed requests in the freshness window', {
        hints: ['retry later'],
      });
    }
    this.#seen.set(key, expiresAt);
    this.#perOwner.set(owner, (this.#perOwner.get(owner) ?? 0) + 1);
    this.#push({ exp: expiresAt, key, owner });
    return true;
  }

  /** Drops the entries expired at `now`; cost proportional to the number dropped. */
  sweep(now: number): void {
    const h = this.#heap;
    while (h.length > 0 && h[0].exp <= now) {
      const top = this.#pop();
      if (this.#seen.get(top.key) !== top.exp) continue;
      this.#seen.delete(top.key);
      const c = (this.#perOwner.get(top.owner) ?? 1) - 1;
      if (c <= 0) this.#perOwner.delete(top.owner);
      else this.#perOwner.set(top.owner, c);
    }
  }

  #push(e: Expiry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].exp <= h[i].exp) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  #pop(): Expiry {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop() as Expiry;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].exp < h[m].exp) m = l;
        if (r < h.length && h[r].exp < h[m].exp) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}

export type VerifyRequestOptions = {
  freshnessMs?: number;
  now?: number;
  replay: ReplayCache;
};

export type VerifiedCaller = {
  keyId: Uint8Array;
  keyIdHex: string;
  timestamp: number;
  /** The request's nonce (lowercase hex), recorded by `recordNonce` once the key is authorised. */
  nonceHex: string;
  /** When the nonce may leave the replay cache (ms): the timestamp plus the window, plus 1. */
  replayUntil: number;
};

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  if (typeof v !== 'string' || v.length === 0) throw unauthorized(`missing header ${name}`);
  return v;
}

/**
 * Verifies a signed request as received: parse headers, check freshness, check the signature
 * over the rebuilt envelope, then record the nonce. Throws PEER_UNAUTHORIZED on any failure.
 * The server uses `authenticateRequest` and `recordNonce` separately, to record nonces only
 * for keys the route authorises.
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
  const caller = authenticateRequest(req, opts);
  recordNonce(caller, opts.replay, opts.now ?? Date.now());
  return caller;
}

/** Records an authenticated caller's nonce; PEER_UNAUTHORIZED when it was seen before (a replay). */
export function recordNonce(caller: VerifiedCaller, replay: ReplayCache, now: number): void {
  if (
    !replay.checkAndAdd(`${caller.keyIdHex}:${caller.nonceHex}`, caller.replayUntil, now, caller.keyIdHex)
  ) {
    throw unauthorized('nonce already used (replayed request)');
  }
}

/**
 * Checks a signed request's headers, freshness and signature, without recording its nonce.
 * Freshness is checked before the (costlier) signature. Throws PEER_UNAUTHORIZED.
 */
export function authenticateRequest(
  req: {
    method: string;
    path: string;
    body: Uint8Array;
    headers: Record<string, string | string[] | undefined>;
  },
  opts: { freshnessMs?: number; now?: number },
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
  const window = opts.freshnessMs ?? DEFAULT_FRESHNESS_MS;
  const now = opts.now ?? Date.now();
  if (Math.abs(now - timestamp) > window) {
    throw unauthorized(`timestamp outside the freshness window of ${window} ms (check the clock)`);
  }
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
  return {
    keyId,
    keyIdHex: toHex(keyId),
    timestamp,
    nonceHex: toHex(nonce),
    replayUntil: timestamp + window + 1,
  };
}
