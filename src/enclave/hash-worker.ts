/**
 * The hashing thread of the enclave process: SHA-256 of input ciphertexts, computed beside the
 * decryption (see hasher.ts). Messages: `{id, buf, len}` (update; the buffer is sent back) and
 * `{id, final: true}` (answers `{id, digest}`).
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

type In = { id: number; buf?: ArrayBuffer; len?: number; final?: boolean };

if (parentPort) {
  const port = parentPort;
  const hashes = new Map<number, Hash>();
  port.on('message', (m: In) => {
    let h = hashes.get(m.id);
    if (!h) {
      h = createHash('sha256');
      hashes.set(m.id, h);
    }
    if (m.buf) {
      h.update(new Uint8Array(m.buf, 0, m.len));
      port.postMessage({ id: m.id, buf: m.buf }, [m.buf]);
    }
    if (m.final) {
      hashes.delete(m.id);
      port.postMessage({ id: m.id, digest: new Uint8Array(h.digest()) });
    }
  });
}
