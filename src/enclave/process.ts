/**
 * The enclave process: one per task attempt, spawned by the executor (handle.ts) with its
 * pipe on fd 3. It is created for one task: its `init` carries the task commitments
 * (src/protocol/commitments.ts), which it binds into its evidence and into every key release it
 * accepts, and it refuses to run anything else (another app, other arguments, other datasets)
 * and encrypts the result only to the committed recipient. It generates its keys inside,
 * produces evidence, opens HPKE-sealed file keys, streams and decrypts the app and the
 * datasets, runs the app under limits, seals the result to the requester, signs a receipt,
 * wipes its keys and exits. docs/protocol.md §10 is the normative description of the messages,
 * of the checks and of what destruction guarantees.
 *
 * The entry point chooses the runtime profile: main.ts (the attested runtime) gives
 * ATTESTED_PROFILE, which takes only encrypted sources; dev-main.ts (`ferry app run`) gives a
 * development profile, with a measurement of its own. No message can change the profile.
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
import { hpkeGenerateKeyPair, hpkeOpen } from '../crypto/hpke.ts';
import {
  type CanonicalValue,
  describe,
  encodeCanonical,
  encodeTagged,
  equalBytes,
  FerryError,
  toFerryError,
  hashTagged,
  toHex,
  wipe,
} from '../kernel/index.ts';
import { ed25519KeyPair } from '../attestation/sim/ed25519.ts';
// The protocol's pure modules, imported directly (src/protocol/index.ts loads the chain client).
import { reportDataFor } from '../protocol/binding.ts';
import { checkCommitments, commitmentsHash, type TaskCommitments } from '../protocol/commitments.ts';
import { keyReleaseInfo } from '../protocol/release-info.ts';
import { HASH_BUFFER_BYTES, HashThread, type ParallelHash } from './hasher.ts';
import { checkLimits } from './limits.ts';
import { runtimeMeasurement } from './measure.ts';
import { errorMessage, type Message, readFrames, writeFrame } from './protocol.ts';
import { signReceipt } from './receipt.ts';
import { appThreadAbandoned, runApp } from './runner.ts';
import type { Worker } from 'node:worker_threads';

/** Largest app module accepted (the whole plaintext module is held in memory to compile it). */
export const MAX_APP_BYTES = 64 * 1024 * 1024;

export type Source = { kind: 'file' | 'url'; location: string; encrypted: boolean };

/**
 * What the entry point fixes about the runtime; never taken from a message. The attested
 * runtime (main.ts) is ATTESTED_PROFILE; the development entry (dev-main.ts) has its own.
 */
export type RuntimeProfile = {
  /** `attested`: encrypted sources only, any configured backend. */
  readonly name: 'attested' | 'development';
  /** Plaintext sources and dataset names allowed (development only). */
  readonly plaintext: boolean;
  /** Backends other than `sim` allowed. */
  readonly hardware: boolean;
  /** The measurement `sim` evidence reports. */
  readonly simMeasurement: () => Promise<Uint8Array>;
};

export const ATTESTED_PROFILE: RuntimeProfile = Object.freeze({
  name: 'attested',
  plaintext: false,
  hardware: true,
  simMeasurement: runtimeMeasurement,
});

type State = {
  commitments: TaskCommitments;
  commitmentsHash: Uint8Array;
  x25519: { privateKey: Uint8Array; publicKey: Uint8Array };
  ed25519: { secretKey: Uint8Array; publicKey: Uint8Array };
  evidenceHash: Uint8Array;
  fileKeys: Map<string, FileKeyIdentity>;
  ran: boolean;
};

let profile: RuntimeProfile = ATTESTED_PROFILE;
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

/** Refuses a map with fields other than `allowed` (ENCLAVE_PROTOCOL naming the first one). */
function onlyFields(o: Record<string, CanonicalValue>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw new FerryError('ENCLAVE_PROTOCOL', `${what}: unknown field ${JSON.stringify(k)}`, {
        hints: [`expected only: ${allowed.join(', ')}`],
      });
    }
  }
}

const isBig = (v: CanonicalValue) =>
  typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
const big = (v: CanonicalValue) => BigInt(v as number | bigint);
const isMap = (v: CanonicalValue) => v !== null && typeof v === 'object' && !Array.isArray(v);

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
      measurement: await profile.simMeasurement(),
    });
  }
  if (!profile.hardware) {
    throw new FerryError('ENCLAVE_PROTOCOL', `the ${profile.name} runtime runs only with the sim backend`, {
      hints: [`got backend: ${describe(spec?.kind)}`],
    });
  }
  // tpm2, tdx, sev-snp (and the error for anything else): loaded only when configured.
  return (await import('./backends.ts')).openTeeBackend(spec);
}

/** The task commitments of `init`, validated; ENCLAVE_PROTOCOL naming the bad field. */
function parseCommitments(v: CanonicalValue): TaskCommitments {
  try {
    return checkCommitments(v);
  } catch (e) {
    const fe = toFerryError(e);
    throw new FerryError('ENCLAVE_PROTOCOL', `init: ${fe.message}`, { hints: fe.hints });
  }
}

async function onInit(m: Message): Promise<Message> {
  if (state) throw new FerryError('ENCLAVE_PROTOCOL', 'init: the enclave is already initialised');
  // No other field: in particular no plaintext or development switch (the profile decides).
  onlyFields(m, ['type', 'commitments', 'backend'], 'init');
  const commitments = parseCommitments(m.commitments);
  const backendSpec = field<Record<string, CanonicalValue>>(m, 'backend', isMap, 'map');
  const backend = await backendFor(backendSpec);
  const x25519 = hpkeGenerateKeyPair();
  const ed25519 = ed25519KeyPair();
  const reportData = reportDataFor({
    commitments,
    x25519Pub: x25519.publicKey,
    ed25519Pub: ed25519.publicKey,
  });
  const evidence = await backend.collect(reportData);
  const evidenceValue = { kind: evidence.kind, reportData: evidence.reportData, body: evidence.body };
  const evidenceBytes = encodeTagged('ferry/evidence/v1', evidenceValue);
  const evidenceHash = hashTagged('ferry/evidence/v1', evidenceValue);
  const cHash = commitmentsHash(commitments);
  state = {
    commitments,
    commitmentsHash: cHash,
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
    commitmentsHash: cHash,
  };
}

/** True when the commitments name this asset: the app id (kind app) or a dataset id. */
function committed(c: TaskCommitments, kind: 'app' | 'dataset', id: bigint): boolean {
  return kind === 'app' ? id === c.appId : c.datasets.some((d) => d.id === id);
}

/**
 * Opens sealed file keys. Every key must be for an asset the commitments name
 * (ENCLAVE_COMMITMENT_MISMATCH otherwise) and must open under the info that binds the
 * commitments hash, the evidence hash and the asset (ENCLAVE_KEY_UNSEAL_FAILED otherwise). The
 * message is all or nothing: when one key is refused, none of its keys is kept.
 */
async function onKeys(m: Message): Promise<Message> {
  const s = requireState('keys');
  onlyFields(m, ['type', 'keys'], 'keys');
  const keys = field<CanonicalValue[]>(m, 'keys', Array.isArray, 'array');
  const parsed = keys.map((k) => {
    const o = k as Record<string, CanonicalValue>;
    if (
      !isMap(o) ||
      !isBig(o.assetId) ||
      (o.assetKind !== 'app' && o.assetKind !== 'dataset') ||
      !(o.enc instanceof Uint8Array) ||
      !(o.ciphertext instanceof Uint8Array)
    ) {
      throw new FerryError(
        'ENCLAVE_PROTOCOL',
        'keys: each key must be {assetId, assetKind, enc, ciphertext}',
      );
    }
    onlyFields(o, ['assetId', 'assetKind', 'enc', 'ciphertext'], 'keys');
    const assetId = big(o.assetId);
    const assetKind: 'app' | 'dataset' = o.assetKind;
    if (!committed(s.commitments, assetKind, assetId)) {
      throw new FerryError(
        'ENCLAVE_COMMITMENT_MISMATCH',
        `keys: ${assetKind} ${assetId} is not in the task commitments`,
        { hints: ['a key is accepted only for the committed app and datasets; no key was kept'] },
      );
    }
    return { assetId, assetKind, enc: o.enc, ciphertext: o.ciphertext };
  });
  const opened: [string, FileKeyIdentity][] = [];
  try {
    for (const o of parsed) {
      const info = keyReleaseInfo({
        commitments: s.commitmentsHash,
        evidenceHash: s.evidenceHash,
        assetId: o.assetId,
        assetKind: o.assetKind,
      });
      let fileKey: Uint8Array;
      try {
        fileKey = await hpkeOpen(s.x25519.privateKey, o.enc, o.ciphertext, info);
      } catch (e) {
        throw new FerryError(
          'ENCLAVE_KEY_UNSEAL_FAILED',
          `the sealed key for ${o.assetKind} ${o.assetId} does not open`,
          {
            cause: e,
            hints: [
              `${(e as FerryError).code ?? 'error'}: sealed to another enclave key, task commitments, evidence or asset`,
            ],
          },
        );
      }
      try {
        opened.push([`${o.assetKind}:${o.assetId}`, new FileKeyIdentity(fileKey)]);
      } catch (e) {
        throw new FerryError('ENCLAVE_KEY_UNSEAL_FAILED', 'an opened key is not a 16-byte age file key', {
          cause: e,
        });
      } finally {
        wipe(fileKey);
      }
    }
  } catch (e) {
    for (const [, k] of opened) k.wipe();
    throw e;
  }
  for (const [name, k] of opened) {
    s.fileKeys.get(name)?.wipe();
    s.fileKeys.set(name, k);
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
    !isMap(o) ||
    (o.kind !== 'file' && o.kind !== 'url') ||
    typeof o.location !== 'string' ||
    typeof o.encrypted !== 'boolean'
  ) {
    throw new FerryError(
      'ENCLAVE_PROTOCOL',
      `run: ${what} source must be {kind: file|url, location, encrypted}`,
    );
  }
  onlyFields(o, ['kind', 'location', 'encrypted'], `run: ${what} source`);
  if (!o.encrypted && !profile.plaintext) {
    throw new FerryError('ENCLAVE_PROTOCOL', `run: ${what} source must be encrypted`, {
      hints: ['the attested runtime takes no plaintext source'],
    });
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

/**
 * Authenticated plaintext of an age source, in batches: the chunks one read decrypted to. A
 * batch is handed over when yielded (the runner may transfer its chunks to the app's thread,
 * which zeroes them once read); every chunk still here when the consumer asks for the next
 * batch (not transferred: copied, or not sent) is zeroed then.
 */
async function* decrypted(
  raw: AsyncIterable<Uint8Array>,
  identity: FileKeyIdentity,
): AsyncGenerator<readonly Uint8Array[]> {
  let out: Buffer[] = [];
  const d = new Decryptor([identity], (p) => out.push(p));
  // Hands over what the last step decrypted, if anything; zeroes what is still here after.
  async function* handOver(): AsyncGenerator<readonly Uint8Array[]> {
    if (out.length === 0) return;
    const batch = out;
    out = [];
    try {
      yield batch;
    } finally {
      // A transferred chunk is detached here (length 0): the app's thread zeroes it.
      for (const p of batch) if (p.length > 0) p.fill(0);
    }
  }
  for await (const c of raw) {
    const r = d.write(c);
    if (r) await r;
    yield* handOver();
  }
  await d.end();
  yield* handOver();
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
    // parseSource refused it already unless the entry point's profile allows plaintext.
    if (!profile.plaintext) throw new FerryError('ENCLAVE_PROTOCOL', 'run: plaintext source refused');
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
async function* naming<T>(chunks: AsyncIterable<T>, what: string): AsyncGenerator<T> {
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

function mismatch(what: string, hints: string[] = []): FerryError {
  return new FerryError('ENCLAVE_COMMITMENT_MISMATCH', `run: ${what}`, { hints });
}

/**
 * Runs the committed app once. Before anything is fetched: the arguments must hash to the
 * committed input hash and the datasets must be the committed ones, in order
 * (ENCLAVE_COMMITMENT_MISMATCH). The app is the one whose key was released for the committed
 * app id, and its plaintext must hash to the committed measurement before it is compiled
 * (ENCLAVE_MEASUREMENT_MISMATCH). After the run, every dataset read to the end must have hashed
 * to its committed ciphertext hash, else no result is returned (ENCLAVE_COMMITMENT_MISMATCH).
 * The result and the log are encrypted to the committed result recipient only.
 */
async function onRun(m: Message): Promise<Message> {
  const s = requireState('run');
  if (s.ran) throw new FerryError('ENCLAVE_PROTOCOL', 'run: an enclave runs one app, once');
  s.ran = true;
  const c = s.commitments;
  const startedAt = Date.now();
  onlyFields(m, ['type', 'app', 'datasets', 'args', 'limits'], 'run');
  const app = field<Record<string, CanonicalValue>>(m, 'app', isMap, 'map');
  onlyFields(app, ['source'], 'run: app');
  const appSource = parseSource(app.source, 'app');
  const appKey = `app:${c.appId}`;
  const datasetsIn = field<CanonicalValue[]>(m, 'datasets', Array.isArray, 'array');
  const args = field<string[]>(
    m,
    'args',
    (v) => Array.isArray(v) && v.every((a) => typeof a === 'string'),
    'array of text',
  );
  const limitsIn = m.limits === undefined ? {} : field<Record<string, number>>(m, 'limits', isMap, 'map');
  onlyFields(limitsIn, ['timeoutMs', 'memoryMb', 'maxOutputBytes'], 'run: limits');
  const limits = checkLimits({
    timeoutMs: limitsIn.timeoutMs,
    memoryMb: limitsIn.memoryMb,
    maxOutputBytes: limitsIn.maxOutputBytes,
  });

  // The committed input and datasets, checked before anything is fetched or run.
  const inputHash = sha256(encodeCanonical(args));
  if (!equalBytes(inputHash, c.inputHash)) {
    throw mismatch('the arguments are not the committed input', [
      `committed input hash: ${toHex(c.inputHash)}`,
      `hash of the arguments given: ${toHex(inputHash)}`,
    ]);
  }
  if (datasetsIn.length !== c.datasets.length) {
    throw mismatch(`${datasetsIn.length} dataset(s) given, ${c.datasets.length} committed`);
  }
  const parsed = datasetsIn.map((d, i) => {
    const o = d as Record<string, CanonicalValue>;
    if (!isMap(o) || !isBig(o.id)) {
      throw new FerryError('ENCLAVE_PROTOCOL', `run: datasets[${i}] must be {id, source}`);
    }
    onlyFields(o, profile.plaintext ? ['id', 'source', 'name'] : ['id', 'source'], `run: datasets[${i}]`);
    const id = big(o.id);
    if (id !== c.datasets[i].id) {
      throw mismatch(
        `datasets[${i}] is dataset ${id}; the commitments name dataset ${c.datasets[i].id} there`,
        [`committed, in order: ${c.datasets.map((x) => x.id).join(', ')}`],
      );
    }
    // The app sees each file as /data/<decimal id>; a development run may name it.
    let name = id.toString();
    if (o.name !== undefined) {
      if (
        typeof o.name !== 'string' ||
        !/^[A-Za-z0-9._-]{1,128}$/.test(o.name) ||
        o.name === '.' ||
        o.name === '..'
      ) {
        throw new FerryError('ENCLAVE_PROTOCOL', `run: datasets[${i}].name must match [A-Za-z0-9._-]{1,128}`);
      }
      name = o.name;
    }
    return { id, name, source: parseSource(o.source, `datasets[${i}]`) };
  });
  if (new Set(parsed.map((d) => d.name)).size !== parsed.length) {
    throw new FerryError('ENCLAVE_PROTOCOL', 'run: dataset names must be distinct');
  }
  const recipient: Recipient = new X25519Recipient(c.resultRecipient);

  // The app: stream, decrypt, measure; nothing runs unless the measurement matches.
  const parts: Uint8Array[] = [];
  let appLen = 0;
  for await (const item of plaintextOf(s, appSource, appKey, null)) {
    for (const chunk of item instanceof Uint8Array ? [item] : item) {
      appLen += chunk.length;
      if (appLen > MAX_APP_BYTES) {
        for (const p of parts) p.fill(0);
        throw new FerryError('ENCLAVE_APP_INVALID', 'the app module is too large', {
          hints: [`limit: ${MAX_APP_BYTES} bytes`],
        });
      }
      parts.push(new Uint8Array(chunk));
    }
  }
  const module = new Uint8Array(appLen);
  let off = 0;
  for (const p of parts) {
    module.set(p, off);
    off += p.length;
    p.fill(0);
  }
  if (!equalBytes(sha256(module), c.appMeasurement)) {
    module.fill(0);
    throw new FerryError(
      'ENCLAVE_MEASUREMENT_MISMATCH',
      'the decrypted app does not match the committed app measurement',
      {
        hints: ['the app was not compiled or run'],
      },
    );
  }

  const datasets = parsed.map((d) => {
    const hash = hashThread!.stream();
    const progress = { complete: false };
    const chunks = plaintextOf(s, d.source, `dataset:${d.id}`, hash, progress);
    return { ...d, hash, progress, chunks };
  });

  // `app-started` / `app-ended` let the executor's handle enforce the time limit from outside
  // this process should it stop answering (§10.5); an error ends the window too.
  let result: Awaited<ReturnType<typeof runApp>>;
  try {
    result = await runApp({
      module,
      args,
      stdin: datasets.length === 1 ? datasets[0].chunks : null,
      files: datasets.length > 1 ? datasets.map((d) => ({ name: d.name, chunks: d.chunks })) : [],
      // Decrypted chunks are the decryptor's own buffers, held by nothing else: handed over.
      // A plaintext source's chunks (development) are the hashing pool's buffers: copied.
      inputsOwned: datasets.every((d) => d.source.encrypted),
      limits,
      worker: appWorker,
      onAppStarted: () => notify({ type: 'app-started' }),
      onAppEnded: () => notify({ type: 'app-ended' }),
    });
  } catch (e) {
    notify({ type: 'app-ended' });
    throw e;
  }
  appWorker = undefined;
  module.fill(0);
  // `complete` is read before the digests: a source marks itself complete only after its last
  // bytes were submitted, so a dataset said complete is hashed whole (a cancelled source may
  // still be submitting; its receipt entry then says complete: false over a prefix).
  const complete = datasets.map((d) => d.progress.complete);
  const digests = await Promise.all(datasets.map((d) => d.hash.digest()));
  // A dataset read whole must be the committed ciphertext. The bytes were decrypted as they
  // arrived (the age header MAC already proved they were made with the owner's file key, and the
  // output can only go to the committed recipient); here, before anything is sealed, another
  // ciphertext under the same key is caught and the output is dropped.
  for (let i = 0; i < datasets.length; i++) {
    if (complete[i] && !equalBytes(digests[i], c.datasets[i].ciphertextHash)) {
      result.stdout.fill(0);
      result.stderr.fill(0);
      throw mismatch(`dataset ${datasets[i].id} is not the committed ciphertext; no result`, [
        `committed ciphertext hash: ${toHex(c.datasets[i].ciphertextHash)}`,
        `hash of the bytes read: ${toHex(digests[i])}`,
      ]);
    }
  }
  const resultCt = await sealTo(recipient, result.stdout);
  const logCt = await sealTo(recipient, result.stderr);
  const outputBytes = result.stdout.length;
  result.stdout.fill(0);
  result.stderr.fill(0);
  const endedAt = Date.now();
  const { receipt, signature } = signReceipt(s.ed25519.secretKey, {
    chainId: c.chainId,
    taskId: c.taskId,
    attempt: c.attempt,
    commitmentsHash: s.commitmentsHash,
    resultRecipient: c.resultRecipient,
    appMeasurement: c.appMeasurement,
    datasets: datasets.map((d, i) => ({
      id: d.name,
      ciphertextHash: digests[i],
      complete: complete[i],
    })),
    inputHash,
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

/** Sends a progress message to the executor (set by `main`). */
let notify: (m: Message) => void = () => {};

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

/**
 * Serves the executor on fd 3 with the app thread started by the entry point (main.ts, or
 * dev-main.ts with its development profile).
 */
export function main(threads: { appWorker: Worker }, runtime: RuntimeProfile): void {
  profile = runtime;
  appWorker = threads.appWorker;
  hashThread = new HashThread();
  // Computed once per process, and public (the runtime's own files): started now, so that a
  // pre-started process (pool.ts) has it ready when its `init` comes.
  void runtime.simMeasurement().catch(() => {});
  const pipe = new Socket({ fd: 3, readable: true, writable: true });
  let queue = Promise.resolve();
  notify = (m) => {
    writeFrame(pipe, m).catch(() => {});
  };
  const exit = (code: number) => {
    wipeAll();
    // An abandoned app thread would hold `process.exit` (Node joins its threads): the process
    // then ends itself from outside that thread, its keys already wiped.
    const leave = () => (appThreadAbandoned() ? process.kill(process.pid, 'SIGKILL') : process.exit(code));
    pipe.end(leave);
    setTimeout(leave, 500).unref();
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
