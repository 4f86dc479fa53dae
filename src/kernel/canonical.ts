/**
 * Canonical encoding of protocol objects: deterministic CBOR (RFC 8949 section 4.2.1) with a
 * domain-separation tag per object type. See docs/protocol.md, "Canonical encoding".
 *
 * A protocol value is one of: unsigned or negative integer (safe-integer `number` or
 * `bigint`), byte string (`Uint8Array`), text string, boolean, null, array, or map with
 * text keys (a plain object). Floats, `undefined`, `Map`, dates and other types are refused
 * with CBOR_UNSUPPORTED_TYPE, so an encoding never depends on how a number happened to be
 * typed.
 *
 * A tagged object is encoded as the CBOR array `[tag, body]`, where `tag` is a text string
 * such as `ferry/receipt/v1`. Hashes and signatures are computed over these exact bytes.
 */
import { createHash } from 'node:crypto';
import { decode, encode, rfc8949EncodeOptions } from 'cborg';
import { FerryError } from './errors.ts';

export type CanonicalValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

function check(value: unknown, path: string): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return;
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new FerryError('CBOR_UNSUPPORTED_TYPE', `value at ${path} is not a safe integer`, {
          hints: ['protocol objects carry integers only (use bigint past 2^53)', `got: ${value}`],
        });
      }
      return;
    case 'object': {
      if (value === null || value instanceof Uint8Array) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) check(value[i], `${path}[${i}]`);
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new FerryError('CBOR_UNSUPPORTED_TYPE', `value at ${path} is not a plain object`, {
          hints: [`got: ${proto?.constructor?.name ?? 'unknown'}`],
        });
      }
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) {
          throw new FerryError('CBOR_UNSUPPORTED_TYPE', `value at ${path}.${k} is undefined`, {
            hints: ['omit the key or use null'],
          });
        }
        check(v, `${path}.${k}`);
      }
      return;
    }
    default:
      throw new FerryError('CBOR_UNSUPPORTED_TYPE', `value at ${path} has unsupported type ${typeof value}`);
  }
}

/** Deterministic CBOR of a protocol value (no domain tag). */
export function encodeCanonical(value: CanonicalValue): Uint8Array {
  check(value, '$');
  return encode(value, rfc8949EncodeOptions);
}

/**
 * Decodes CBOR and insists it is canonical: the input must re-encode to the same bytes.
 * Throws CBOR_MALFORMED for undecodable input and CBOR_NOT_CANONICAL otherwise.
 */
export function decodeCanonical(bytes: Uint8Array): CanonicalValue {
  let value: CanonicalValue;
  try {
    value = decode(bytes, {
      strict: true,
      rejectDuplicateMapKeys: true,
      useMaps: false,
      allowUndefined: false,
    }) as CanonicalValue;
  } catch (e) {
    throw new FerryError('CBOR_MALFORMED', 'malformed CBOR', { cause: e, hints: [(e as Error).message] });
  }
  let again: Uint8Array;
  try {
    again = encodeCanonical(value);
  } catch (e) {
    throw new FerryError('CBOR_NOT_CANONICAL', 'CBOR uses types outside the protocol subset', { cause: e });
  }
  if (Buffer.compare(Buffer.from(again), Buffer.from(bytes)) !== 0) {
    throw new FerryError('CBOR_NOT_CANONICAL', 'CBOR is not in canonical form (RFC 8949 section 4.2.1)');
  }
  return value;
}

const TAG_RE = /^ferry\/[a-z0-9-]+(?:\/[a-z0-9-]+)*\/v[0-9]+$/;

/** Encodes `[tag, body]` canonically. `tag` names the object type, e.g. `ferry/receipt/v1`. */
export function encodeTagged(tag: string, body: CanonicalValue): Uint8Array {
  if (!TAG_RE.test(tag)) {
    throw new FerryError('INVALID_ARGUMENT', `bad domain tag`, {
      hints: ['expected: ferry/<name>/v<N>', `got: ${tag}`],
    });
  }
  return encodeCanonical([tag, body]);
}

/** Decodes `[tag, body]`, checking canonical form and that the tag is `expectedTag`. */
export function decodeTagged(expectedTag: string, bytes: Uint8Array): CanonicalValue {
  const v = decodeCanonical(bytes);
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string') {
    throw new FerryError('CBOR_MALFORMED', 'not a tagged protocol object', {
      hints: ['expected: [tag, body]'],
    });
  }
  if (v[0] !== expectedTag) {
    throw new FerryError('CBOR_WRONG_DOMAIN', 'protocol object has the wrong domain tag', {
      hints: [`expected: ${expectedTag}`, `got: ${v[0]}`],
    });
  }
  return v[1] as CanonicalValue;
}

/** SHA-256 of the tagged canonical encoding: the hash of a protocol object. */
export function hashTagged(tag: string, body: CanonicalValue): Uint8Array {
  return new Uint8Array(createHash('sha256').update(encodeTagged(tag, body)).digest());
}
