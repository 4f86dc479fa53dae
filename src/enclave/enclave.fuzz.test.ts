// Fuzz: enclave receipts, enclave protocol frames and WASM module validation (the memory
// limiter and compileLimited, which run before any instantiation; no app is run here)
// (issue 13 item 5). Every failure must be a coded FerryError.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import {
  assertExercised,
  byteMutations,
  fuzz,
  fuzzAsync,
  mutateValue,
  type Rng,
  summary,
} from '../../test/helpers/fuzz.ts';
import { ed25519PublicKeyOf } from '../attestation/sim/ed25519.ts';
import { type CanonicalValue, decodeCanonical, encodeCanonical, fromHex } from '../kernel/index.ts';
import { limitMemory } from './limits.ts';
import { decodeFrameBody, encodeFrame } from './protocol.ts';
import { decodeReceipt, type Receipt, signReceipt, verifyReceipt } from './receipt.ts';
import { compileLimited } from './runner.ts';

const b32 = (n: number) => new Uint8Array(32).fill(n);
// A fixed key, so every run mutates the same seed bytes.
const sk = new Uint8Array(32).fill(6);
const kp = { secretKey: sk, publicKey: ed25519PublicKeyOf(sk) };
const receipt: Receipt = {
  chainId: 31337n,
  taskId: 2n ** 63n + 5n,
  attempt: 2,
  commitmentsHash: b32(1),
  resultRecipient: b32(2),
  appMeasurement: b32(3),
  datasets: [
    { id: '1', ciphertextHash: b32(4), complete: true },
    { id: 'b.csv', ciphertextHash: b32(5), complete: false },
  ],
  inputHash: b32(6),
  resultHash: b32(7),
  logHash: b32(8),
  outcome: 'limit',
  exitCode: null,
  limitHit: 'output',
  startedAt: 1_700_000_000_000,
  endedAt: 1_700_000_000_123,
  evidenceHash: b32(9),
  enclaveKey: kp.publicKey,
};

/** Byte mutations, or a structure-aware mutation re-encoded canonically. */
function cborGen(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  if (rng.below(2) === 0) return byteMutations(rng, seeds);
  const v = decodeCanonical(rng.pick(seeds));
  return Uint8Array.from(encodeCanonical(mutateValue(rng, v as never) as CanonicalValue));
}

test('fuzz decodeReceipt and verifyReceipt: bytes and structure', (t) => {
  const signed = signReceipt(kp.secretKey, receipt);
  const exited = signReceipt(kp.secretKey, { ...receipt, outcome: 'exit', exitCode: 0, limitHit: null });
  const stats = fuzz(
    'decodeReceipt',
    { seed: 0x4ec, iterations: 3000, seeds: [signed.receipt, exited.receipt], generate: cborGen },
    (bytes) => {
      decodeReceipt(bytes);
      return verifyReceipt(bytes, signed.signature, kp.publicKey);
    },
  );
  assertExercised('decodeReceipt', stats);
  t.diagnostic(summary(stats));
});

test('fuzz decodeFrameBody: enclave protocol messages', (t) => {
  const bodies = [
    { type: 'init', commitments: { a: 1n, b: b32(1) }, limits: { memoryMb: 64, timeMs: 1000 } },
    { type: 'chunk', data: new Uint8Array(100) },
    { type: 'error', error: { code: 'ENCLAVE_PROTOCOL', message: 'x', hints: [] } },
  ].map((m) => encodeFrame(m as never).subarray(4));
  const stats = fuzz(
    'decodeFrameBody',
    { seed: 0xf4a, iterations: 3000, seeds: bodies, generate: cborGen },
    (b) => decodeFrameBody(b),
  );
  assertExercised('decodeFrameBody', stats);
  t.diagnostic(summary(stats));
});

// ---- WASM modules ---------------------------------------------------------------------------

async function wat(text: string): Promise<Uint8Array> {
  const wabt = await (
    createRequire(import.meta.url)('wabt') as () => Promise<{
      parseWat(
        file: string,
        text: string,
      ): {
        toBinary(o: object): { buffer: Uint8Array };
        resolveNames(): void;
        validate(): void;
        destroy(): void;
      };
    }>
  )();
  const m = wabt.parseWat('fuzz.wat', text);
  try {
    m.resolveNames();
    m.validate();
    return m.toBinary({}).buffer;
  } finally {
    m.destroy();
  }
}

async function moduleSeeds(): Promise<Uint8Array[]> {
  const examples = ['cat', 'count-bytes', 'loop', 'trap'].map((n) =>
    readFileSync(new URL(`../../examples/${n}/app.wat`, import.meta.url), 'utf8'),
  );
  return [
    ...(await Promise.all(examples.map(wat))),
    // Imported memory, a memory with no maximum, a table, a start section.
    await wat(`(module
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (import "env" "memory" (memory 1 100))
      (func (export "_start")))`),
    await wat(`(module (memory (export "memory") 2) (table 4 funcref)
      (func $s) (start $s) (func (export "_start")))`),
    // The fuzz report's modules (not run here): the grow loop, a 10M-entry table, a start
    // section calling fd_write.
    fromHex(
      '0061736d01000000010401600000030201000503010001071302066d656d6f72790200065f737461727400000a0e010c000340410140001a0c000b0b',
    ),
    fromHex(
      '0061736d0100000001040160000003020100040701700080ade2040503010001071302066d656d6f72790200065f737461727400000a040102000b',
    ),
    fromHex(
      '0061736d01000000010c0260047f7f7f7f017f60000002230116776173695f736e617073686f745f70726576696577310866645f7772697465000003030201010503010001071302066d656d6f72790200065f737461727400020801010a12020d00410141004101410810001a0b02000b',
    ),
  ];
}

// Found by this fuzzer (src/enclave/limits.ts, Reader.name): an import or export name that is
// not valid UTF-8 threw TextDecoder's TypeError; it is ENCLAVE_APP_INVALID now.
const NAME_NOT_UTF8 = fromHex('0061736d01000000010401600000020b0103656e76' + '02ff' + '66000003020100');

test('a module whose import name is not UTF-8 is ENCLAVE_APP_INVALID', () => {
  assert.throws(() => limitMemory(NAME_NOT_UTF8, 64), { code: 'ENCLAVE_APP_INVALID' });
});

test('fuzz limitMemory: module bytes (the section walk behind every app run)', async (t) => {
  const seeds = [
    ...(await moduleSeeds()),
    new Uint8Array(readFileSync(new URL('../cli/generated/csv-stats.wasm', import.meta.url))),
  ];
  const stats = fuzz('limitMemory', { seed: 0x11e, iterations: 4000, seeds }, (b) => {
    const r = limitMemory(b, 64);
    // Whatever it accepts, it accepts again in its own output (the rewrite is a fixed point).
    assert.deepEqual(limitMemory(r.bytes, 64).bytes, r.bytes);
  });
  assertExercised('limitMemory', stats);
  t.diagnostic(summary(stats));
});

test('fuzz compileLimited: mutated modules are compiled and their imports checked, never run', async (t) => {
  const seeds = await moduleSeeds();
  const stats = await fuzzAsync('compileLimited', { seed: 0xc0f, iterations: 600, seeds }, async (b) => {
    await compileLimited(b, 64);
  });
  assertExercised('compileLimited', stats);
  t.diagnostic(summary(stats));
});
