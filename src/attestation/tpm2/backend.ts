/**
 * `Tpm2Backend`: tpm2 evidence from a TPM 2.0 through tpm2-tools (swtpm in development and CI,
 * /dev/tpmrm0 in production; see tools.ts).
 *
 * Lifecycle (docs/protocol.md §8, tpm2):
 * 1. `Tpm2Backend.open` makes sure the EK is persistent at `ekHandle` (creating it from the
 *    default RSA template when absent) and the AK at `akHandle` (a restricted signing key
 *    created under the EK with `tpm2_createak`, made persistent so swtpm's missing resource
 *    manager never runs out of object slots).
 * 2. At node registration the activator sends a MakeCredential blob (activation.ts);
 *    `activateCredential` releases its secret with TPM2_ActivateCredential; the activator's
 *    signed record is handed back with `setActivationRecord`.
 * 3. At node start `measureRuntime` resets PCR 23 and extends it (sha256 bank) with the
 *    runtime measurement of the executor's files and configuration.
 * 4. `collect(reportData)` quotes the configured PCRs with extraData = SHA256(report_data),
 *    and, when `eventLogFile` is set, reads the TCG event log after the quote (so the log
 *    holds at least every event the quoted PCRs reflect) and sends it as `eventLog`.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CanonicalValue, encodeTagged, FerryError, isFerryError, toHex } from '../../kernel/index.ts';
import type { Evidence, TeeBackend } from '../types.ts';
import {
  type ActivationRecord,
  activationToCanonical,
  credentialFile,
  type MadeCredential,
} from './activation.ts';
import { type PcrValues, parseSelection, pcrValuesFromSerialized, selectionToString } from './pcrs.ts';
import { parseTpm2bPublic, TPM_ALG, TPMA_OBJECT, type TpmPublic } from './structures.ts';
import { readEventLog } from './eventlog.ts';
import type { Tpm2Tools } from './tools.ts';

/** The resettable PCR Ferry measures the executor runtime into (PC Client: PCR 23, application support). */
export const RUNTIME_PCR = 23;
/** Domain tag of the runtime measurement. */
export const RUNTIME_TAG = 'ferry/tpm2-runtime/v1';
/** Default PCR selection of a quote: firmware and boot (0-7) and the runtime PCR, sha256 bank. */
export const DEFAULT_PCR_SELECTION = 'sha256:0,1,2,3,4,5,6,7,23';

export type Tpm2BackendOptions = {
  tools: Tpm2Tools;
  /** Persistent EK handle; default 0x81010001 (TCG: RSA EK). */
  ekHandle?: number;
  /** NV index of the EK certificate; default 0x1c00002 (RSA 2048 EK certificate). */
  ekCertIndex?: number;
  /** Persistent AK handle; default 0x81010002. */
  akHandle?: number;
  /** AK algorithm when it has to be created: rsa (RSASSA, default), rsapss or ecc (ECDSA P-256). */
  akAlg?: 'rsa' | 'rsapss' | 'ecc';
  /** The AK's signing hash (also the quote's pcrDigest hash); default sha256. */
  akHash?: 'sha256' | 'sha384';
  /** PCRs to quote, tpm2-tools syntax; default DEFAULT_PCR_SELECTION. */
  pcrSelection?: string;
  /** Replace an existing AK at akHandle instead of reusing it. */
  recreateAk?: boolean;
  /**
   * The TCG event log to send with every quote, read at each collect (Linux:
   * /sys/kernel/security/tpm0/binary_bios_measurements); absent = evidence without a log.
   */
  eventLogFile?: string;
  signal?: AbortSignal;
};

function hexHandle(h: number): string {
  return `0x${h.toString(16)}`;
}

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-tpm2-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The runtime measurement: SHA256(encodeTagged("ferry/tpm2-runtime/v1", [[name, SHA256(content)], ...]))
 * over the entries in the order given. Names must be unique.
 */
export function runtimeMeasurement(entries: readonly { name: string; content: Uint8Array }[]): Uint8Array {
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'entries: expected a non-empty list of {name, content}');
  }
  const seen = new Set<string>();
  const list: CanonicalValue[] = entries.map((e, i) => {
    if (typeof e?.name !== 'string' || !(e.content instanceof Uint8Array)) {
      throw new FerryError('INVALID_ARGUMENT', `entries[${i}]: expected {name: string, content: Uint8Array}`);
    }
    if (seen.has(e.name)) throw new FerryError('INVALID_ARGUMENT', `entries[${i}]: duplicate name ${e.name}`);
    seen.add(e.name);
    return [e.name, new Uint8Array(createHash('sha256').update(e.content).digest())];
  });
  return new Uint8Array(createHash('sha256').update(encodeTagged(RUNTIME_TAG, list)).digest());
}

/** The value PCR 23 (sha256) holds after reset and one extend with `measurement`. */
export function expectedRuntimePcr(measurement: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(new Uint8Array(32)).update(measurement).digest());
}

/** The quote's extraData for a 64-byte report_data: SHA256(report_data). */
export function tpm2Nonce(reportData: Uint8Array): Uint8Array {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    throw new FerryError('INVALID_ARGUMENT', 'reportData: expected 64 bytes', {
      hints: [`got: ${reportData instanceof Uint8Array ? reportData.length : typeof reportData}`],
    });
  }
  return new Uint8Array(createHash('sha256').update(reportData).digest());
}

/** PCR values as the evidence body's canonical map: {bank: {"index": bytes}}. */
export function pcrValuesToCanonical(values: PcrValues): { [bank: string]: { [index: string]: Uint8Array } } {
  const out: { [bank: string]: { [index: string]: Uint8Array } } = {};
  for (const [bank, m] of values) {
    out[bank] = {};
    for (const [i, v] of [...m].sort((a, b) => a[0] - b[0])) out[bank][String(i)] = v;
  }
  return out;
}

/**
 * Reads a TCG event log file and checks that it parses (readEventLog): what a backend sends as
 * the evidence's `eventLog`. ATTESTATION_BACKEND_UNAVAILABLE when unreadable, ATTESTATION_MALFORMED
 * when malformed.
 */
export async function readEventLogFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', 'cannot read the TCG event log file', {
      cause: e,
      hints: [`file: ${path}`, (e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
  readEventLog(bytes);
  return bytes;
}

export class Tpm2Backend implements TeeBackend {
  readonly kind = 'tpm2' as const;
  readonly tools: Tpm2Tools;
  readonly ekHandle: number;
  readonly akHandle: number;
  readonly ekCertIndex: number;
  readonly pcrSelection: string;
  readonly akHash: 'sha256' | 'sha384';
  /** The AK's TPM2B_PUBLIC bytes and parsed form. */
  readonly akPublicBytes: Uint8Array;
  readonly akPublic: TpmPublic;
  /** The EK's TPM2B_PUBLIC, parsed. */
  readonly ekPublic: TpmPublic;
  #ekCert: Uint8Array | null = null;
  #ekChain: Uint8Array[] = [];
  #akCert: Uint8Array | null = null;
  #activation: ActivationRecord | null = null;
  /** Where the TCG event log is read at each collect, or null. */
  readonly eventLogFile: string | null;

  private constructor(
    opts: Required<Omit<Tpm2BackendOptions, 'signal' | 'akAlg' | 'recreateAk' | 'eventLogFile'>>,
    ak: Uint8Array,
    ek: Uint8Array,
    eventLogFile: string | null,
  ) {
    this.eventLogFile = eventLogFile;
    this.tools = opts.tools;
    this.ekHandle = opts.ekHandle;
    this.akHandle = opts.akHandle;
    this.ekCertIndex = opts.ekCertIndex;
    this.pcrSelection = opts.pcrSelection;
    this.akHash = opts.akHash;
    this.akPublicBytes = ak;
    this.akPublic = parseTpm2bPublic(ak);
    this.ekPublic = parseTpm2bPublic(ek);
  }

  /** Opens the TPM: ensures the persistent EK and AK (see the module comment). */
  static async open(opts: Tpm2BackendOptions): Promise<Tpm2Backend> {
    const full = {
      tools: opts.tools,
      ekHandle: opts.ekHandle ?? 0x81010001,
      akHandle: opts.akHandle ?? 0x81010002,
      ekCertIndex: opts.ekCertIndex ?? 0x1c00002,
      pcrSelection: opts.pcrSelection ?? DEFAULT_PCR_SELECTION,
      akHash: opts.akHash ?? 'sha256',
    };
    parseSelection(full.pcrSelection);
    if (
      opts.eventLogFile !== undefined &&
      (typeof opts.eventLogFile !== 'string' || opts.eventLogFile === '')
    ) {
      throw new FerryError('INVALID_ARGUMENT', 'eventLogFile: expected a non-empty path');
    }
    const alg = opts.akAlg ?? 'rsa';
    const [ak, ekPub] = await full.tools.session((run) =>
      withTmp(async (dir) => {
        const ek = hexHandle(full.ekHandle);
        const akh = hexHandle(full.akHandle);
        try {
          await run('tpm2_readpublic', ['-c', ek], opts.signal);
        } catch (e) {
          if (!isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED')) throw e;
          await run('tpm2_createek', ['-c', ek, '-G', 'rsa'], opts.signal);
        }
        let exists = true;
        try {
          await run('tpm2_readpublic', ['-c', akh], opts.signal);
        } catch (e) {
          if (!isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED')) throw e;
          exists = false;
        }
        if (exists && opts.recreateAk) {
          await run('tpm2_evictcontrol', ['-C', 'o', '-c', akh], opts.signal);
          exists = false;
        }
        if (!exists) {
          const [g, s] =
            alg === 'ecc' ? ['ecc', 'ecdsa'] : alg === 'rsapss' ? ['rsa', 'rsapss'] : ['rsa', 'rsassa'];
          const ctx = join(dir, 'ak.ctx');
          try {
            await run(
              'tpm2_createak',
              [
                '-C',
                ek,
                '-c',
                ctx,
                '-G',
                g,
                '-g',
                full.akHash,
                '-s',
                s,
                '-u',
                join(dir, 'c.pub'),
                '-f',
                'tss',
              ],
              opts.signal,
            );
            await run('tpm2_evictcontrol', ['-C', 'o', '-c', ctx, akh], opts.signal);
          } finally {
            await run('tpm2_flushcontext', ['-t']).catch(() => undefined);
            await run('tpm2_flushcontext', ['-s']).catch(() => undefined);
          }
        }
        const pub = join(dir, 'ak.pub');
        await run('tpm2_readpublic', ['-c', akh, '-f', 'tss', '-o', pub], opts.signal);
        const ekPubFile = join(dir, 'ek.pub');
        await run('tpm2_readpublic', ['-c', ek, '-f', 'tss', '-o', ekPubFile], opts.signal);
        return [new Uint8Array(await readFile(pub)), new Uint8Array(await readFile(ekPubFile))];
      }),
    );
    return new Tpm2Backend(full, ak, ekPub, opts.eventLogFile ?? null);
  }

  /** The AK's TPM name (u16 nameAlg || H(TPMT_PUBLIC)), what MakeCredential binds to. */
  get akName(): Uint8Array {
    return this.akPublic.name;
  }

  /** Reads the EK certificate (DER) from its NV index; it is included in evidence from now on. */
  async readEkCertificate(signal?: AbortSignal): Promise<Uint8Array> {
    const der = await this.tools.session((run) =>
      withTmp(async (dir) => {
        const f = join(dir, 'ek.der');
        await run('tpm2_nvread', [hexHandle(this.ekCertIndex), '-o', f], signal);
        return new Uint8Array(await readFile(f));
      }),
    );
    // The NV index may be larger than the certificate: keep the DER SEQUENCE only.
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(der));
    } catch (e) {
      throw new FerryError('ATTESTATION_MALFORMED', 'the EK certificate in NV is not X.509 DER', {
        cause: e,
      });
    }
    this.#ekCert = new Uint8Array(cert.raw);
    return this.#ekCert;
  }

  /** Intermediate CA certificates (DER) sent with the EK certificate. */
  setEkChain(chain: readonly Uint8Array[]): void {
    this.#ekChain = chain.map((c) => c.slice());
  }

  /** An AK certificate (DER) to include in evidence (cloud vTPMs). */
  setAkCertificate(der: Uint8Array | null): void {
    this.#akCert = der ? der.slice() : null;
  }

  /** The activator's record, included in evidence from now on. */
  setActivationRecord(record: ActivationRecord | null): void {
    this.#activation = record;
  }

  /**
   * TPM2_ActivateCredential with the EK and the AK: returns the secret the activator sealed.
   * The EK is authorised by its (empty) password when its template sets userWithAuth (the
   * high-range templates, e.g. swtpm's ECC P-384 EK), else by a policy session satisfying
   * PolicySecret(TPM_RH_ENDORSEMENT) (the default RSA and P-256 templates). Fails with
   * ATTESTATION_TPM2_COMMAND_FAILED when the blob was not made for this EK and AK name.
   */
  async activateCredential(made: MadeCredential, signal?: AbortSignal): Promise<Uint8Array> {
    const userWithAuth = (this.ekPublic.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0;
    return this.tools.session((run) =>
      withTmp(async (dir) => {
        const inFile = join(dir, 'cred.in');
        const outFile = join(dir, 'cred.out');
        const s = join(dir, 'session.ctx');
        await writeFile(inFile, credentialFile(made));
        const args = [
          '-c',
          hexHandle(this.akHandle),
          '-C',
          hexHandle(this.ekHandle),
          '-i',
          inFile,
          '-o',
          outFile,
        ];
        if (userWithAuth) {
          await run('tpm2_activatecredential', args, signal);
        } else {
          await run('tpm2_startauthsession', ['--policy-session', '-S', s], signal);
          try {
            await run('tpm2_policysecret', ['-S', s, '-c', 'e'], signal);
            await run('tpm2_activatecredential', [...args, '-P', `session:${s}`], signal);
          } finally {
            await run('tpm2_flushcontext', [s]).catch(() => undefined);
          }
        }
        return new Uint8Array(await readFile(outFile));
      }),
    );
  }

  /**
   * Measures the executor runtime: resets PCR 23 and extends its sha256 bank with
   * `runtimeMeasurement(entries)`. Returns the measurement; the PCR then holds
   * `expectedRuntimePcr(measurement)`.
   */
  async measureRuntime(
    entries: readonly { name: string; content: Uint8Array }[],
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    const m = runtimeMeasurement(entries);
    await this.tools.session(async (run) => {
      await run('tpm2_pcrreset', [String(RUNTIME_PCR)], signal);
      await run('tpm2_pcrextend', [`${RUNTIME_PCR}:sha256=${toHex(m)}`], signal);
    });
    return m;
  }

  /** Measures files by path (name = the path as given). */
  async measureRuntimeFiles(paths: readonly string[], signal?: AbortSignal): Promise<Uint8Array> {
    const entries = [];
    for (const p of paths) entries.push({ name: p, content: new Uint8Array(await readFile(p)) });
    return this.measureRuntime(entries, signal);
  }

  /** Quotes the configured PCRs with extraData = SHA256(reportData). */
  async quote(
    nonce: Uint8Array,
    signal?: AbortSignal,
  ): Promise<{ quote: Uint8Array; signature: Uint8Array; pcrs: PcrValues }> {
    return this.tools.session((run) =>
      withTmp(async (dir) => {
        const m = join(dir, 'q.msg');
        const s = join(dir, 'q.sig');
        const o = join(dir, 'q.pcrs');
        await run(
          'tpm2_quote',
          [
            '-c',
            hexHandle(this.akHandle),
            '-l',
            this.pcrSelection,
            '-q',
            toHex(nonce),
            '-m',
            m,
            '-s',
            s,
            '-o',
            o,
            '-g',
            this.akHash,
            `--scheme=${this.#scheme()}`,
          ],
          signal,
        );
        return {
          quote: new Uint8Array(await readFile(m)),
          signature: new Uint8Array(await readFile(s)),
          pcrs: pcrValuesFromSerialized(new Uint8Array(await readFile(o))),
        };
      }),
    );
  }

  #scheme(): string {
    const sch = this.akPublic.scheme.scheme;
    return sch === TPM_ALG.RSAPSS ? 'rsapss' : sch === TPM_ALG.ECDSA ? 'ecdsa' : 'rsassa';
  }

  /**
   * Reads the event log of `eventLogFile` and checks that it parses (readEventLog). Throws
   * ATTESTATION_BACKEND_UNAVAILABLE when unreadable, ATTESTATION_MALFORMED when malformed.
   */
  async readEventLog(): Promise<Uint8Array | null> {
    return this.eventLogFile === null ? null : readEventLogFile(this.eventLogFile);
  }

  /** TeeBackend: tpm2 evidence for a 64-byte report_data (body layout in docs/protocol.md §8). */
  async collect(reportData: Uint8Array, signal?: AbortSignal): Promise<Evidence> {
    const nonce = tpm2Nonce(reportData);
    const q = await this.quote(nonce, signal);
    const eventLog = await this.readEventLog();
    return {
      kind: 'tpm2',
      reportData: reportData.slice(),
      body: {
        quote: q.quote,
        signature: q.signature,
        akPublic: this.akPublicBytes,
        pcrs: pcrValuesToCanonical(q.pcrs),
        ekCert: this.#ekCert,
        certChain: this.#ekChain,
        akCert: this.#akCert,
        activation: this.#activation ? activationToCanonical(this.#activation) : null,
        ...(eventLog ? { eventLog } : {}),
      },
    };
  }

  /** A human summary for logs: selection and AK name. */
  describe(): string {
    return `tpm2 AK ${toHex(this.akName)} at ${hexHandle(this.akHandle)}, PCRs ${selectionToString(parseSelection(this.pcrSelection))}`;
  }
}
