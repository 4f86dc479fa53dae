/** `ferry keygen`: a new age X25519 identity, like age-keygen. */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  generateX25519Identity,
  HybridIdentity,
  parseIdentityFile,
  X25519Identity,
} from '../../crypto/age/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { optionalString, readInputFile } from '../args.ts';
import { type CommandContext, type CommandResult, defineCommand } from '../command.ts';

/** RFC 3339 local time with offset, as age-keygen writes it. */
function rfc3339(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const tz =
    off === 0
      ? 'Z'
      : `${off > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${tz}`
  );
}

export default defineCommand({
  name: 'keygen',
  summary: 'generate an age X25519 identity (like age-keygen)',
  usage: 'keygen [--pq] [-o OUTPUT] [--json]\n       ferry keygen -y [-o OUTPUT] [INPUT]',
  description: `
Writes a new identity file: "# created:" and "# public key:" comments, then the
AGE-SECRET-KEY-1... line. With -o the file is created with mode 0600 and must not exist yet,
and the public key is also printed on stderr. --pq makes a post-quantum hybrid identity
(AGE-SECRET-KEY-PQ-1..., recipient age1pq1...) like age-keygen -pq. With -y, reads an
identity file (INPUT or stdin) and prints the recipient of each identity instead.
JSON: {"identity", "recipient"} without -o; {"recipient", "output"} with -o (the secret key is
never printed with -o); with -y {"recipients": [...]}.`,
  options: {
    output: {
      type: 'string',
      short: 'o',
      value: 'OUTPUT',
      description: 'write the identity to this new file',
    },
    y: { type: 'boolean', short: 'y', description: 'convert an identity file to recipients' },
    pq: { type: 'boolean', description: 'generate a post-quantum hybrid (ML-KEM-768 + X25519) identity' },
  },
  positionals: { max: 1 },
  async run(ctx) {
    const outPath = optionalString(ctx, 'output');
    if (ctx.values.y === true) return convert(ctx, outPath);
    if (ctx.positionals.length > 0) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', 'keygen takes no input file without -y', {
        hints: ['usage: ferry keygen [-o OUTPUT]'],
      });
    }
    let identity: string;
    let recipient: string;
    if (ctx.values.pq === true) {
      const seed = new Uint8Array(randomBytes(32));
      const id = new HybridIdentity(seed);
      seed.fill(0);
      identity = id.toString();
      recipient = id.recipient.toString();
    } else {
      ({ identity, recipient } = generateX25519Identity());
    }
    const text = `# created: ${rfc3339(new Date())}\n# public key: ${recipient}\n${identity}\n`;
    if (outPath === undefined) {
      if (!ctx.json && ctx.stdout.isTTY !== true) ctx.stderr.write(`Public key: ${recipient}\n`);
      return { json: { identity, recipient }, text };
    }
    const full = resolve(ctx.cwd, outPath);
    try {
      const fh = await open(full, 'wx', 0o600);
      try {
        await fh.writeFile(text);
      } finally {
        await fh.close();
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new FerryError(
        code === 'EEXIST' ? 'USAGE_INVALID_ARGUMENT' : 'IO_WRITE_FAILED',
        `cannot create ${outPath}`,
        {
          cause: e,
          hints: [
            code === 'EEXIST' ? 'the file exists: keygen never overwrites an identity' : (code ?? String(e)),
          ],
        },
      );
    }
    if (!ctx.json) ctx.stderr.write(`Public key: ${recipient}\n`);
    return { json: { recipient, output: outPath }, text: undefined };
  },
});

async function convert(ctx: CommandContext, outPath: string | undefined): Promise<CommandResult> {
  const path = ctx.positionals[0];
  let text: string;
  if (path === undefined || path === '-') {
    const parts: Buffer[] = [];
    for await (const c of ctx.stdin) parts.push(Buffer.from(c as Buffer));
    text = Buffer.concat(parts).toString('utf8');
  } else {
    text = Buffer.from(await readInputFile(resolve(ctx.cwd, path), 'identity')).toString('utf8');
  }
  const recipients = parseIdentityFile(text).map((id) => {
    if (id instanceof X25519Identity || id instanceof HybridIdentity) return id.recipient.toString();
    throw new FerryError('AGE_INVALID_IDENTITY', 'unsupported identity type');
  });
  const out = recipients.join('\n') + '\n';
  if (outPath !== undefined) {
    try {
      const fh = await open(resolve(ctx.cwd, outPath), 'w', 0o644);
      await fh.writeFile(out);
      await fh.close();
    } catch (e) {
      throw new FerryError('IO_WRITE_FAILED', `cannot write ${outPath}`, { cause: e });
    }
    return { json: { recipients, output: outPath } };
  }
  return { json: { recipients }, text: out };
}
