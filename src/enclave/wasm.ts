/**
 * The few WebAssembly JS API types the enclave uses. The project's TypeScript lib (es2024,
 * no DOM) does not declare the `WebAssembly` global, so it is typed here and reached through
 * `globalThis`.
 */
export type WasmModule = object;
/** A memory of the app; shared (a SharedArrayBuffer) once limits.ts has rewritten it. */
export type WasmMemory = { readonly buffer: ArrayBuffer | SharedArrayBuffer; grow(delta: number): number };
export type WasmInstance = { readonly exports: Record<string, unknown> };
export type WasmImports = Record<string, Record<string, unknown>>;
export type WasmImportDescriptor = { module: string; name: string; kind: string };

type WasmApi = {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Module: { imports(m: WasmModule): WasmImportDescriptor[] };
  Instance: new (m: WasmModule, imports: WasmImports) => WasmInstance;
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
};

export const Wasm: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export function isMemory(v: unknown): v is WasmMemory {
  return v instanceof (Wasm.Memory as unknown as new () => object);
}
