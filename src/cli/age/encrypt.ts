/** `ferry encrypt`: encrypt to age recipients, like `age -e`. */
import { resolve } from 'node:path';
import {
  encryptParallel,
  parseRecipient,
  parseRecipientsFile,
  type Recipient,
} from '../../crypto/age/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { optionalString, readInputFile, stringList } from '../args.ts';
import { defineCommand } from '../command.ts';
import { pipelineOptions, requireOutputWithJson, runWithSink } from './io.ts';

export default defineCommand({
  name: 'encrypt',
  summary: 'encrypt a file to age recipients (like age -e)',
  usage: 'encrypt (-r RECIPIENT | -R PATH)... [-a] [-o OUTPUT] [INPUT]',
  description: `
Encrypts INPUT (default stdin) to every recipient given with -r (age1... or age1pq1...) or listed in a
recipients file given with -R (one per line, # comments). Output goes to -o or stdout; binary
output is refused on a terminal (use -a or -o). The file is streamed in constant memory; with
-o it is written to a temporary file and renamed into place when complete.
Inputs over 512 KiB are sealed on the main thread and FERRY_AGE_WORKERS=N (0..8) worker
threads (default the cores less one, at most 3).
JSON (needs -o): {"output", "bytes", "sha256", "armor"} (bytes and sha256 of the age file).`,
  options: {
    recipient: {
      type: 'string',
      short: 'r',
      multiple: true,
      value: 'RECIPIENT',
      description: 'encrypt to this age1... recipient',
    },
    'recipients-file': {
      type: 'string',
      short: 'R',
      multiple: true,
      value: 'PATH',
      description: 'encrypt to the recipients listed in this file',
    },
    armor: { type: 'boolean', short: 'a', description: 'write the PEM-like ASCII armor' },
    output: {
      type: 'string',
      short: 'o',
      value: 'OUTPUT',
      description: 'write to this file instead of stdout',
    },
  },
  positionals: { max: 1 },
  async run(ctx) {
    const outPath = optionalString(ctx, 'output');
    const armor = ctx.values.armor === true;
    const recipients: Recipient[] = stringList(ctx, 'recipient').map((r) => parseRecipient(r));
    for (const f of stringList(ctx, 'recipients-file')) {
      const text = Buffer.from(await readInputFile(resolve(ctx.cwd, f), 'recipients')).toString('utf8');
      try {
        recipients.push(...parseRecipientsFile(text));
      } catch (e) {
        const fe = e as FerryError;
        throw new FerryError(fe.code, `${f}: ${fe.message}`, { hints: fe.hints, cause: e });
      }
    }
    if (recipients.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing recipients', {
        hints: ['give at least one -r age1... or -R FILE'],
      });
    }
    requireOutputWithJson(ctx, outPath);
    const options = pipelineOptions(ctx);
    if (outPath === undefined && !armor && ctx.stdout.isTTY === true) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', 'refusing to write binary ciphertext to a terminal', {
        hints: ['use -o FILE, redirect stdout, or -a for ASCII armor'],
      });
    }
    const r = await runWithSink(ctx, outPath, (source, sink) =>
      encryptParallel(recipients, source, sink, { ...options, armor }),
    );
    return { json: { output: r.output, bytes: r.bytes, sha256: r.sha256, armor } };
  },
});
