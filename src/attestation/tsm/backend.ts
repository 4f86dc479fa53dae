/**
 * Evidence collection inside a confidential VM through Linux configfs-tsm
 * (Documentation/ABI/testing/configfs-tsm; Linux 6.7 and later): create a report directory
 * under `/sys/kernel/config/tsm/report`, write the 64-byte report_data to `inblob`, read
 * `outblob` (a TDX quote or an SEV-SNP report) and, for SEV-SNP, `auxblob` (the certificate
 * table with the VCEK, ASK and ARK), and check that `generation` advanced by exactly the
 * number of writes made, retrying when another writer interfered. docs/protocol.md §8.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { equalBytes, FerryError } from '../../kernel/index.ts';
import type { Evidence, TeeBackend } from '../types.ts';

export const DEFAULT_TSM_ROOT = '/sys/kernel/config/tsm/report';

/** The filesystem calls the backend makes; node:fs/promises by default (tests emulate the kernel). */
export type TsmFs = {
  stat(path: string): Promise<unknown>;
  mkdir(path: string): Promise<unknown>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
};

const NODE_FS: TsmFs = {
  stat: (p) => nodeFs.stat(p),
  mkdir: (p) => nodeFs.mkdir(p),
  rmdir: (p) => nodeFs.rmdir(p),
  readFile: async (p) => new Uint8Array(await nodeFs.readFile(p)),
  writeFile: (p, d) => nodeFs.writeFile(p, d),
};

export type TsmKind = 'tdx' | 'sev-snp';

/** The `provider` each kind expects. */
export const TSM_PROVIDERS: Record<TsmKind, string> = { tdx: 'tdx_guest', 'sev-snp': 'sev_guest' };

export type TsmBackendOptions = {
  kind: TsmKind;
  /** The report root; default /sys/kernel/config/tsm/report. */
  root?: string;
  /** Attempts when `generation` shows interference; default 3. */
  maxAttempts?: number;
  /** SEV-SNP only: the VMPL to request (`privlevel`, 0-3); absent = the kernel's default. */
  privlevel?: number;
  fs?: TsmFs;
};

/** SEV-SNP certificate-table GUIDs (GHCB specification, "SNP Extended Guest Request"). */
export const SNP_CERT_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

function guidString(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Parses an SEV-SNP certificate table: 24-byte entries {guid(16, RFC 4122 byte order),
 * offset u32 LE, length u32 LE} from the start of the blob, ended by an all-zero entry;
 * offsets are from the start of the blob. Returns GUID string -> DER bytes. Throws
 * ATTESTATION_MALFORMED for entries that run past the blob.
 */
export function parseSnpCertTable(blob: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let o = 0; ; o += 24) {
    if (o + 24 > blob.length)
      throw new FerryError('ATTESTATION_MALFORMED', 'SEV-SNP certificate table has no terminator');
    const guid = blob.subarray(o, o + 16);
    const off = dv.getUint32(o + 16, true);
    const len = dv.getUint32(o + 20, true);
    if (guid.every((x) => x === 0) && off === 0 && len === 0) return out;
    if (off + len > blob.length) {
      throw new FerryError('ATTESTATION_MALFORMED', 'SEV-SNP certificate table entry runs past the blob', {
        hints: [`entry ${o / 24}: offset ${off}, length ${len}, blob ${blob.length} bytes`],
      });
    }
    out.set(guidString(guid), blob.slice(off, off + len));
  }
}

/** Builds a certificate table (the inverse of parseSnpCertTable; used by tests and tools). */
export function buildSnpCertTable(entries: readonly { guid: string; der: Uint8Array }[]): Uint8Array {
  const header = (entries.length + 1) * 24;
  const total = header + entries.reduce((n, e) => n + e.der.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let off = header;
  entries.forEach((e, i) => {
    out.set(Buffer.from(e.guid.replace(/-/g, ''), 'hex'), i * 24);
    dv.setUint32(i * 24 + 16, off, true);
    dv.setUint32(i * 24 + 20, e.der.length, true);
    out.set(e.der, off);
    off += e.der.length;
  });
  return out;
}

function derToPem(der: Uint8Array): string {
  // Round-trip through X509Certificate so only real certificates reach the evidence.
  return new X509Certificate(Buffer.from(der)).toString();
}

function unavailable(message: string, cause?: unknown, hints: string[] = []): FerryError {
  return new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', message, { cause, hints });
}

/**
 * The report_data inside an outblob: TDX quote v4 at bytes 568..632 (48-byte header, then
 * the TD report with report_data at 520), v5 six bytes later (body type and size); SEV-SNP
 * report at 0x50..0x90. Null when the blob is too short or of another version.
 */
export function reportDataOf(kind: TsmKind, outblob: Uint8Array): Uint8Array | null {
  if (kind === 'sev-snp') return outblob.length >= 0x90 ? outblob.slice(0x50, 0x90) : null;
  const version = outblob.length >= 2 ? outblob[0] | (outblob[1] << 8) : 0;
  const off = version === 4 ? 568 : version === 5 ? 574 : -1;
  return off > 0 && outblob.length >= off + 64 ? outblob.slice(off, off + 64) : null;
}

function parseGeneration(bytes: Uint8Array): number {
  const s = new TextDecoder().decode(bytes).trim();
  if (!/^[0-9]{1,15}$/.test(s))
    throw unavailable('configfs-tsm generation is not a number', undefined, [`got: ${s.slice(0, 20)}`]);
  return Number(s);
}

/**
 * A TeeBackend for `tdx` and `sev-snp` over configfs-tsm. `collect` throws
 * ATTESTATION_BACKEND_UNAVAILABLE when the tree is missing, the provider is not the kind's,
 * or every attempt saw interference; INVALID_ARGUMENT for report_data not of 64 bytes;
 * ABORTED when `signal` fires.
 */
export class TsmBackend implements TeeBackend {
  readonly kind: TsmKind;
  readonly #root: string;
  readonly #maxAttempts: number;
  readonly #privlevel: number | undefined;
  readonly #fs: TsmFs;

  constructor(opts: TsmBackendOptions) {
    if (opts?.kind !== 'tdx' && opts?.kind !== 'sev-snp') {
      throw new FerryError('INVALID_ARGUMENT', 'kind: expected "tdx" or "sev-snp"', {
        hints: [`got: ${String(opts?.kind)}`],
      });
    }
    const max = opts.maxAttempts ?? 3;
    if (!Number.isInteger(max) || max < 1 || max > 100) {
      throw new FerryError('INVALID_ARGUMENT', 'maxAttempts: expected an integer 1-100', {
        hints: [`got: ${max}`],
      });
    }
    if (
      opts.privlevel !== undefined &&
      (opts.kind !== 'sev-snp' ||
        !Number.isInteger(opts.privlevel) ||
        opts.privlevel < 0 ||
        opts.privlevel > 3)
    ) {
      throw new FerryError('INVALID_ARGUMENT', 'privlevel: expected an integer 0-3, for sev-snp only');
    }
    this.kind = opts.kind;
    this.#root = opts.root ?? DEFAULT_TSM_ROOT;
    this.#maxAttempts = max;
    this.#privlevel = opts.privlevel;
    this.#fs = opts.fs ?? NODE_FS;
  }

  async collect(reportData: Uint8Array, signal?: AbortSignal): Promise<Evidence> {
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
      throw new FerryError('INVALID_ARGUMENT', 'reportData: expected 64 bytes', {
        hints: [
          `got: ${reportData instanceof Uint8Array ? `${reportData.length} bytes` : typeof reportData}`,
        ],
      });
    }
    const fs = this.#fs;
    try {
      await fs.stat(this.#root);
    } catch (e) {
      throw unavailable(`configfs-tsm is not available at ${this.#root}`, e, [
        'needs Linux 6.7+ inside a TDX or SEV-SNP guest, with configfs mounted at /sys/kernel/config',
        (e as NodeJS.ErrnoException).code ?? String(e),
      ]);
    }
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      signal?.throwIfAborted();
      const dir = join(this.#root, `ferry-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        await fs.mkdir(dir);
      } catch (e) {
        throw unavailable(`cannot create a configfs-tsm report under ${this.#root}`, e, [
          (e as NodeJS.ErrnoException).code ?? String(e),
        ]);
      }
      try {
        const got = await this.#once(dir, reportData, signal);
        if (got) return got;
      } finally {
        await fs.rmdir(dir).catch(() => {});
      }
    }
    throw unavailable(
      `configfs-tsm generation changed under us in ${this.#maxAttempts} attempts`,
      undefined,
      ['another process is writing to the same report; retry later'],
    );
  }

  /** One attempt; null when `generation` shows another writer interfered. */
  async #once(dir: string, reportData: Uint8Array, signal?: AbortSignal): Promise<Evidence | null> {
    const fs = this.#fs;
    const read = async (name: string) => {
      signal?.throwIfAborted();
      try {
        return await fs.readFile(join(dir, name));
      } catch (e) {
        throw unavailable(`cannot read configfs-tsm ${name}`, e, [
          (e as NodeJS.ErrnoException).code ?? String(e),
        ]);
      }
    };
    const write = async (name: string, data: Uint8Array) => {
      signal?.throwIfAborted();
      try {
        await fs.writeFile(join(dir, name), data);
      } catch (e) {
        throw unavailable(`cannot write configfs-tsm ${name}`, e, [
          (e as NodeJS.ErrnoException).code ?? String(e),
        ]);
      }
    };
    const provider = new TextDecoder().decode(await read('provider')).trim();
    if (provider !== TSM_PROVIDERS[this.kind]) {
      throw unavailable(
        `configfs-tsm provider is ${provider || '(empty)'}, not ${TSM_PROVIDERS[this.kind]}`,
        undefined,
        [`this guest cannot produce ${this.kind} evidence`],
      );
    }
    const before = parseGeneration(await read('generation'));
    let writes = 0;
    if (this.#privlevel !== undefined) {
      await write('privlevel', new TextEncoder().encode(`${this.#privlevel}\n`));
      writes++;
    }
    await write('inblob', reportData);
    writes++;
    const outblob = await read('outblob');
    let auxblob: Uint8Array | undefined;
    if (this.kind === 'sev-snp') {
      try {
        auxblob = await fs.readFile(join(dir, 'auxblob'));
      } catch {
        auxblob = undefined; // no certificates from the host: the verifier must fetch the VCEK
      }
    }
    const after = parseGeneration(await read('generation'));
    if (after !== before + writes) return null;
    if (outblob.length === 0) throw unavailable('configfs-tsm returned an empty outblob');
    const echoed = reportDataOf(this.kind, outblob);
    if (echoed === null || !equalBytes(echoed, reportData)) {
      throw new FerryError(
        'ATTESTATION_REPORT_DATA_MISMATCH',
        `the ${this.kind} outblob does not carry the report_data written`,
      );
    }
    if (this.kind === 'tdx') {
      return { kind: 'tdx', reportData: Uint8Array.from(reportData), body: { quote: outblob } };
    }
    const body: { report: Uint8Array; vcek?: Uint8Array; chain?: Uint8Array } = { report: outblob };
    if (auxblob && auxblob.length > 0) {
      const certs = parseSnpCertTable(auxblob);
      const leaf = certs.get(SNP_CERT_GUIDS.vcek) ?? certs.get(SNP_CERT_GUIDS.vlek);
      if (leaf) body.vcek = leaf;
      const ask = certs.get(SNP_CERT_GUIDS.ask);
      const ark = certs.get(SNP_CERT_GUIDS.ark);
      if (ask && ark) {
        try {
          body.chain = new TextEncoder().encode(derToPem(ask) + derToPem(ark));
        } catch (e) {
          throw new FerryError('ATTESTATION_MALFORMED', 'auxblob ASK or ARK is not a certificate', {
            cause: e,
          });
        }
      }
    }
    return { kind: 'sev-snp', reportData: Uint8Array.from(reportData), body };
  }
}
