/**
 * The age ASCII armor (C2SP age spec, "ASCII armor"): a strict subset of PEM.
 *
 *     -----BEGIN AGE ENCRYPTED FILE-----
 *     64 columns of padded standard base64 per line, the last line 4..64 (a multiple of 4)
 *     -----END AGE ENCRYPTED FILE-----
 *
 * Decoding accepts LF or CRLF line endings and ASCII whitespace before the first line and
 * after the last one; nothing else: no headers, no checksum, no blank or indented lines, no
 * trailing spaces, no short line before the last, canonical base64 only. Violations throw
 * AGE_ARMOR_INVALID. Both directions work incrementally in constant memory.
 */
import { FerryError } from '../../kernel/index.ts';

export const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
export const ARMOR_END = '-----END AGE ENCRYPTED FILE-----';
const COLUMNS = 64;
const BYTES_PER_LINE = 48;
const B64_LINE_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

function armorError(message: string, hint?: string): FerryError {
  return new FerryError('AGE_ARMOR_INVALID', message, hint ? { hints: [hint] } : {});
}

/**
 * Incremental armor decoder. `push` takes armored bytes and returns the binary bytes decoded
 * so far (possibly empty); `end` checks the armor closed properly. Throws AGE_ARMOR_INVALID.
 */
export class ArmorDecoder {
  #state: 'leading' | 'begin' | 'body' | 'trailing' = 'leading';
  #partial = '';
  #lastLineSeen = false;

  push(data: Uint8Array): Uint8Array {
    let i = 0;
    if (this.#state === 'leading') {
      while (i < data.length && isSpace(data[i])) i++;
      if (i === data.length) return new Uint8Array(0);
      this.#state = 'begin';
    }
    if (this.#state === 'trailing') {
      this.#checkTrailing(data, i);
      return new Uint8Array(0);
    }
    const text =
      this.#partial + Buffer.from(data.buffer, data.byteOffset + i, data.length - i).toString('latin1');
    const b64: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = text.indexOf('\n', pos);
      if (nl < 0) break;
      const line = text.slice(pos, text.charCodeAt(nl - 1) === 0x0d && nl > pos ? nl - 1 : nl);
      pos = nl + 1;
      this.#line(line, b64);
      if ((this.#state as string) === 'trailing') {
        const rest = Buffer.from(text.slice(pos), 'latin1');
        this.#checkTrailing(rest, 0);
        pos = text.length;
        break;
      }
    }
    this.#partial = text.slice(pos);
    if (this.#partial.length > COLUMNS + 1 && this.#state !== 'begin') {
      throw armorError('armor line too long', `expected: at most ${COLUMNS} columns`);
    }
    if (this.#partial.length > ARMOR_BEGIN.length + 1 && this.#state === 'begin') {
      throw armorError('invalid armor first line', `expected: ${ARMOR_BEGIN}`);
    }
    return b64.length === 0 ? new Uint8Array(0) : decodeLines(b64);
  }

  /** At EOF: returns the last decoded bytes; throws unless the END line was seen. */
  end(): Uint8Array {
    let out: Uint8Array = new Uint8Array(0);
    if (this.#partial.length > 0 && this.#state !== 'trailing') {
      const b64: string[] = [];
      const line = this.#partial.endsWith('\r') ? this.#partial.slice(0, -1) : this.#partial;
      this.#partial = '';
      this.#line(line, b64);
      if (b64.length > 0) out = decodeLines(b64);
    }
    if (this.#state === 'leading' || this.#state === 'begin')
      throw armorError('no armor found', `expected: ${ARMOR_BEGIN}`);
    if (this.#state !== 'trailing') throw armorError('armor has no end line', `expected: ${ARMOR_END}`);
    return out;
  }

  #line(line: string, b64: string[]): void {
    if (this.#state === 'begin') {
      if (line !== ARMOR_BEGIN) throw armorError('invalid armor first line', `expected: ${ARMOR_BEGIN}`);
      this.#state = 'body';
      return;
    }
    if (line === ARMOR_END) {
      this.#state = 'trailing';
      return;
    }
    if (this.#lastLineSeen) throw armorError('armor data after its last line', `expected: ${ARMOR_END}`);
    if (line.length === 0 || line.length > COLUMNS || !B64_LINE_RE.test(line)) {
      throw armorError('invalid armor line', `expected: 1..${COLUMNS} characters of standard base64`);
    }
    if (line.length < COLUMNS || line.endsWith('=')) {
      if (line.length % 4 !== 0) throw armorError('armor base64 is not padded');
      this.#lastLineSeen = true;
      const bytes = Buffer.from(line, 'base64');
      if (bytes.toString('base64') !== line) throw armorError('armor base64 is not canonical');
    }
    b64.push(line);
  }

  #checkTrailing(data: Uint8Array, from: number): void {
    for (let j = from; j < data.length; j++) {
      if (!isSpace(data[j])) throw armorError('data after the armor end line');
    }
  }
}

function decodeLines(lines: string[]): Uint8Array {
  const b = Buffer.from(lines.join(''), 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Incremental armor encoder: `push` binary, get armored text bytes; `end` closes it. */
export class ArmorEncoder {
  #started = false;
  #carry = new Uint8Array(0);

  push(data: Uint8Array): Buffer {
    let head = '';
    if (!this.#started) {
      head = ARMOR_BEGIN + '\n';
      this.#started = true;
    }
    const all = this.#carry.length > 0 ? Buffer.concat([this.#carry, data]) : data;
    const full = all.length - (all.length % BYTES_PER_LINE);
    const emitLen = full;
    this.#carry = Uint8Array.from(all.subarray(emitLen));
    return Buffer.from(head + wrapLines(all.subarray(0, emitLen)), 'latin1');
  }

  end(): Buffer {
    const head = this.#started ? '' : ARMOR_BEGIN + '\n';
    this.#started = true;
    const out = head + wrapLines(this.#carry) + ARMOR_END + '\n';
    this.#carry = new Uint8Array(0);
    return Buffer.from(out, 'latin1');
  }
}

function wrapLines(bytes: Uint8Array): string {
  if (bytes.length === 0) return '';
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let out = '';
  for (let i = 0; i < s.length; i += COLUMNS) out += s.slice(i, i + COLUMNS) + '\n';
  return out;
}

/** Armors a whole binary age file. */
export function armor(file: Uint8Array): string {
  const e = new ArmorEncoder();
  return Buffer.concat([e.push(file), e.end()]).toString('latin1');
}

/** Decodes a whole armored file (see ArmorDecoder for the rules). */
export function dearmor(text: string | Uint8Array): Uint8Array {
  const d = new ArmorDecoder();
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const a = d.push(bytes);
  const b = d.end();
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
