/**
 * The owner agent's ciphertext store: `<dir>/<id>.age`, one age file per asset, encrypted to
 * the owner's age recipient. The store never writes plaintext: `add` pipes the source through
 * `createEncryptStream` into a temporary file (constant memory, SHA-256 of the ciphertext
 * computed on the way), fsyncs it and renames it into place, then records the asset in the
 * agent state. A crash leaves at most a `.tmp-*` file, removed by `sweep()`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createEncryptStream, type Identity, type Recipient, readFileKey } from '../crypto/age/index.ts';
import { FerryError } from '../kernel/index.ts';
import type { AgentState, Asset, AssetKind } from './state.ts';

export type AssetStoreOptions = {
  /** Directory of the ciphertext files (created 0700). */
  dir: string;
  state: AgentState;
  /** The owner's recipient every asset is encrypted to. */
  recipient: Recipient;
  /** Names the identity that opens the assets, recorded with each (e.g. `age`). */
  identityRef: string;
};

export type AddAssetOptions = {
  kind: AssetKind;
  /** A human name (file name); stored, never used as a path. */
  name: string;
  signal?: AbortSignal;
};

/** A pass-through that hashes and counts what flows through it. */
function hasher(): { stream: Transform; digest: () => Uint8Array; bytes: () => number } {
  const h = createHash('sha256');
  let n = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  return { stream, digest: () => new Uint8Array(h.digest()), bytes: () => n };
}

/** A fresh local asset id: 32 lowercase hex digits with at least one letter (never all digits). */
function newAssetId(): string {
  for (;;) {
    const id = randomBytes(16).toString('hex');
    if (/[a-f]/.test(id)) return id;
  }
}

export class AssetStore {
  readonly dir: string;
  readonly #state: AgentState;
  readonly #recipient: Recipient;
  readonly #identityRef: string;

  constructor(opts: AssetStoreOptions) {
    this.dir = opts.dir;
    this.#state = opts.state;
    this.#recipient = opts.recipient;
    this.#identityRef = opts.identityRef;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Where the ciphertext of `id` lives. */
  pathOf(id: string): string {
    if (!/^[0-9a-f]{8,64}$/.test(id)) {
      throw new FerryError('INVALID_ARGUMENT', 'asset id must be lowercase hex', {
        hints: [`got: ${id.slice(0, 80)}`],
      });
    }
    return join(this.dir, `${id}.age`);
  }

  /**
   * Encrypts `source` (a file path or a readable stream of plaintext) into the store.
   * Apps also get their measurement: the SHA-256 of the plaintext module.
   */
  async add(source: string | Readable, opts: AddAssetOptions): Promise<Asset> {
    const id = newAssetId();
    const final = this.pathOf(id);
    const tmp = join(this.dir, `.tmp-${id}`);
    let input: Readable;
    if (typeof source === 'string') {
      input = createReadStream(source, { highWaterMark: 1 << 20 });
    } else {
      input = source;
    }
    const plain = hasher();
    const cipher = hasher();
    try {
      await pipeline(
        input,
        plain.stream,
        createEncryptStream([this.#recipient]),
        cipher.stream,
        createWriteStream(tmp, { mode: 0o600, flags: 'wx' }),
        { signal: opts.signal },
      );
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof FerryError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.name === 'AbortError')
        throw new FerryError('ABORTED', 'adding the asset was aborted', { cause: e });
      throw new FerryError(
        typeof source === 'string' && err.syscall === 'open' ? 'IO_READ_FAILED' : 'IO_WRITE_FAILED',
        'cannot add the asset',
        {
          cause: e,
          hints: [err.code ?? err.message],
        },
      );
    }
    try {
      return this.#state.addAsset({
        id,
        kind: opts.kind,
        name: opts.name,
        path: final,
        ciphertextSha256: cipher.digest(),
        size: cipher.bytes(),
        identityRef: this.#identityRef,
        measurement: opts.kind === 'app' ? plain.digest() : null,
      });
    } catch (e) {
      rmSync(final, { force: true });
      throw e;
    }
  }

  list(kind?: AssetKind): Asset[] {
    return this.#state.listAssets(kind);
  }

  get(id: string): Asset {
    const a = this.#state.getAsset(id);
    if (!a) throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: [`id: ${id}`] });
    return a;
  }

  /** Removes an asset's ciphertext and record (refused once keys were released for it). */
  async remove(id: string): Promise<void> {
    const a = this.get(id);
    this.#state.removeAsset(id);
    await rm(a.path, { force: true });
  }

  /**
   * Reads the asset's age header and unwraps its 16-byte file key with `identities`. The
   * caller owns the key and wipes it after sealing it to an enclave.
   */
  async fileKey(id: string, identities: Identity[]): Promise<Uint8Array> {
    const a = this.get(id);
    const fh = await open(a.path, 'r');
    try {
      // age headers are small; read more only if a header is unusually long.
      for (let size = 4096; ; size *= 4) {
        const buf = Buffer.alloc(Math.min(size, a.size));
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        try {
          return await readFileKey(identities, new Uint8Array(buf.subarray(0, bytesRead)));
        } catch (e) {
          if (
            !(
              e instanceof FerryError &&
              e.code === 'AGE_HEADER_INVALID' &&
              bytesRead < a.size &&
              size < 1 << 20
            )
          ) {
            throw e;
          }
        }
      }
    } finally {
      await fh.close();
    }
  }

  /** Deletes temporary files left by an interrupted `add`. Returns how many were removed. */
  sweep(): number {
    let n = 0;
    for (const f of readdirSync(this.dir)) {
      if (f.startsWith('.tmp-')) {
        rmSync(join(this.dir, f), { force: true });
        n++;
      }
    }
    return n;
  }
}
