/**
 * Token-bucket rate limiting for the HTTP servers (docs/protocol.md §13.1): per remote address
 * for signed requests (before the signature is checked) and per authorised key (before its
 * nonce is recorded). Memory is bounded: at most `maxIds` buckets; when full, buckets that have
 * refilled (idle callers) are dropped, and if none has, a new caller is refused (fails closed).
 */
import { FerryError } from '../kernel/index.ts';

export type RateLimit = {
  /** Sustained requests per second. */
  perSecond: number;
  /** Requests allowed in a burst. */
  burst: number;
};

type Bucket = { tokens: number; at: number };

export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #maxIds: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: RateLimit, maxIds = 10_000) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) {
      throw new FerryError('INVALID_ARGUMENT', 'limit: perSecond must be > 0 and burst >= 1', {
        hints: [`got: ${limit.perSecond}/s, burst ${limit.burst}`],
      });
    }
    this.#limit = limit;
    this.#maxIds = maxIds;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `id`; false when its bucket is empty (or no bucket can be made). */
  take(id: string, now: number): boolean {
    let b = this.#buckets.get(id);
    if (b) {
      b.tokens = Math.min(this.#limit.burst, b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond);
      b.at = now;
    } else {
      if (this.#buckets.size >= this.#maxIds) this.#dropIdle(now);
      if (this.#buckets.size >= this.#maxIds) return false;
      b = { tokens: this.#limit.burst, at: now };
      this.#buckets.set(id, b);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  #dropIdle(now: number): void {
    for (const [id, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond >= this.#limit.burst)
        this.#buckets.delete(id);
    }
  }
}

export function rateLimited(what: string): FerryError {
  return new FerryError('PEER_RATE_LIMITED', 'too many requests', { hints: [what, 'retry later'] });
}
