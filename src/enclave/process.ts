/**
 * The enclave process: one per task attempt, spawned by the executor (handle.ts) with its
 * pipe on fd 3. It generates its keys inside, produces evidence, opens HPKE-sealed file keys,
 * streams and decrypts the app and the datasets, runs the app under limits, seals the result
 * to the requester, signs a receipt, wipes its keys and exits. docs/protocol.md §10 is the
 * normative description of the messages and of what destruction guarantees.
 *
 * Private keys and plaintext never leave this process and are never written to disk; logs
 * (stderr) carry only public facts.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { SimBackend } from '../attestation/sim/backend.ts';
import { decodeSimAttester } from '../attestation/sim/root.ts';
import type { TeeBackend } from '../attestation/types.ts';
import { Decryptor } from '../crypto/age/decrypt.ts';
import { createEncryptStream, encrypt } from '../crypto/age/encrypt.ts';
import { FileKeyIdentity, type Recipient } from '../crypto/age/recipients.ts';
import { X25519Recipient } from '../crypto/age/x25519.ts';
import { hpkeGenerateKeyPair, hpkeOpen, keyReleaseInfo } from '../crypto/hpke.ts';
import {
  type CanonicalValue,
  describe,
  encodeCanonical,
  encodeTagged,
  equalBytes,
  FerryError,
  toFerryError,
  hashTagged,
  wipe,
} from '../kernel/index.ts';
import { ed25519KeyPair } from '../attestation/sim/ed25519.ts';
import { reportDataFor } from './binding.ts';
import { HASH_BUFFER_BYTES, HashThread, type ParallelHash } from './hasher.ts';
import { checkLimits } from './limits.ts';
import { runtimeMeasurement } from './measure.ts';
import { errorMessage, type Message, readFrames, writeFrame } from './protocol.ts';
import { signReceipt } from './receipt.ts';
import { runApp } from './runner.ts';
import type { Worker } from 'node:worker_threads';

/** Largest app module accepted (the whole plaintext module is held in memory to compile it). */
export const MAX_APP_BYTES = 64 * 1024 * 1024;

export type Source = { kind: 'file' | 'url'; location: string; encrypted: boolean };

type State = {
  chainId: bigint;
  taskId: bigint;
  attempt: number;
  devPlaintext: boolean;
  x25519: { privateKey: Uint8Array; publicKey: Uint8Array };
  ed25519: { secretKey: Uint8Array; publicKey: Uint8Array };
  evidenceHash: Uint8Array;
  fileKeys: Map<string, FileKeyIdentity>;
  ran: boolean;
};

let state: State | undefined;
/** The app's worker thread, started with the process so its start-up is off the run. */
let appWorker: Worker | undefined;
/** The thread that hashes input ciphertexts beside their decryption. */
let hashThread: HashThread | undefined;

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function field<T>(m: Message, name: string, ok: (v: CanonicalValue) => boolean, expected: string): T {
  const v = m[name];
  if (!ok(v)) {
    throw new FerryError('ENCLAVE_PROTOCOL', `${m.type}: bad field ${name}`, {
      hints: [`expected: ${expected}`, `got: ${describe(v)}`],
    });
  }
  return v as T;
}

const isBig = (v: CanonicalValue) =>
  typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
const big = (v: CanonicalValue) => BigInt(v as number | bigint);
const bytesOf = (n: number) => (v: CanonicalValue) => v instanceof Uint8Array && v.length === n;

async function backendFor(spec: Record<string, CanonicalValue>): Promise<TeeBackend> {
  if (spec?.kind === 'sim' && typeof spec.attesterFile === 'string') {
    let attesterBytes: Uint8Array;
    try {
      attesterBytes = new Uint8Array(await readFile(spec.attesterFile));
    } catch (e) {
      throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', 'cannot read the sim attester file', {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? ''],
      });
    }
    return new SimBackend({
      attester: decodeSimAttester(attesterBytes),
      measurement: await runtimeMeasurement(),
    });
  }
  // tpm2, tdx, sev-snp (and the error for anything else): loaded only when configured.
  return (await import('./backends.ts')).openTeeBackend(spec);
}

async function onInit(m: Message): Promise<Message> {
  if (state) throw new FerryError('ENCLAVE_PROTOCOL', 'init: the enclave is already initialised');
  const chainId = big(field(m, 'chainId', isBig, 'unsigned integer'));
  const taskId = big(field(m, 'taskId', isBig, 'unsigned integer'));
  const attempt = field<number>(m, 'attempt', (v) => typeof v === 'number' && v >= 1, 'integer >= 1');
  const seed = field<Uint8Array>(m, 'seed', bytesOf(32), 'bytes(32)');
  const backendSpec = field<Record<string, CanonicalValue>>(
    m,
    'backend',
    (v) => v !== null && typeof v === 'object',
    'map',
  );
  const devPlaintext = m.devPlaintext === true;
  const backend = await backendFor(backendSpec);
  const x25519 = hpkeGenerateKeyPair();
  const ed25519 = ed25519KeyPair();
  const reportData = reportDataFor({
    chainId,
    taskId,
    attempt,
    x25519Pub: x25519.publicKey,
    ed25519Pub: ed25519.publicKey,
    seed,
  });
  const evidence = await backend.collect(reportData);
  const evidenceValue = { kind: evidence.kind, reportData: evidence.reportData, body: evidence.body };
  const evidenceBytes = encodeTagged('ferry/evidence/v1', evidenceValue);
  const evidenceHash = hashTagged('ferry/evidence/v1', evidenceValue);
  state = {
    chainId,
    taskId,
    attempt,
    devPlaintext,
    x25519,
    ed25519,
    evidenceHash,
    fileKeys: new Map(),
    ran: false,
  };
  return {
    type: 'ready',
    x25519Pub: x25519.publicKey,
    ed25519Pub: ed25519.publicKey,
    evidence: evidenceBytes,
    evidenceHash,
  };
}

async function onKeys(m: Message): Promise<Message> {
  const s = requireState('keys');
  const keys = field<CanonicalValue[]>(m, 'keys', Array.isArray, 'array');
  for (const k of keys) {
    const o = k as Record<string, CanonicalValue>;
    if (
      !isBig(o?.assetId) ||
      (o.assetKind !== 'app' && o.assetKind !== 'dataset') ||
      !(o.enc instanceof Uint8Array) ||
      !(o.ciphertext instanceof Uint8Array)
    ) {
      throw new FerryError(
        'ENCLAVE_PROTOCOL',
        'keys: each key must be {assetId, assetKind, enc, ciphertext}',
      );
    }
    const info = keyReleaseInfo({
      chainId: s.chainId,
      taskId: s.taskId,
      attempt: s.attempt,
      evidenceHash: s.evidenceHash,
      assetId: big(o.assetId),
      assetKind: o.assetKind,
    });
    let fileKey: Uint8Array;
    try {
      fileKey = await hpkeOpen(s.x25519.privateKey, o.enc, o.ciphertext, info);
    } catch (e) {
      throw new FerryError(
        'ENCLAVE_KEY_UNSEAL_FAILED',
        `the sealed key for ${o.assetKind} ${big(o.assetId)} does not open`,
        {
          cause: e,
          hints: [
            `${(e as FerryError).code ?? 'error'}: sealed to another enclave key, task, attempt, evidence or asset`,
          ],
        },
      );
    }
    try {
      s.fileKeys.set(`${o.assetKind}:${big(o.assetId)}`, new FileKeyIdentity(fileKey));
    } catch (e) {
      throw new FerryError('ENCLAVE_KEY_UNSEAL_FAILED', 'an opened key is not a 16-byte age file key', {
        cause: e,
      });
    } finally {
      wipe(fileKey);
    }
  }
  return { type: 'keys-ok', count: s.fileKeys.size };
}

function requireState(what: string): State {
  if (!state)
    throw new FerryError('ENCLAVE_PROTOCOL', `${what}: the enclave is not initialised (or destroyed)`);
  return state;
}

function parseSource(v: CanonicalValue, what: string): Source {
  const o = v as Record<string, CanonicalValue>;
  if (
    o === null ||
    typeof o !== 'object' ||
    (o.kind !== 'file' && o.kind !== 'url') ||
    typeof o.location !== 'string' ||
    typeof o.encrypted !== 'boolean'
  ) {
    throw new FerryError(
      'ENCLAVE_PROTOCOL',
      `run: ${what} source must be {kind: file|url, location, encrypted}`,
    );
  }
  return { kind: o.kind, location: o.location, encrypted: o.encrypted };
}

/**
 * The raw bytes of a source, as they arrive, hashed on the way by the hashing thread (when
 * `ph` is given). File sources are read in HASH_BUFFER_BYTES reads, one read ahead, straight
 * into the pooled buffers that are then handed to the hashing thread; URL bodies are copied
 * into them. A chunk is handed over only after the consumer asked for the next one.
 */
async function* rawChunks(
  src: Source,
  ph: ParallelHash | null,
  progress: { complete: boolean },
): AsyncGenerator<Uint8Array> {
  const unavailable = (e: unknown, what: string) =>
    e instanceof FerryError
      ? e
      : new FerryError('ENCLAVE_DATA_UNAVAILABLE', what, {
          cause: e,
          hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
        });
  if (src.kind === 'file') {
    let fh: FileHandle;
    try {
      fh = await open(src.location, 'r');
    } catch (e) {
      throw unavailable(e, 'cannot open an input file');
    }
    const readNext = async (): Promise<{ buf: ArrayBuffer; n: number }> => {
      const buf = ph ? await ph.take() : new ArrayBuffer(HASH_BUFFER_BYTES);
      const { bytesRead } = await fh.read(new Uint8Array(buf), 0, buf.byteLength, null);
      return { buf, n: bytesRead };
    };
    let pending: Promise<{ buf: ArrayBuffer; n: number }> | undefined = readNext();
    try {
      for (;;) {
        let got: { buf: ArrayBuffer; n: number };
        try {
          got = await pending;
        } catch (e) {
          pending = undefined;
          throw unavailable(e, 'cannot read an input file');
        }
        if (got.n === 0) {
          ph?.release(got.buf);
          pending = undefined;
          break;
        }
        pending = readNext();
        yield new Uint8Array(got.buf, 0, got.n);
        ph?.submit(got.buf, got.n);
      }
      progress.complete = true;
    } finally {
      await pending?.catch(() => {});
      await fh.close();
    }
    return;
  }
  let res: Response;
  try {
    res = await fetch(src.location);
  } catch (e) {
    throw unavailable(e, 'cannot fetch an input');
  }
  if (!res.ok || !res.body) {
    throw new FerryError('ENCLAVE_DATA_UNAVAILABLE', `input source answered HTTP ${res.status}`);
  }
  let buf: ArrayBuffer | null = null;
  let fill = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (ph) {
        let off = 0;
        while (off < chunk.length) {
          buf ??= await ph.take();
          const n = Math.min(buf.byteLength - fill, chunk.length - off);
          new Uint8Array(buf, fill, n).set(chunk.subarray(off, off + n));
          fill += n;
          off += n;
          if (fill === buf.byteLength) {
            ph.submit(buf, fill);
            buf = null;
            fill = 0;
          }
        }
      }
      yield chunk;
    }
  } catch (e) {
    throw unavailable(e, 'an input download failed');
  }
  if (buf && ph) ph.submit(buf, fill);
  progress.complete = true;
}

/** Authenticated plaintext chunks of an age source; each chunk is wiped once consumed. */
async function* decrypted(
  raw: AsyncIterable<Uint8Array>,
  identity: FileKeyIdentity,
): AsyncGenerator<Uint8Array> {
  const out: Buffer[] = [];
  const d = new Decryptor([identity], (p) => out.push(p));
  for await (const c of raw) {
    const r = d.write(c);
    if (r) await r;
    while (out.length > 0) {
      const p = out.shift()!;
      yield p;
      p.fill(0);
    }
  }
  await d.end();
  while (out.length > 0) {
    const p = out.shift()!;
    yield p;
    p.fill(0);
  }
}

function plaintextOf(
  s: State,
  src: Source,
  key: string,
  ph: ParallelHash | null,
  progress: { complete: boolean } = { complete: false },
) {
  const raw = rawChunks(src, ph, progress);
  if (!src.encrypted) {
    if (!s.devPlaintext) {
      throw new FerryError(
        'ENCLAVE_PROTOCOL',
        'run: plaintext sources are only allowed in a development enclave',
      );
    }
    return raw;
  }
  const identity = s.fileKeys.get(key);
  if (!identity) {
    throw new FerryError(
      'ENCLAVE_KEY_UNSEAL_FAILED',
      `run: no key was delivered for ${key.replace(':', ' ')}`,
    );
  }
  return naming(decrypted(raw, identity), key.replace(':', ' '));
}

/** Prefixes an input stream's error with the asset it comes from ("dataset 3: ..."). */
async function* naming(chunks: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } catch (e) {
    const fe = toFerryError(e);
    throw new FerryError(fe.code, `${what}: ${fe.message}`, { hints: fe.hints, cause: e });
  }
}

async function sealTo(recipient: Recipient, plaintext: Uint8Array): Promise<Uint8Array> {
  if (plaintext.length < 1 << 20) return encrypt([recipient], plaintext);
  const enc = createEncryptStream([recipient]);
  const parts: Buffer[] = [];
  enc.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise<void>((resolve, reject) => {
    enc.on('end', resolve);
    enc.on('error', reject);
  });
  for (let o = 0; o < plaintext.length; o += 1 << 20) {
    if (!enc.write(plaintext.subarray(o, o + (1 << 20)))) await new Promise((r) => enc.once('drain', r));
  }
  enc.end();
  await done;
  return new Uint8Array(Buffer.concat(parts));
}

async function onRun(m: Message): Promise<Message> {
  const s = requireState('run');
  if (s.ran) throw new FerryError('ENCLAVE_PROTOCOL', 'run: an enclave runs one app, once');
  s.ran = true;
  const startedAt = Date.now();
  const app = field<Record<string, CanonicalValue>>(
    m,
    'app',
    (v) => v !== null && typeof v === 'object',
    'map',
  );
  const measurement = app.measurement;
  if (!(measurement instanceof Uint8Array) || measurement.length !== 32) {
    throw new FerryError('ENCLAVE_PROTOCOL', 'run: app.measurement must be 32 bytes');
  }
  const appSource = parseSource(app.source, 'app');
  const appKey = `app:${isBig(app.assetId) ? big(app.assetId) : ''}`;
  const datasetsIn = field<CanonicalValue[]>(m, 'datasets', Array.isArray, 'array');
  const args = field<string[]>(
    m,
    'args',
    (v) => Array.isArray(v) && v.every((a) => typeof a === 'string'),
    'array of text',
  );
  const recipientText = field<string>(m, 'recipient', (v) => typeof v === 'string', 'age recipient');
  const limitsIn = (m.limits ?? {}) as Record<string, number>;
  const limits = checkLimits({
    timeoutMs: limitsIn.timeoutMs,
    memoryMb: limitsIn.memoryMb,
    maxOutputBytes: limitsIn.maxOutputBytes,
  });
  // X25519 recipients (the protocol's) directly; other age recipient types load their parser.
  const recipient: Recipient = recipientText.startsWith('age1pq1')
    ? (await import('../crypto/age/keys.ts')).parseRecipient(recipientText)
    : new X25519Recipient(recipientText);

  // The app: stream, decrypt, measure; nothing runs unless the measurement matches.
  const parts: Uint8Array[] = [];
  let appLen = 0;
  for await (const c of plaintextOf(s, appSource, appKey, null)) {
    appLen += c.length;
    if (appLen > MAX_APP_BYTES) {
      throw new FerryError('ENCLAVE_APP_INVALID', 'the app module is too large', {
        hints: [`limit: ${MAX_APP_BYTES} bytes`],
      });
    }
    parts.push(Uint8Array.from(c));
  }
  const module = new Uint8Array(appLen);
  let off = 0;
  for (const p of parts) {
    module.set(p, off);
    off += p.length;
    p.fill(0);
  }
  if (!equalBytes(sha256(module), measurement)) {
    module.fill(0);
    throw new FerryError(
      'ENCLAVE_MEASUREMENT_MISMATCH',
      'the decrypted app does not match its registered measurement',
      {
        hints: ['the app was not compiled or run'],
      },
    );
  }

  const datasets = datasetsIn.map((d, i) => {
    const o = d as Record<string, CanonicalValue>;
    if (typeof o?.id !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(o.id) || o.id === '.' || o.id === '..') {
      throw new FerryError('ENCLAVE_PROTOCOL', `run: datasets[${i}].id must match [A-Za-z0-9._-]{1,128}`);
    }
    const hash = hashThread!.stream();
    const progress = { complete: false };
    const key = `dataset:${isBig(o.assetId) ? big(o.assetId) : ''}`;
    const source = parseSource(o.source, `datasets[${i}]`);
    return { id: o.id, hash, progress, chunks: plaintextOf(s, source, key, hash, progress) };
  });
  if (new Set(datasets.map((d) => d.id)).size !== datasets.length) {
    throw new FerryError('ENCLAVE_PROTOCOL', 'run: dataset ids must be distinct');
  }

  const result = await runApp({
    module,
    args,
    stdin: datasets.length === 1 ? datasets[0].chunks : null,
    files: datasets.length > 1 ? datasets.map((d) => ({ name: d.id, chunks: d.chunks })) : [],
    limits,
    worker: appWorker,
  });
  appWorker = undefined;
  module.fill(0);
  const resultCt = await sealTo(recipient, result.stdout);
  const logCt = await sealTo(recipient, result.stderr);
  const outputBytes = result.stdout.length;
  result.stdout.fill(0);
  result.stderr.fill(0);
  const endedAt = Date.now();
  // `complete` is read before the digests: a source marks itself complete only after its last
  // bytes were submitted, so a dataset said complete is hashed whole (a cancelled source may
  // still be submitting; its receipt entry then says complete: false over a prefix).
  const complete = datasets.map((d) => d.progress.complete);
  const digests = await Promise.all(datasets.map((d) => d.hash.digest()));
  const { receipt, signature } = signReceipt(s.ed25519.secretKey, {
    chainId: s.chainId,
    taskId: s.taskId,
    attempt: s.attempt,
    appMeasurement: measurement,
    datasets: datasets.map((d, i) => ({
      id: d.id,
      ciphertextHash: digests[i],
      complete: complete[i],
    })),
    inputHash: sha256(encodeCanonical(args)),
    resultHash: sha256(resultCt),
    logHash: sha256(logCt),
    outcome: result.outcome,
    exitCode: result.exitCode,
    limitHit: result.limitHit,
    startedAt,
    endedAt,
    evidenceHash: s.evidenceHash,
    enclaveKey: s.ed25519.publicKey,
  });
  return {
    type: 'result',
    result: resultCt,
    log: logCt,
    receipt,
    signature,
    outcome: result.outcome,
    exitCode: result.exitCode,
    limitHit: result.limitHit,
    trap: result.trap,
    stderrTruncated: result.stderrTruncated,
    outputBytes,
    durationMs: Math.round(result.durationMs),
  };
}

/** Overwrites every key this process holds. */
function wipeAll(): void {
  void appWorker?.terminate();
  appWorker = undefined;
  void hashThread?.close();
  hashThread = undefined;
  if (!state) return;
  wipe(state.x25519.privateKey, state.ed25519.secretKey);
  for (const k of state.fileKeys.values()) k.wipe();
  state.fileKeys.clear();
  state = undefined;
}

async function handle(m: Message): Promise<Message> {
  switch (m.type) {
    case 'init':
      return onInit(m);
    case 'keys':
      return onKeys(m);
    case 'run':
      return onRun(m);
    default:
      throw new FerryError('ENCLAVE_PROTOCOL', `unknown request type ${JSON.stringify(m.type)}`);
  }
}

/** Serves the executor on fd 3 with the app and hashing threads started by main.ts. */
export function main(threads: { appWorker: Worker }): void {
  appWorker = threads.appWorker;
  hashThread = new HashThread();
  const pipe = new Socket({ fd: 3, readable: true, writable: true });
  let queue = Promise.resolve();
  const exit = (code: number) => {
    wipeAll();
    pipe.end(() => process.exit(code));
    setTimeout(() => process.exit(code), 500).unref();
  };
  readFrames(
    pipe,
    (m) => {
      queue = queue.then(async () => {
        if (m.type === 'destroy') {
          wipeAll();
          await writeFrame(pipe, { type: 'destroyed' });
          exit(0);
          return;
        }
        let answer: Message;
        try {
          answer = await handle(m);
        } catch (e) {
          answer = errorMessage(e);
        }
        await writeFrame(pipe, answer);
      });
    },
    () => exit(2),
  );
  // The executor went away: nothing left to serve; wipe and leave.
  pipe.on('end', () => exit(0));
  pipe.on('error', () => exit(2));
}
