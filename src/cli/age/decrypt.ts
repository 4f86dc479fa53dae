/** `ferry decrypt`: decrypt an age file with identity files, like `age -d`. */
import { resolve } from 'node:path';
import { decryptParallel, type Identity, parseIdentityFile } from '../../crypto/age/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { optionalString, readInputFile, stringList } from '../args.ts';
import { defineCommand } from '../command.ts';
import { pipelineOptions, requireOutputWithJson, runWithSink } from './io.ts';

export default defineCommand({
  name: 'decrypt',
  summary: 'decrypt an age file with identity files (like age -d)',
  usage: 'decrypt -i PATH... [-o OUTPUT] [INPUT]',
  description: `
Decrypts INPUT (default stdin; binary or ASCII-armored, detected) with the identities in the
files given by -i (AGE-SECRET-KEY-1... or AGE-SECRET-KEY-PQ-1... lines, # comments). Streams in constant memory and
releases only authenticated plaintext. With -o the plaintext goes to a temporary file that is
renamed into place only on success and removed on failure. A failed decryption exits 3 with
its code: AGE_NO_MATCH, AGE_HMAC_INVALID, AGE_HEADER_INVALID (and other header codes),
AGE_PAYLOAD_INVALID / AGE_PAYLOAD_TRUNCATED, AGE_ARMOR_INVALID.
Inputs over 512 KiB are opened on the main thread and FERRY_AGE_WORKERS=N (0..8) worker
threads (default the cores less one, at most 3); plaintext is still released in order.
JSON (needs -o): {"output", "bytes", "sha256"} of the plaintext.`,
  options: {
    identity: { type: 'string', short: 'i', multiple: true, value: 'PATH', description: 'an identity file' },
    output: { type: 'string', short: 'o', value: 'OUTPUT', description: 'write the plaintext to this file' },
  },
  positionals: { max: 1 },
  async run(ctx) {
    const outPath = optionalString(ctx, 'output');
    const files = stringList(ctx, 'identity');
    if (files.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing identities', {
        hints: ['give at least one -i FILE'],
      });
    }
    const identities: Identity[] = [];
    for (const f of files) {
      const text = Buffer.from(await readInputFile(resolve(ctx.cwd, f), 'identity')).toString('utf8');
      try {
        identities.push(...parseIdentityFile(text));
      } catch (e) {
        const fe = e as FerryError;
        throw new FerryError(fe.code, `${f}: ${fe.message}`, { hints: fe.hints, cause: e });
      }
    }
    requireOutputWithJson(ctx, outPath);
    const options = pipelineOptions(ctx);
    const r = await runWithSink(ctx, outPath, (source, sink) =>
      decryptParallel(identities, source, sink, options),
    );
    return { json: { output: r.output, bytes: r.bytes, sha256: r.sha256 } };
  },
});
