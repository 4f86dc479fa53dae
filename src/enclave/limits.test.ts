import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLimits, DEFAULT_LIMITS, limitMemory } from './limits.ts';
import { Wasm } from './wasm.ts';

// Hand-assembled modules (computed by us): header, then one section.
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** (memory 2) with no maximum: section 5, size 3, count 1, flags 0, min 2. */
const DEFINED_NO_MAX = Uint8Array.from([...HEADER, 0x05, 0x03, 0x01, 0x00, 0x02]);
/** (memory 1 100000): flags 1, min 1, max 100000 (LEB 0xa0 0x8d 0x06). */
const DEFINED_BIG_MAX = Uint8Array.from([...HEADER, 0x05, 0x06, 0x01, 0x01, 0x01, 0xa0, 0x8d, 0x06]);
/** (import "env" "mem" (memory 3)). */
const IMPORTED = Uint8Array.from([
  ...HEADER,
  0x02,
  0x0c,
  0x01,
  0x03,
  0x65,
  0x6e,
  0x76,
  0x03,
  0x6d,
  0x65,
  0x6d,
  0x02,
  0x00,
  0x03,
]);

function memoryLimits(bytes: Uint8Array): { min: number; max: number } {
  // Parse back the single rewritten section (import or memory).
  const d = bytes.subarray(8);
  const id = d[0];
  let p = 2;
  if (id === 2) p = 2 + 1 + 4 + 4 + 1;
  else p = 3;
  assert.equal(d[p], 0x03, 'flags must declare a maximum and a shared memory');
  const readLeb = (at: number): [number, number] => {
    let r = 0;
    let s = 0;
    let k = at;
    for (;;) {
      const b = d[k++];
      r += (b & 0x7f) * 2 ** s;
      s += 7;
      if (!(b & 0x80)) return [r, k];
    }
  };
  const [min, next] = readLeb(p + 1);
  const [max] = readLeb(next);
  return { min, max };
}

test('a defined memory without maximum gets the limit as maximum', async () => {
  const r = limitMemory(DEFINED_NO_MAX, 4);
  assert.deepEqual(memoryLimits(r.bytes), { min: 2, max: 64 });
  assert.equal(r.maxPages, 64);
  await Wasm.compile(r.bytes); // still a valid module
});

test('a declared maximum above the limit is lowered; below is kept', () => {
  assert.deepEqual(memoryLimits(limitMemory(DEFINED_BIG_MAX, 1).bytes), { min: 1, max: 16 });
  assert.deepEqual(memoryLimits(limitMemory(DEFINED_BIG_MAX, 8192).bytes), { min: 1, max: 100000 });
});

test('an imported memory is reported with the limits the host must give it', async () => {
  const r = limitMemory(IMPORTED, 2);
  assert.deepEqual(r.importedMemories, [{ module: 'env', name: 'mem', initial: 3, maximum: 32 }]);
  assert.deepEqual(memoryLimits(r.bytes), { min: 3, max: 32 });
  await Wasm.compile(r.bytes);
});

test('initial memory above the limit: ENCLAVE_LIMIT_MEMORY', () => {
  assert.throws(
    () => limitMemory(Uint8Array.from([...HEADER, 0x05, 0x03, 0x01, 0x00, 20]), 1),
    (e: Error & { code?: string }) => e.code === 'ENCLAVE_LIMIT_MEMORY',
  );
});

test('not WebAssembly, truncated, or shared memory: ENCLAVE_APP_INVALID', () => {
  const bad = (b: Uint8Array) =>
    assert.throws(
      () => limitMemory(b, 4),
      (e: Error & { code?: string }) => e.code === 'ENCLAVE_APP_INVALID',
    );
  bad(new TextEncoder().encode('not wasm at all'));
  bad(DEFINED_NO_MAX.subarray(0, DEFINED_NO_MAX.length - 1));
  bad(Uint8Array.from([...HEADER, 0x05, 0x04, 0x01, 0x03, 0x01, 0x02]));
  assert.throws(() => limitMemory('x' as unknown as Uint8Array, 4), /Uint8Array/);
});

test('checkLimits fills defaults and names the bad limit', () => {
  assert.deepEqual(checkLimits(undefined), { ...DEFAULT_LIMITS });
  assert.deepEqual(checkLimits({ timeoutMs: 5 }), { ...DEFAULT_LIMITS, timeoutMs: 5 });
  for (const bad of [{ timeoutMs: 0 }, { memoryMb: 1.5 }, { maxOutputBytes: 2 ** 40 }, { memoryMb: '3' }]) {
    assert.throws(
      () => checkLimits(bad as never),
      (e: Error & { code?: string }) =>
        e.code === 'INVALID_ARGUMENT' && e.message.includes(Object.keys(bad)[0]),
    );
  }
});
