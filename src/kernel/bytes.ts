import { FerryError } from './errors.ts';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Decodes hex (optionally 0x-prefixed). Throws INVALID_HEX naming `what`. */
export function fromHex(hex: string, what = 'hex', expectedLength?: number): Uint8Array {
  if (typeof hex !== 'string') throw new FerryError('INVALID_HEX', `${what}: expected a hex string`);
  const h = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (!HEX_RE.test(h)) {
    throw new FerryError('INVALID_HEX', `${what} is not valid hex`, {
      hints: ['expected: an even number of characters 0-9, a-f', `got: ${h.length} characters`],
    });
  }
  const out = Uint8Array.from(Buffer.from(h, 'hex'));
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new FerryError('INVALID_HEX', `${what} has the wrong length`, {
      hints: [`expected: ${expectedLength} bytes`, `got: ${out.length} bytes`],
    });
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Overwrites a buffer with zeros (best effort: JS cannot promise no copies remain). */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}
