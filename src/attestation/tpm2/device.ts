/**
 * tpm2 evidence straight from a TPM character device, without tpm2-tools: the few TPM 2.0
 * commands a quote needs (TPM2_ReadPublic, TPM2_PCR_Read, TPM2_Quote with the empty-password
 * session), marshalled here. This is what the VM enclave backend uses inside the node image
 * (docs/protocol.md §17.5): the guest has /dev/tpmrm0 and Node.js, and no tpm2-tools (they and
 * their libraries would add 8 MB to the initrd, a dozen pinned packages and an exec from the
 * enclave). The AK must already be persistent (provisioned and activated on the host before
 * the VM boots); the EK certificate, its chain and the activation record are public and given.
 *
 * A transport sends one command and returns one response: `deviceTransport` (a character
 * device: one write, one read) or `tcpTransport` (swtpm's raw command socket, for tests).
 */
import { connect } from 'node:net';
import { open } from 'node:fs/promises';
import { FerryError } from '../../kernel/index.ts';
import type { Evidence, TeeBackend } from '../types.ts';
import { type ActivationRecord, activationToCanonical } from './activation.ts';
import { pcrValuesToCanonical, readEventLogFile, tpm2Nonce } from './backend.ts';
import { type PcrValues, parseSelection } from './pcrs.ts';
import { hashAlgId, hashInfo, type PcrSelection, parseTpm2bPublic, type TpmPublic } from './structures.ts';

export type TpmTransport = (command: Uint8Array) => Promise<Uint8Array>;

const TPM_ST_NO_SESSIONS = 0x8001;
const TPM_ST_SESSIONS = 0x8002;
const TPM_RS_PW = 0x40000009;
const TPM_ALG_NULL = 0x0010;
const CC = { ReadPublic: 0x173, PCR_Read: 0x17e, Quote: 0x158 };
/** The largest TPM response (TPM2 PC Client: 4096). */
const MAX_RESPONSE = 4096;

function failed(message: string, hints: string[] = [], cause?: unknown): FerryError {
  return new FerryError('ATTESTATION_TPM2_COMMAND_FAILED', message, { hints, cause });
}

class Writer {
  readonly parts: number[] = [];
  u8(v: number) {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number) {
    this.parts.push((v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  u32(v: number) {
    this.parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  bytes(b: Uint8Array) {
    for (const x of b) this.parts.push(x);
    return this;
  }
  tpm2b(b: Uint8Array) {
    return this.u16(b.length).bytes(b);
  }
}

/** TPML_PCR_SELECTION of a parsed selection (3 select bytes: PCRs 0-23). */
function writeSelection(w: Writer, sel: readonly PcrSelection[]): void {
  w.u32(sel.length);
  for (const s of sel) {
    const bits = new Uint8Array(3);
    for (const p of s.pcrs) bits[p >> 3] |= 1 << (p & 7);
    w.u16(s.hashAlg).u8(3).bytes(bits);
  }
}

function command(tag: number, cc: number, body: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  body(w);
  const out = new Uint8Array(10 + w.parts.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, tag);
  dv.setUint32(2, out.length);
  dv.setUint32(6, cc);
  out.set(w.parts, 10);
  return out;
}

/** The password authorisation area with an empty password. */
function passwordSession(w: Writer): void {
  w.u32(9).u32(TPM_RS_PW).u16(0).u8(0).u16(0);
}

/** Sends a command; returns the response parameters after the 10-byte header (rc checked). */
async function send(t: TpmTransport, cmd: Uint8Array, what: string): Promise<Uint8Array> {
  let res: Uint8Array;
  try {
    res = await t(cmd);
  } catch (e) {
    if (e instanceof FerryError) throw e;
    throw failed(`${what}: the TPM did not answer`, [String((e as Error).message ?? e)], e);
  }
  if (res.length < 10) throw failed(`${what}: short TPM response`, [`got: ${res.length} bytes`]);
  const dv = new DataView(res.buffer, res.byteOffset, res.byteLength);
  const size = dv.getUint32(2);
  const rc = dv.getUint32(6);
  if (rc !== 0) throw failed(`${what} failed`, [`TPM response code 0x${rc.toString(16).padStart(8, '0')}`]);
  if (size !== res.length)
    throw failed(`${what}: response size mismatch`, [`header ${size}, got ${res.length}`]);
  return res.subarray(10);
}

class Reader {
  #o = 0;
  readonly #b: Uint8Array;
  readonly #dv: DataView;
  constructor(b: Uint8Array) {
    this.#b = b;
    this.#dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  #need(n: number) {
    if (this.#o + n > this.#b.length) throw failed('truncated TPM response');
  }
  u8() {
    this.#need(1);
    return this.#b[this.#o++];
  }
  u16() {
    this.#need(2);
    const v = this.#dv.getUint16(this.#o);
    this.#o += 2;
    return v;
  }
  u32() {
    this.#need(4);
    const v = this.#dv.getUint32(this.#o);
    this.#o += 4;
    return v;
  }
  bytes(n: number) {
    this.#need(n);
    const v = this.#b.slice(this.#o, this.#o + n);
    this.#o += n;
    return v;
  }
  tpm2b() {
    return this.bytes(this.u16());
  }
  /** The TPM2B with its size prefix. */
  tpm2bWhole() {
    const start = this.#o;
    const n = this.u16();
    this.bytes(n);
    return this.#b.slice(start, this.#o);
  }
  get offset() {
    return this.#o;
  }
}

/** TPM2_ReadPublic: the object's TPM2B_PUBLIC bytes. */
export async function readPublic(t: TpmTransport, handle: number): Promise<Uint8Array> {
  const body = await send(
    t,
    command(TPM_ST_NO_SESSIONS, CC.ReadPublic, (w) => w.u32(handle)),
    'TPM2_ReadPublic',
  );
  return new Reader(body).tpm2bWhole();
}

/** TPM2_PCR_Read of a selection (repeated until every PCR asked for has been returned). */
export async function readPcrs(t: TpmTransport, selection: readonly PcrSelection[]): Promise<PcrValues> {
  const out: PcrValues = new Map();
  let left = selection.map((s) => ({ ...s, pcrs: [...s.pcrs] })).filter((s) => s.pcrs.length > 0);
  for (let round = 0; left.length > 0; round++) {
    if (round > 24) throw failed('TPM2_PCR_Read returned no progress');
    const body = await send(
      t,
      command(TPM_ST_NO_SESSIONS, CC.PCR_Read, (w) => writeSelection(w, left)),
      'TPM2_PCR_Read',
    );
    const r = new Reader(body);
    r.u32(); // pcrUpdateCounter
    const got: { bank: string; pcrs: number[] }[] = [];
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const alg = r.u16();
      const size = r.u8();
      const bits = r.bytes(size);
      const h = hashInfo(alg);
      if (!h) throw failed(`TPM2_PCR_Read: unknown bank 0x${alg.toString(16)}`);
      const pcrs: number[] = [];
      for (let b = 0; b < bits.length * 8; b++) if (bits[b >> 3] & (1 << (b & 7))) pcrs.push(b);
      got.push({ bank: h.name, pcrs });
    }
    const digests = r.u32();
    let k = 0;
    for (const g of got) {
      const bank = out.get(g.bank as PcrSelection['bank']) ?? new Map<number, Uint8Array>();
      out.set(g.bank as PcrSelection['bank'], bank);
      for (const p of g.pcrs) {
        if (k++ >= digests) throw failed('TPM2_PCR_Read: fewer digests than selected PCRs');
        bank.set(p, r.tpm2b());
      }
    }
    if (k === 0) throw failed('TPM2_PCR_Read returned no PCR');
    left = left
      .map((s) => ({ ...s, pcrs: s.pcrs.filter((p) => !out.get(s.bank)?.has(p)) }))
      .filter((s) => s.pcrs.length > 0);
  }
  return out;
}

/** TPM2_Quote with the AK's own scheme: the TPMS_ATTEST bytes and the TPMT_SIGNATURE bytes. */
export async function quote(
  t: TpmTransport,
  akHandle: number,
  nonce: Uint8Array,
  selection: readonly PcrSelection[],
): Promise<{ attest: Uint8Array; signature: Uint8Array }> {
  const body = await send(
    t,
    command(TPM_ST_SESSIONS, CC.Quote, (w) => {
      w.u32(akHandle);
      passwordSession(w);
      w.tpm2b(nonce).u16(TPM_ALG_NULL);
      writeSelection(w, selection);
    }),
    'TPM2_Quote',
  );
  const r = new Reader(body);
  const paramSize = r.u32();
  const start = r.offset;
  const attest = r.tpm2b();
  const signature = body.slice(r.offset, start + paramSize);
  if (start + paramSize > body.length || signature.length < 4) throw failed('TPM2_Quote: malformed response');
  return { attest, signature };
}

/** A transport over a TPM character device (/dev/tpmrm0): one write, one read per command. */
export function deviceTransport(path: string): TpmTransport {
  return async (cmd) => {
    const fh = await open(path, 'r+').catch((e) => {
      throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', `cannot open the TPM device ${path}`, {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
      });
    });
    try {
      await fh.write(cmd, 0, cmd.length);
      const buf = new Uint8Array(MAX_RESPONSE);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      return buf.slice(0, bytesRead);
    } finally {
      await fh.close();
    }
  };
}

/** A transport over swtpm's raw TPM command socket (`swtpm socket --server type=tcp`). */
export function tcpTransport(host: string, port: number): TpmTransport {
  return (cmd) =>
    new Promise((resolve, reject) => {
      const s = connect({ host, port });
      let buf = Buffer.alloc(0);
      s.on('connect', () => s.write(cmd));
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 6 && buf.length >= buf.readUInt32BE(2)) {
          s.destroy();
          resolve(new Uint8Array(buf.subarray(0, buf.readUInt32BE(2))));
        }
      });
      s.on('error', reject);
      s.on('close', () => reject(failed('the TPM closed the connection')));
    });
}

export type Tpm2DeviceBackendOptions = {
  transport: TpmTransport;
  /** Persistent AK handle; default 0x81010002. */
  akHandle?: number;
  /** PCRs to quote (tpm2-tools syntax), e.g. `sha256:0,1,2,3,4,5,6,7,9`. */
  pcrSelection: string;
  /** The EK certificate (DER), its intermediates (DER), the activator's record: all public. */
  ekCert: Uint8Array | null;
  ekChain?: readonly Uint8Array[];
  activation?: ActivationRecord | null;
  /**
   * The firmware's TCG event log (in a Linux guest /sys/kernel/security/tpm0/binary_bios_measurements),
   * read after the quote at every collect and sent as the evidence's `eventLog` (§8 tpm2).
   */
  eventLogFile?: string;
};

/** tpm2 evidence (the same body as Tpm2Backend, docs/protocol.md §8) from raw TPM commands. */
export class Tpm2DeviceBackend implements TeeBackend {
  readonly kind = 'tpm2' as const;
  readonly akHandle: number;
  readonly akPublicBytes: Uint8Array;
  readonly akPublic: TpmPublic;
  readonly #t: TpmTransport;
  readonly #selection: PcrSelection[];
  readonly #ekCert: Uint8Array | null;
  readonly #ekChain: Uint8Array[];
  readonly #activation: ActivationRecord | null;
  readonly #eventLogFile: string | null;

  private constructor(opts: Tpm2DeviceBackendOptions, ak: Uint8Array) {
    this.#t = opts.transport;
    this.akHandle = opts.akHandle ?? 0x81010002;
    this.#selection = parseSelection(opts.pcrSelection);
    this.akPublicBytes = ak;
    this.akPublic = parseTpm2bPublic(ak);
    this.#ekCert = opts.ekCert;
    this.#ekChain = (opts.ekChain ?? []).map((c) => c.slice());
    this.#activation = opts.activation ?? null;
    this.#eventLogFile = opts.eventLogFile ?? null;
  }

  /** Reads the AK's public area (it must exist: the enclave never creates one). */
  static async open(opts: Tpm2DeviceBackendOptions): Promise<Tpm2DeviceBackend> {
    const sel = parseSelection(opts.pcrSelection);
    for (const s of sel) if (hashAlgId(s.bank) === null) throw failed(`unknown bank ${s.bank}`);
    const ak = await readPublic(opts.transport, opts.akHandle ?? 0x81010002);
    return new Tpm2DeviceBackend(opts, ak);
  }

  get akName(): Uint8Array {
    return this.akPublic.name;
  }

  async collect(reportData: Uint8Array): Promise<Evidence> {
    const nonce = tpm2Nonce(reportData);
    const q = await quote(this.#t, this.akHandle, nonce, this.#selection);
    // The boot PCRs do not change after boot; the quote's pcrDigest covers these values.
    const pcrs = await readPcrs(this.#t, this.#selection);
    // Read after the quote: the log then holds at least every event the quoted PCRs reflect.
    const eventLog = this.#eventLogFile === null ? null : await readEventLogFile(this.#eventLogFile);
    return {
      kind: 'tpm2',
      reportData: reportData.slice(),
      body: {
        quote: q.attest,
        signature: q.signature,
        akPublic: this.akPublicBytes,
        pcrs: pcrValuesToCanonical(pcrs),
        ekCert: this.#ekCert,
        certChain: this.#ekChain,
        akCert: null,
        activation: this.#activation ? activationToCanonical(this.#activation) : null,
        ...(eventLog === null ? {} : { eventLog }),
      },
    };
  }
}
