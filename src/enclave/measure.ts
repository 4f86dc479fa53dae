/**
 * The enclave runtime's measurement (what `sim` evidence reports and a policy pins in
 * referenceValues.sim.measurement):
 *
 *   SHA256( for each file F of src/enclave/*.ts except *.test.ts, sorted by name:
 *             utf8(name) || 0x00 || SHA256(contents) )
 *
 * The worker file and the WASI host are in that folder, so they are covered.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIR = dirname(fileURLToPath(import.meta.url));
let cached: Promise<Uint8Array> | undefined;

async function compute(): Promise<Uint8Array> {
  const names = (await readdir(DIR)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).sort();
  const h = createHash('sha256');
  for (const name of names) {
    h.update(`${name}\0`);
    h.update(
      createHash('sha256')
        .update(await readFile(`${DIR}/${name}`))
        .digest(),
    );
  }
  return new Uint8Array(h.digest());
}

/** SHA-256 measurement of the enclave runtime files (computed once per process). */
export function runtimeMeasurement(): Promise<Uint8Array> {
  cached ??= compute();
  return cached.then((m) => Uint8Array.from(m));
}
