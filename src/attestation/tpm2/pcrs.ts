/**
 * PCR values and the quote's PCR digest.
 *
 * Two input formats are accepted (`parsePcrValues` detects which):
 * - JSON `{"sha256": {"0": "<hex>", "23": "<hex>"}, "sha1": {...}}` (banks sha1, sha256, sha384,
 *   sha512; indices 0..31 as decimal strings; hex lowercase or uppercase, optional 0x);
 * - tpm2-tools' "serialized" file (`tpm2_quote -o`, `tpm2_pcrread -o`), which is the in-memory
 *   layout of the tss2 C structs on a little-endian machine: a TPML_PCR_SELECTION of 4 + 16 x 8
 *   bytes (u32 count; per entry u16 hash, u8 sizeofSelect, pcrSelect[4], one pad byte), a u32
 *   count of digest lists, then that many TPML_DIGEST of 4 + 8 x 66 bytes (u32 count; per entry
 *   u16 size and a 64-byte buffer). Digests follow the selection order, eight per list.
 *
 * The quote's pcrDigest is H(PCR[sel0] || PCR[sel1] || ...) over the quote's own selection
 * order (banks in the order listed, indices ascending within a bank), where H is the SIGNING
 * SCHEME's hash, also for a SHA-1 bank.
 */
import { createHash } from 'node:crypto';
import { FerryError, fromHex, toHex } from '../../kernel/index.ts';
import { type HashName, hashAlgId, hashInfo, type PcrSelection, selectBitsToIndices } from './structures.ts';

/** PCR values by bank name and index. */
export type PcrValues = Map<HashName, Map<number, Uint8Array>>;

const BANKS: readonly HashName[] = ['sha1', 'sha256', 'sha384', 'sha512'];

function malformed(message: string, hints: string[] = []): FerryError {
  return new FerryError('ATTESTATION_MALFORMED', `PCR values: ${message}`, { hints });
}

/** Parses PCR values from JSON (object or text) in the shape documented above. */
export function pcrValuesFromJson(input: unknown): PcrValues {
  let obj = input;
  if (typeof obj === 'string') {
    try {
      obj = JSON.parse(obj);
    } catch (e) {
      throw new FerryError('ATTESTATION_MALFORMED', 'PCR values: not valid JSON', { cause: e });
    }
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw malformed('expected an object {"sha256": {"0": hex, ...}}');
  }
  const out: PcrValues = new Map();
  for (const [bank, entries] of Object.entries(obj)) {
    const h = hashAlgId(bank);
    if (h === null || !BANKS.includes(bank as HashName)) {
      throw malformed(`unknown bank ${JSON.stringify(bank)}`, ['expected: sha1, sha256, sha384 or sha512']);
    }
    const size = hashInfo(h)?.size ?? 0;
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
      throw malformed(`bank ${bank}: expected an object of index -> hex`);
    }
    const m = new Map<number, Uint8Array>();
    for (const [idx, hex] of Object.entries(entries)) {
      if (!/^(?:[0-9]|[12][0-9]|3[01])$/.test(idx)) {
        throw malformed(`bank ${bank}: bad PCR index ${JSON.stringify(idx)}`, ['expected: 0..31']);
      }
      if (typeof hex !== 'string') throw malformed(`${bank}:${idx} is not a hex string`);
      try {
        m.set(Number(idx), fromHex(hex, `${bank}:${idx}`, size));
      } catch (e) {
        const fe = e as FerryError;
        throw new FerryError('ATTESTATION_MALFORMED', `PCR values: ${fe.message}`, {
          hints: fe.hints,
          cause: e,
        });
      }
    }
    out.set(bank as HashName, m);
  }
  return out;
}

const SEL_ENTRY = 8;
const SEL_STRUCT = 4 + 16 * SEL_ENTRY;
const DIGEST_ENTRY = 66;
const DIGEST_LIST = 4 + 8 * DIGEST_ENTRY;

/** Parses tpm2-tools' serialized PCR file (see the module comment for the layout). */
export function pcrValuesFromSerialized(bytes: Uint8Array): PcrValues {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < SEL_STRUCT + 4) {
    throw malformed('serialized file too short', [
      `expected: >= ${SEL_STRUCT + 4} bytes`,
      `got: ${bytes.length}`,
    ]);
  }
  const count = dv.getUint32(0, true);
  if (count > 16) throw malformed('serialized selection count out of range', [`got: ${count}`]);
  const sel: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const o = 4 + i * SEL_ENTRY;
    const hashAlg = dv.getUint16(o, true);
    const size = bytes[o + 2];
    const h = hashInfo(hashAlg);
    if (!h) throw malformed(`serialized selection ${i}: unsupported bank 0x${hashAlg.toString(16)}`);
    if (size > 4) throw malformed(`serialized selection ${i}: sizeofSelect ${size} > 4`);
    sel.push({ hashAlg, bank: h.name, pcrs: selectBitsToIndices(bytes.subarray(o + 3, o + 3 + size)) });
  }
  const lists = dv.getUint32(SEL_STRUCT, true);
  const expectedLen = SEL_STRUCT + 4 + lists * DIGEST_LIST;
  if (lists > 64 || bytes.length !== expectedLen) {
    throw malformed('serialized file has the wrong length', [
      `expected: ${expectedLen} bytes`,
      `got: ${bytes.length}`,
    ]);
  }
  const digests: Uint8Array[] = [];
  for (let l = 0; l < lists; l++) {
    const lo = SEL_STRUCT + 4 + l * DIGEST_LIST;
    const n = dv.getUint32(lo, true);
    if (n > 8) throw malformed(`serialized digest list ${l}: count ${n} > 8`);
    for (let k = 0; k < n; k++) {
      const o = lo + 4 + k * DIGEST_ENTRY;
      const size = dv.getUint16(o, true);
      if (size > 64) throw malformed(`serialized digest ${digests.length}: size ${size} > 64`);
      digests.push(bytes.slice(o + 2, o + 2 + size));
    }
  }
  const out: PcrValues = new Map();
  let k = 0;
  for (const s of sel) {
    const size = hashInfo(s.hashAlg)?.size ?? 0;
    const m = out.get(s.bank) ?? new Map<number, Uint8Array>();
    for (const idx of s.pcrs) {
      const d = digests[k++];
      if (d === undefined) throw malformed('serialized file has fewer digests than selected PCRs');
      if (d.length !== size) throw malformed(`${s.bank}:${idx} has ${d.length} bytes`, [`expected: ${size}`]);
      m.set(idx, d);
    }
    out.set(s.bank, m);
  }
  if (k !== digests.length) throw malformed('serialized file has more digests than selected PCRs');
  return out;
}

/** Detects JSON (first non-space byte `{`) or the serialized layout, and parses. */
export function parsePcrValues(bytes: Uint8Array): PcrValues {
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  if (bytes[i] === 0x7b) return pcrValuesFromJson(new TextDecoder().decode(bytes));
  return pcrValuesFromSerialized(bytes);
}

/** PCR values as the JSON shape above (lowercase hex), banks and indices in ascending order. */
export function pcrValuesToJson(values: PcrValues): { [bank: string]: { [index: string]: string } } {
  const out: { [bank: string]: { [index: string]: string } } = {};
  for (const bank of BANKS) {
    const m = values.get(bank);
    if (!m) continue;
    out[bank] = {};
    for (const idx of [...m.keys()].sort((a, b) => a - b))
      out[bank][String(idx)] = toHex(m.get(idx) as Uint8Array);
  }
  return out;
}

/**
 * Recomputes a quote's pcrDigest from PCR values: H(values of `selection` in order), H = `hash`
 * (the signature scheme's hash). Throws ATTESTATION_PCR_MISMATCH naming the first selected PCR
 * that `values` lacks.
 */
export function computePcrDigest(
  selection: readonly PcrSelection[],
  values: PcrValues,
  hash: HashName,
): Uint8Array {
  const h = createHash(hash);
  for (const s of selection) {
    for (const idx of s.pcrs) {
      const v = values.get(s.bank)?.get(idx);
      if (!v) {
        throw new FerryError(
          'ATTESTATION_PCR_MISMATCH',
          `PCR ${s.bank}:${idx} is quoted but its value was not supplied`,
          {
            hints: ['supply every PCR the quote selects'],
          },
        );
      }
      h.update(v);
    }
  }
  return new Uint8Array(h.digest());
}

/** The PCR extend operation: H(old || digest). */
export function extendPcr(hash: HashName, old: Uint8Array, digest: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(hash).update(old).update(digest).digest());
}

/** Formats a selection as tpm2-tools' `-l` syntax, e.g. `sha1:0,23+sha256:0,16,23`. */
export function selectionToString(sel: readonly PcrSelection[]): string {
  return sel.map((s) => `${s.bank}:${s.pcrs.join(',')}`).join('+');
}

/** Parses tpm2-tools' `-l` syntax (`sha256:0,1,23+sha1:0`) into a selection; indices sorted. */
export function parseSelection(spec: string): PcrSelection[] {
  if (typeof spec !== 'string' || spec.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'PCR selection: expected a string like "sha256:0,23"');
  }
  return spec.split('+').map((part) => {
    const m = /^(sha1|sha256|sha384|sha512):([0-9]+(?:,[0-9]+)*)$/.exec(part);
    if (!m) {
      throw new FerryError('INVALID_ARGUMENT', `PCR selection: bad part ${JSON.stringify(part)}`, {
        hints: ['expected: bank:i,j,... joined with +, e.g. sha256:0,23+sha1:0'],
      });
    }
    const pcrs = [...new Set(m[2].split(',').map(Number))].sort((a, b) => a - b);
    if (pcrs.some((p) => p > 23))
      throw new FerryError('INVALID_ARGUMENT', `PCR selection: index > 23 in ${part}`);
    const bank = m[1] as HashName;
    return { hashAlg: hashAlgId(bank) as number, bank, pcrs };
  });
}
