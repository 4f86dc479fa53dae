/**
 * The little DER reading the SEV-SNP verifier needs and node:crypto does not offer: the
 * extensions and signature algorithm of an X.509 certificate. Strict: definite lengths,
 * bounds checked; any violation throws ATTESTATION_MALFORMED.
 */
import { FerryError } from '../../kernel/index.ts';

/** One TLV: `off` is where its tag byte is, `start`..`end` its value, `next` the byte after it. */
export type Tlv = { tag: number; off: number; start: number; end: number; next: number };

function bad(what: string): never {
  throw new FerryError('ATTESTATION_MALFORMED', `certificate DER: ${what}`);
}

/** Reads one TLV at `off` (single-byte tags only, which X.509 uses throughout). */
export function readTlv(buf: Uint8Array, off: number, limit = buf.length): Tlv {
  if (off + 2 > limit) bad('truncated header');
  const tag = buf[off];
  if ((tag & 0x1f) === 0x1f) bad('multi-byte tag');
  let len = buf[off + 1];
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) bad('unsupported length form');
    if (p + n > limit) bad('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    p += n;
  }
  if (p + len > limit) bad('value runs past its container');
  return { tag, off, start: p, end: p + len, next: p + len };
}

/** The children of a constructed TLV. */
export function children(buf: Uint8Array, tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = tlv.start;
  while (p < tlv.end) {
    const c = readTlv(buf, p, tlv.end);
    out.push(c);
    p = c.next;
  }
  return out;
}

/** Dotted form of an OBJECT IDENTIFIER's content bytes. */
export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) bad('empty OID');
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < bytes.length; i++) {
    v = v * 128 + (bytes[i] & 0x7f);
    if ((bytes[i] & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    } else if (i === bytes.length - 1) bad('truncated OID');
  }
  return parts.join('.');
}

export type CertificateFields = {
  /** OID of the outer signatureAlgorithm. */
  signatureAlgorithm: string;
  /** For RSASSA-PSS: the OID of the hashAlgorithm parameter ([0]); null otherwise or absent (SHA-1). */
  pssHash: string | null;
  /** Extension OID -> the content of its extnValue OCTET STRING. */
  extensions: Map<string, Uint8Array>;
};

/** Parses the signature algorithm and extensions of a DER certificate. */
export function certificateFields(der: Uint8Array): CertificateFields {
  const cert = readTlv(der, 0);
  if (cert.tag !== 0x30 || cert.end !== der.length) bad('not a single SEQUENCE');
  const [tbs, sigAlg] = children(der, cert);
  if (tbs?.tag !== 0x30 || !sigAlg || sigAlg.tag !== 0x30) bad('bad Certificate');
  const algOid = children(der, sigAlg)[0];
  if (algOid?.tag !== 0x06) bad('bad signatureAlgorithm');
  const extensions = new Map<string, Uint8Array>();
  for (const field of children(der, tbs)) {
    if (field.tag !== 0xa3) continue; // [3] EXPLICIT Extensions
    const seq = readTlv(der, field.start, field.end);
    if (seq.tag !== 0x30) bad('bad Extensions');
    for (const ext of children(der, seq)) {
      const parts = children(der, ext);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (oid?.tag !== 0x06 || !value || value.tag !== 0x04) bad('bad Extension');
      const id = decodeOid(der.subarray(oid.start, oid.end));
      if (extensions.has(id)) bad(`duplicate extension ${id}`);
      extensions.set(id, der.slice(value.start, value.end));
    }
  }
  let pssHash: string | null = null;
  const params = children(der, sigAlg)[1];
  if (params?.tag === 0x30) {
    const hashField = children(der, params).find((t) => t.tag === 0xa0);
    if (hashField) {
      const hashAlg = readTlv(der, hashField.start, hashField.end);
      const hashOid = hashAlg.tag === 0x30 ? children(der, hashAlg)[0] : undefined;
      if (hashOid?.tag === 0x06) pssHash = decodeOid(der.subarray(hashOid.start, hashOid.end));
    }
  }
  return { signatureAlgorithm: decodeOid(der.subarray(algOid.start, algOid.end)), pssHash, extensions };
}

/** A DER INTEGER (non-negative, at most 6 bytes of value) from an extension value. */
export function derSmallUint(bytes: Uint8Array, what: string): number {
  const t = readTlv(bytes, 0);
  if (t.tag !== 0x02 || t.next !== bytes.length || t.end === t.start || t.end - t.start > 7) {
    bad(`${what} is not a small INTEGER`);
  }
  if (bytes[t.start] & 0x80) bad(`${what} is negative`);
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + bytes[i];
  return v;
}

/** A DER IA5String from an extension value. */
export function derIa5(bytes: Uint8Array, what: string): string {
  const t = readTlv(bytes, 0);
  if (t.tag !== 0x16 || t.next !== bytes.length) bad(`${what} is not an IA5String`);
  return new TextDecoder().decode(bytes.subarray(t.start, t.end));
}
