/**
 * The age v1 header: its grammar, a strict incremental parser, the serialiser and the
 * header MAC (C2SP age spec, "Header"). See docs/protocol.md section 5.
 *
 *     header  = "age-encryption.org/v1" LF *stanza "---" SP mac-b64 LF
 *     stanza  = "->" 1*(SP arg) LF body
 *     arg     = 1*VCHAR                      ; 0x21..0x7e
 *     body    = *(64 b64-char LF) 0-63 b64-char LF
 *
 * Base64 is the standard alphabet without padding and must be canonical (unused trailing
 * bits zero). Lines end with LF only. Every failure is a FerryError with a header-family
 * code (AGE_HEADER_INVALID, AGE_VERSION_UNSUPPORTED, AGE_STANZA_INVALID).
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { FerryError } from '../../kernel/index.ts';

/** One recipient stanza: its type (first argument), further arguments, and raw body. */
export type Stanza = { type: string; args: string[]; body: Uint8Array };

export const VERSION_LINE = 'age-encryption.org/v1';
const VERSION_PREFIX = 'age-encryption.org/';
/** Upper bound on the header size the parser buffers (constant memory for hostile input). */
export const MAX_HEADER_SIZE = 1 << 20;

const B64_RE = /^[A-Za-z0-9+/]*$/;

/**
 * Decodes canonical unpadded standard base64. Returns null for padding, a bad character,
 * an impossible length or non-zero trailing bits.
 */
export function decodeB64Canonical(s: string): Uint8Array | null {
  if (!B64_RE.test(s) || s.length % 4 === 1) return null;
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64').replace(/=+$/, '') !== s) return null;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Unpadded standard base64. */
export function encodeB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
}

/** HKDF-SHA256 with a 32-byte output. */
export function hkdf32(ikm: Uint8Array, salt: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, 32));
}

/** HMAC-SHA256 over the header up to and including "---", keyed by HKDF(fileKey, "", "header"). */
export function headerMac(fileKey: Uint8Array, headerNoMac: Uint8Array): Uint8Array {
  const key = hkdf32(fileKey, new Uint8Array(0), 'header');
  const mac = createHmac('sha256', key).update(headerNoMac).digest();
  key.fill(0);
  return new Uint8Array(mac);
}

function headerError(
  message: string,
  hint?: string,
  code: 'AGE_HEADER_INVALID' | 'AGE_STANZA_INVALID' = 'AGE_HEADER_INVALID',
) {
  return new FerryError(code, message, hint ? { hints: [hint] } : {});
}

function isArg(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Throws AGE_STANZA_INVALID unless `type` and `args` follow the stanza argument grammar. */
export function checkStanzaArgs(stanza: Stanza): void {
  if (!isArg(stanza.type) || !stanza.args.every(isArg)) {
    throw headerError(
      'stanza arguments must be non-empty runs of printable ASCII',
      undefined,
      'AGE_STANZA_INVALID',
    );
  }
  if (!(stanza.body instanceof Uint8Array)) {
    throw headerError('stanza body must be a Uint8Array', undefined, 'AGE_STANZA_INVALID');
  }
}

/** A parsed header: stanzas, the MAC'd bytes, the MAC, and the header's length in bytes. */
export type Header = { stanzas: Stanza[]; headerNoMac: Uint8Array; mac: Uint8Array; size: number };

/**
 * Incremental strict header parser. Feed bytes with `push`; it returns the parsed header
 * once the MAC line is complete (the bytes after it, if any, are returned as `rest`), or
 * null when it needs more input. `end()` is called at EOF when no header was returned and
 * always throws. Throws header-family FerryErrors as soon as a complete line is invalid.
 */
export class HeaderParser {
  #buf = new Uint8Array(1024);
  #len = 0;
  /** Offset of the first byte of the line not yet parsed. */
  #pos = 0;
  #state: 'version' | 'stanza-or-mac' | 'body' = 'version';
  #stanzas: Stanza[] = [];
  #current: { type: string; args: string[]; lines: Uint8Array[] } | null = null;

  push(data: Uint8Array): { header: Header; rest: Uint8Array } | null {
    // Copy in pieces so that a large input (a whole file) costs only the header's bytes.
    for (let off = 0; off < data.length; ) {
      const piece = data.subarray(off, off + 16384);
      off += piece.length;
      const r = this.#pushPiece(piece);
      if (r !== null) return { header: r.header, rest: data.subarray(off - piece.length + r.consumed) };
    }
    return null;
  }

  #pushPiece(data: Uint8Array): { header: Header; consumed: number } | null {
    if (this.#len + data.length > this.#buf.length) {
      let n = this.#buf.length;
      while (n < this.#len + data.length) n *= 2;
      const b = new Uint8Array(n);
      b.set(this.#buf.subarray(0, this.#len));
      this.#buf = b;
    }
    const start = this.#len;
    this.#buf.set(data, start);
    this.#len += data.length;
    let nl = this.#buf.subarray(0, this.#len).indexOf(0x0a, start);
    while (nl >= 0) {
      const lineStart = this.#pos;
      const line = Buffer.from(this.#buf.buffer, this.#buf.byteOffset + lineStart, nl - lineStart).toString(
        'latin1',
      );
      this.#pos = nl + 1;
      const mac = this.#line(line);
      if (mac !== null) {
        const header: Header = {
          stanzas: this.#stanzas,
          headerNoMac: this.#buf.slice(0, lineStart + 3),
          mac,
          size: this.#pos,
        };
        return { header, consumed: this.#pos - start };
      }
      nl = this.#buf.subarray(0, this.#len).indexOf(0x0a, this.#pos);
    }
    if (this.#len > MAX_HEADER_SIZE) {
      throw headerError('header too large', `expected: at most ${MAX_HEADER_SIZE} bytes`);
    }
    return null;
  }

  /** At EOF without a complete header: always throws AGE_HEADER_INVALID. */
  end(): never {
    throw headerError(this.#len === 0 ? 'empty file: no age header' : 'truncated age header');
  }

  /** Handles one complete line (without LF). Returns the MAC when the header is complete. */
  #line(line: string): Uint8Array | null {
    switch (this.#state) {
      case 'version':
        if (line !== VERSION_LINE) {
          if (line.startsWith(VERSION_PREFIX)) {
            throw new FerryError('AGE_VERSION_UNSUPPORTED', 'unsupported age format version', {
              hints: [`expected: ${VERSION_LINE}`, `got: ${JSON.stringify(line.slice(0, 64))}`],
            });
          }
          throw headerError('not an age file: bad version line', `expected: ${VERSION_LINE}`);
        }
        this.#state = 'stanza-or-mac';
        return null;
      case 'stanza-or-mac': {
        if (line.startsWith('-> ')) {
          const parts = line.slice(3).split(' ');
          if (!parts.every(isArg)) {
            throw headerError(
              'invalid stanza arguments',
              'expected: one or more space-separated runs of printable ASCII',
              'AGE_STANZA_INVALID',
            );
          }
          this.#current = { type: parts[0], args: parts.slice(1), lines: [] };
          this.#state = 'body';
          return null;
        }
        if (line.startsWith('---')) {
          if (!line.startsWith('--- ')) throw headerError('invalid MAC line', 'expected: "--- " and the MAC');
          const mac = decodeB64Canonical(line.slice(4));
          if (mac === null || mac.length !== 32) {
            throw headerError('invalid header MAC encoding', 'expected: 43 characters of canonical base64');
          }
          return mac;
        }
        throw headerError('invalid header line', 'expected: a stanza ("-> ...") or the MAC line ("--- ...")');
      }
      case 'body': {
        const cur = this.#current!;
        if (line.length > 64) {
          throw headerError(
            'stanza body line too long',
            'expected: at most 64 characters',
            'AGE_STANZA_INVALID',
          );
        }
        const bytes = decodeB64Canonical(line);
        if (bytes === null) {
          throw headerError('stanza body is not canonical unpadded base64', undefined, 'AGE_STANZA_INVALID');
        }
        cur.lines.push(bytes);
        if (line.length < 64) {
          let n = 0;
          for (const l of cur.lines) n += l.length;
          const body = new Uint8Array(n);
          let o = 0;
          for (const l of cur.lines) {
            body.set(l, o);
            o += l.length;
          }
          this.#stanzas.push({ type: cur.type, args: cur.args, body });
          this.#current = null;
          this.#state = 'stanza-or-mac';
        }
        return null;
      }
    }
  }
}

/** Parses a complete header at the start of `bytes`. Returns it with the bytes that follow. */
export function parseHeader(bytes: Uint8Array): { header: Header; rest: Uint8Array } {
  const p = new HeaderParser();
  const r = p.push(bytes);
  if (r === null) p.end();
  return r!;
}

/** Serialises the header up to and including "---" (the bytes the MAC covers). */
export function encodeHeaderNoMac(stanzas: Stanza[]): Uint8Array {
  let s = VERSION_LINE + '\n';
  for (const st of stanzas) {
    checkStanzaArgs(st);
    s += '-> ' + [st.type, ...st.args].join(' ') + '\n';
    const b64 = encodeB64(st.body);
    for (let i = 0; i < b64.length; i += 64) s += b64.slice(i, i + 64) + '\n';
    if (b64.length % 64 === 0) s += '\n';
  }
  s += '---';
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** Serialises a full header with its MAC line. */
export function encodeHeader(stanzas: Stanza[], fileKey: Uint8Array): Uint8Array {
  const noMac = encodeHeaderNoMac(stanzas);
  const mac = headerMac(fileKey, noMac);
  const tail = Buffer.from(' ' + encodeB64(mac) + '\n', 'latin1');
  const out = new Uint8Array(noMac.length + tail.length);
  out.set(noMac);
  out.set(tail, noMac.length);
  return out;
}
