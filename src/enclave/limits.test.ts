import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLimits, DEFAULT_LIMITS, limitMemory, REFUSED_GROW_EXPORT } from './limits.ts';
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

test('GC types and unknown instructions are refused by the rewrite: ENCLAVE_APP_INVALID', () => {
  const isInvalid = (e: Error & { code?: string }) => e.code === 'ENCLAVE_APP_INVALID';
  // (type (struct)): type section, one entry, 0x5f with no fields.
  assert.throws(() => limitMemory(Uint8Array.from([...HEADER, 0x01, 0x03, 0x01, 0x5f, 0x00]), 4), isInvalid);
  // (type (func)) (func) (memory 1), body: 0xfb 0x00 (struct.new 0), end.
  const body = [0x00, 0xfb, 0x00, 0x00, 0x0b];
  const gc = [
    ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00],
    ...[0x03, 0x02, 0x01, 0x00],
    ...[0x05, 0x03, 0x01, 0x00, 0x01],
    ...[0x0a, body.length + 2, 0x01, body.length, ...body],
  ];
  assert.throws(() => limitMemory(Uint8Array.from([...HEADER, ...gc]), 4), isInvalid);
});

test('a module with memory.grow gets the refusal export; one without is left as it is', async () => {
  // (type (func)) (func (drop (memory.grow (i32.const 1)))) (memory 1)
  const body = [0x00, 0x41, 0x01, 0x40, 0x00, 0x1a, 0x0b];
  const grows = Uint8Array.from([
    ...HEADER,
    ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00],
    ...[0x03, 0x02, 0x01, 0x00],
    ...[0x05, 0x03, 0x01, 0x00, 0x01],
    ...[0x0a, body.length + 2, 0x01, body.length, ...body],
  ]);
  const r = limitMemory(grows, 4);
  const m = await Wasm.compile(r.bytes);
  const exports = (
    globalThis as unknown as {
      WebAssembly: { Module: { exports(m: object): { name: string; kind: string }[] } };
    }
  ).WebAssembly.Module.exports(m);
  assert.deepEqual(exports, [{ name: REFUSED_GROW_EXPORT, kind: 'global' }]);
  assert.deepEqual(
    limitMemory(DEFINED_NO_MAX, 4).bytes,
    Uint8Array.from([...HEADER, 0x05, 0x04, 0x01, 0x03, 0x02, 0x40]),
  );
});
