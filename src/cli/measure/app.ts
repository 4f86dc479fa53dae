/**
 * `ferry measure APP.wasm [--json]`: the measurement of a WebAssembly app — the SHA-256 of
 * the module's bytes, exactly what `app publish` registers and data owners allow with
 * `--allow-app`. Refuses a file that is not a WASM binary module (APP_NOT_WASM, exit 2).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { FerryError, toHex } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';

/** `\0asm` then version 1 (little-endian u32): the WebAssembly binary module header. */
const WASM_HEADER = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

export default defineCommand({
  name: 'measure',
  summary: "print a WASM app's measurement (SHA-256 of the module, as app publish registers it)",
  usage: 'measure APP.wasm [--json]',
  description: `
Prints the measurement of a WebAssembly module: the SHA-256 of its bytes, the value "app
publish" registers on chain and data owners allow with --allow-app. The file must start with
the WebAssembly binary header (\\0asm, version 1), else APP_NOT_WASM (exit 2).
For the enclave runtime's measurement see "ferry measure runtime" (a file named "runtime":
write ./runtime).
--json prints {file, measurement, size}.`,
  options: {},
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const file = ctx.positionals[0];
    let header: Uint8Array;
    try {
      const fh = await open(file, 'r');
      try {
        const buf = new Uint8Array(WASM_HEADER.length);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        header = buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', `cannot read ${file}`, {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
      });
    }
    if (header.length < WASM_HEADER.length || !header.every((b, i) => b === WASM_HEADER[i])) {
      throw new FerryError('APP_NOT_WASM', `${file} is not a WebAssembly binary module`, {
        hints: [
          'expected: the header 00 61 73 6d 01 00 00 00 (\\0asm, version 1)',
          `got: ${toHex(header) || 'an empty file'}`,
          'a .wat text module must be compiled first (e.g. wat2wasm)',
        ],
      });
    }
    const h = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(file)) {
      h.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const measurement = h.digest('hex');
    return { json: { file, measurement, size }, text: `${measurement}  ${file}` };
  },
});
