/**
 * HTTP Range (RFC 9110 section 14) for serving large files: one `bytes=` range per request.
 *
 * `parseRange` returns:
 * - `null` when the header is absent, not a `bytes` range, has several ranges, or is
 *   malformed: the server ignores it and sends the whole representation (RFC 9110 allows
 *   a server to ignore Range);
 * - `'unsatisfiable'` when it is well-formed but selects nothing (416);
 * - `{start, end}` (inclusive) otherwise, clamped to the size.
 */
export type ByteRange = { start: number; end: number };

const RANGE_RE = /^bytes=(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = RANGE_RE.exec(header.trim());
  if (!m) return null;
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  if (a === '') {
    // Suffix range: the last N bytes.
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return null;
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Number(b);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return null;
  if (b !== '' && end < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/** `bytes=START-END` or `bytes=START-` for a client request. */
export function formatRange(start: number, end?: number): string {
  return `bytes=${start}-${end === undefined ? '' : end}`;
}

/** Parses a response's `Content-Range: bytes START-END/SIZE` (SIZE may be `*`). */
export function parseContentRange(
  header: string | undefined,
): { start: number; end: number; size: number | null } | null {
  if (header === undefined) return null;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) return null;
  return { start: Number(m[1]), end: Number(m[2]), size: m[3] === '*' ? null : Number(m[3]) };
}
