/**
 * The TEE backends an enclave process can use (docs/protocol.md §10.2): the executor names one
 * in a `BackendSpec`; `backendSpecToWire` checks it on the executor's side and gives the map
 * sent in `init`; `openTeeBackend` runs inside the enclave process and builds the backend
 * whose `collect(report_data)` produces the enclave's evidence.
 *
 * - `sim`: a SimBackend with the attester read from `attesterFile` (process.ts builds it).
 * - `tpm2`: Tpm2Backend over `Tpm2Tools({tcti})`; the AK must already be persistent at
 *   `akHandle` (provisioned and activated at node registration: the enclave never creates
 *   one); the EK certificate is read from NV (or `ekCertFile`), and the activation record,
 *   EK intermediates, AK certificate and TCG event log come from files. The quote's nonce is
 *   SHA256(report_data) (§8, tpm2).
 * - `tdx`, `sev-snp`: TsmBackend over configfs-tsm at `tsmRoot` (default
 *   /sys/kernel/config/tsm/report).
 * - `tpm2-device`: Tpm2DeviceBackend, tpm2 evidence from raw TPM commands on a device (the VM
 *   enclave's guest, /dev/tpmrm0; docs/protocol.md §17.5), the public EK certificate, chain and
 *   activation record given as bytes.
 *
 * Only public values cross the pipe: paths, handles, the TCTI string.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TsmFs } from '../attestation/tsm/backend.ts';
import type { TeeBackend } from '../attestation/types.ts';
import {
  type CanonicalValue,
  describe,
  equalBytes,
  FerryError,
  isFerryError,
  toHex,
} from '../kernel/index.ts';

export type SimBackendSpec = { kind: 'sim'; attesterFile: string };

export type Tpm2BackendSpec = {
  kind: 'tpm2';
  /** TPM2TOOLS_TCTI, e.g. `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`. */
  tcti: string;
  /** Persistent AK handle; default 0x81010002. The AK must exist (it is not created here). */
  akHandle?: number;
  /** Persistent EK handle; default 0x81010001. */
  ekHandle?: number;
  /** NV index of the EK certificate; default 0x1c00002. Ignored when `ekCertFile` is given. */
  ekCertIndex?: number;
  /** The AK's signing hash; default sha256. */
  akHash?: 'sha256' | 'sha384';
  /** PCRs to quote (tpm2-tools syntax); default `sha256:0,1,2,3,4,5,6,7,23`. */
  pcrSelection?: string;
  /** The activator's record (`encodeActivationRecord` bytes), included in the evidence. */
  activationRecordFile?: string;
  /** The EK certificate (PEM or DER) instead of reading it from NV. */
  ekCertFile?: string;
  /** Intermediate CA certificates (PEM or DER, one per file) for the EK or AK certificate. */
  ekChainFiles?: string[];
  /** An AK certificate (PEM or DER), as cloud vTPMs issue. */
  akCertFile?: string;
  /**
   * The TCG event log (crypto-agile, e.g. /sys/kernel/security/tpm0/binary_bios_measurements),
   * read at every collect and sent as the evidence's `eventLog`.
   */
  eventLogFile?: string;
};

export type TsmBackendSpec = {
  kind: 'tdx' | 'sev-snp';
  /** configfs-tsm report root; default /sys/kernel/config/tsm/report. */
  tsmRoot?: string;
  /** SEV-SNP only: the VMPL to request (0-3). */
  privlevel?: number;
};

/**
 * tpm2 evidence from a TPM character device with raw TPM commands (no tpm2-tools): the VM
 * enclave backend's guest (docs/protocol.md §17.5). The AK is persistent at `akHandle`; the EK
 * certificate, its intermediates and the activation record are public and given as bytes.
 */
export type Tpm2DeviceBackendSpec = {
  kind: 'tpm2-device';
  /** The TPM device, /dev/tpmrm0. */
  device: string;
  /** PCRs to quote (tpm2-tools syntax), e.g. `sha256:0,1,2,3,4,5,6,7,9`. */
  pcrSelection: string;
  akHandle?: number;
  /** DER. */
  ekCert?: Uint8Array;
  /** DER, one per intermediate. */
  ekChain?: Uint8Array[];
  /** `encodeActivationRecord` bytes. */
  activationRecord?: Uint8Array;
  /** The firmware's TCG event log file, sent as the evidence's `eventLog` (§8 tpm2). */
  eventLogFile?: string;
};

export type BackendSpec = SimBackendSpec | Tpm2BackendSpec | TsmBackendSpec | Tpm2DeviceBackendSpec;

const SHAPES = [
  '{kind: "sim", attesterFile}',
  '{kind: "tpm2", tcti, akHandle?, ekHandle?, ekCertIndex?, akHash?, pcrSelection?, activationRecordFile?, ekCertFile?, ekChainFiles?, akCertFile?, eventLogFile?}',
  '{kind: "tdx" | "sev-snp", tsmRoot?, privlevel?}',
  '{kind: "tpm2-device", device, pcrSelection, akHandle?, ekCert?, ekChain?, activationRecord?, eventLogFile?}',
];

function bad(message: string, got: unknown): FerryError {
  return new FerryError('INVALID_ARGUMENT', `backend: ${message}`, {
    hints: [`expected one of: ${SHAPES.join(' ')}`, `got: ${describe(got)}`],
  });
}

const isHandle = (v: unknown) => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 0xffffffff;

/**
 * Checks a spec and returns the map sent in `init` (only the fields given; unknown fields are
 * refused). Throws INVALID_ARGUMENT naming the bad field.
 */
export function backendSpecToWire(spec: BackendSpec): { [k: string]: CanonicalValue } {
  const s = spec as Record<string, unknown>;
  if (s === null || typeof s !== 'object') throw bad('expected a map', spec);
  const allowed: Record<string, (v: unknown) => boolean> =
    s.kind === 'sim'
      ? { attesterFile: (v) => typeof v === 'string' }
      : s.kind === 'tpm2'
        ? {
            tcti: (v) => typeof v === 'string' && /^(swtpm|mssim|device|tabrmd):/.test(v),
            akHandle: isHandle,
            ekHandle: isHandle,
            ekCertIndex: isHandle,
            akHash: (v) => v === 'sha256' || v === 'sha384',
            pcrSelection: (v) => typeof v === 'string' && v.length > 0,
            activationRecordFile: (v) => typeof v === 'string',
            ekCertFile: (v) => typeof v === 'string',
            ekChainFiles: (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'),
            akCertFile: (v) => typeof v === 'string',
            eventLogFile: (v) => typeof v === 'string' && v.length > 0,
          }
        : s.kind === 'tpm2-device'
          ? {
              device: (v) => typeof v === 'string' && v.startsWith('/dev/'),
              pcrSelection: (v) => typeof v === 'string' && v.length > 0,
              akHandle: isHandle,
              ekCert: (v) => v instanceof Uint8Array,
              ekChain: (v) => Array.isArray(v) && v.every((x) => x instanceof Uint8Array),
              activationRecord: (v) => v instanceof Uint8Array,
              eventLogFile: (v) => typeof v === 'string' && v.length > 0,
            }
          : s.kind === 'tdx' || s.kind === 'sev-snp'
            ? {
                tsmRoot: (v) => typeof v === 'string' && v.length > 0,
                privlevel: (v) =>
                  s.kind === 'sev-snp' && Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 3,
              }
            : {};
  if (Object.keys(allowed).length === 0) throw bad(`unknown kind ${JSON.stringify(s.kind)}`, s.kind);
  const required =
    s.kind === 'sim'
      ? ['attesterFile']
      : s.kind === 'tpm2'
        ? ['tcti']
        : s.kind === 'tpm2-device'
          ? ['device', 'pcrSelection']
          : [];
  const out: { [k: string]: CanonicalValue } = { kind: s.kind as string };
  for (const r of required) if (s[r] === undefined) throw bad(`${s.kind}: ${r} is required`, s[r]);
  for (const [k, v] of Object.entries(s)) {
    if (k === 'kind' || v === undefined) continue;
    const ok = allowed[k];
    if (!ok) throw bad(`${s.kind}: unknown field ${k}`, v);
    if (!ok(v)) throw bad(`${s.kind}: bad ${k}`, v);
    out[k] = Array.isArray(v) ? [...(v as CanonicalValue[])] : (v as CanonicalValue);
  }
  return out;
}

function unavailable(message: string, cause?: unknown, hints: string[] = []): FerryError {
  return new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', message, { cause, hints });
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw unavailable(`cannot read the ${what} file`, e, [(e as NodeJS.ErrnoException).code ?? String(e)]);
  }
}

async function readCertificate(path: string, what: string): Promise<Uint8Array> {
  const bytes = await readInput(path, what);
  try {
    return new Uint8Array(new X509Certificate(Buffer.from(bytes)).raw);
  } catch (e) {
    throw unavailable(`the ${what} file is not a PEM or DER certificate`, e);
  }
}

const opt = <T>(v: CanonicalValue | undefined): T | undefined => (v === undefined ? undefined : (v as T));

async function openTpm2(s: { [k: string]: CanonicalValue }): Promise<TeeBackend> {
  const [{ Tpm2Backend }, { Tpm2Tools }, { decodeActivationRecord }] = await Promise.all([
    import('../attestation/tpm2/backend.ts'),
    import('../attestation/tpm2/tools.ts'),
    import('../attestation/tpm2/activation.ts'),
  ]);
  const tools = new Tpm2Tools({ tcti: s.tcti as string });
  const akHandle = opt<number>(s.akHandle) ?? 0x81010002;
  // The enclave quotes with the registered AK; it never provisions one.
  try {
    await tools.run('tpm2_readpublic', ['-c', `0x${akHandle.toString(16)}`]);
  } catch (e) {
    if (!isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED')) throw e;
    throw unavailable(`no attestation key at 0x${akHandle.toString(16)}`, e, [
      'the AK is created and activated at node registration; check akHandle',
    ]);
  }
  const be = await Tpm2Backend.open({
    tools,
    akHandle,
    ekHandle: opt<number>(s.ekHandle),
    ekCertIndex: opt<number>(s.ekCertIndex),
    akHash: opt<'sha256' | 'sha384'>(s.akHash),
    pcrSelection: opt<string>(s.pcrSelection),
    eventLogFile: opt<string>(s.eventLogFile),
  });
  const akCertFile = opt<string>(s.akCertFile);
  if (akCertFile !== undefined) be.setAkCertificate(await readCertificate(akCertFile, 'AK certificate'));
  const chain: Uint8Array[] = [];
  for (const f of opt<string[]>(s.ekChainFiles) ?? []) chain.push(await readCertificate(f, 'EK chain'));
  be.setEkChain(chain);
  const ekCertFile = opt<string>(s.ekCertFile);
  if (ekCertFile !== undefined) {
    // Tpm2Backend only takes the EK certificate from NV; a file replaces it in the evidence.
    const ekCert = await readCertificate(ekCertFile, 'EK certificate');
    const collect = be.collect.bind(be);
    const withFileCert: TeeBackend = {
      kind: 'tpm2',
      collect: async (reportData, signal) => {
        const ev = await collect(reportData, signal);
        return { ...ev, body: { ...ev.body, ekCert } };
      },
    };
    await setActivation(be, s, decodeActivationRecord);
    return withFileCert;
  }
  try {
    await be.readEkCertificate();
  } catch (e) {
    // A TPM without an EK certificate in NV can still be proven by an AK certificate.
    if (akCertFile === undefined) {
      throw unavailable('cannot read the EK certificate from NV', e, [
        'give ekCertFile, or akCertFile for a vTPM with an AK certificate',
      ]);
    }
  }
  await setActivation(be, s, decodeActivationRecord);
  return be;
}

async function setActivation(
  be: import('../attestation/tpm2/backend.ts').Tpm2Backend,
  s: { [k: string]: CanonicalValue },
  decode: (b: Uint8Array) => import('../attestation/tpm2/activation.ts').ActivationRecord,
): Promise<void> {
  const file = opt<string>(s.activationRecordFile);
  if (file === undefined) return;
  let record: import('../attestation/tpm2/activation.ts').ActivationRecord;
  try {
    record = decode(await readInput(file, 'activation record'));
  } catch (e) {
    throw isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE')
      ? e
      : unavailable('the activation record file is malformed', e);
  }
  if (!equalBytes(record.akName, be.akName)) {
    throw unavailable('the activation record is for another AK', undefined, [
      `record: ${toHex(record.akName)}`,
      `AK at 0x${be.akHandle.toString(16)}: ${toHex(be.akName)}`,
    ]);
  }
  be.setActivationRecord(record);
}

async function openTpm2Device(s: { [k: string]: CanonicalValue }): Promise<TeeBackend> {
  const [{ Tpm2DeviceBackend, deviceTransport }, { decodeActivationRecord }] = await Promise.all([
    import('../attestation/tpm2/device.ts'),
    import('../attestation/tpm2/activation.ts'),
  ]);
  const akHandle = opt<number>(s.akHandle) ?? 0x81010002;
  const bytes = opt<Uint8Array>(s.activationRecord);
  let activation: import('../attestation/tpm2/activation.ts').ActivationRecord | null = null;
  if (bytes !== undefined) {
    try {
      activation = decodeActivationRecord(bytes);
    } catch (e) {
      throw unavailable('the activation record is malformed', e);
    }
  }
  let be: import('../attestation/tpm2/device.ts').Tpm2DeviceBackend;
  try {
    be = await Tpm2DeviceBackend.open({
      transport: deviceTransport(s.device as string),
      akHandle,
      pcrSelection: s.pcrSelection as string,
      ekCert: opt<Uint8Array>(s.ekCert) ?? null,
      ekChain: opt<Uint8Array[]>(s.ekChain),
      activation,
      eventLogFile: opt<string>(s.eventLogFile),
    });
  } catch (e) {
    if (!isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED')) throw e;
    throw unavailable(`no attestation key at 0x${akHandle.toString(16)}`, e, [
      'the AK is provisioned and activated before the VM boots',
    ]);
  }
  if (activation && !equalBytes(activation.akName, be.akName)) {
    throw unavailable('the activation record is for another AK', undefined, [
      `record: ${toHex(activation.akName)}`,
      `AK at 0x${akHandle.toString(16)}: ${toHex(be.akName)}`,
    ]);
  }
  return be;
}

/**
 * Builds the tpm2, tdx or sev-snp backend for an `init` backend map (the enclave process side).
 * Throws ATTESTATION_BACKEND_UNAVAILABLE when the TPM, its AK, a file or configfs-tsm is missing.
 * `deps.tsmFs` replaces the filesystem calls of TsmBackend (tests; the process never sets it).
 */
export async function openTeeBackend(
  s: { [k: string]: CanonicalValue },
  deps: { tsmFs?: TsmFs } = {},
): Promise<TeeBackend> {
  if (s?.kind === 'tpm2' && typeof s.tcti === 'string') return openTpm2(s);
  if (s?.kind === 'tpm2-device' && typeof s.device === 'string') return openTpm2Device(s);
  if (s?.kind === 'tdx' || s?.kind === 'sev-snp') {
    const { TsmBackend } = await import('../attestation/tsm/backend.ts');
    return new TsmBackend({
      kind: s.kind,
      root: opt<string>(s.tsmRoot),
      privlevel: opt<number>(s.privlevel),
      fs: deps.tsmFs,
    });
  }
  throw unavailable('unknown TEE backend for this enclave', undefined, [
    `this runtime provides: ${SHAPES.join(' ')}`,
    `got kind: ${String(s?.kind)}`,
  ]);
}
