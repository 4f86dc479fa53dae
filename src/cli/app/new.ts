/**
 * `ferry app new NAME --lang c|rust|assemblyscript [--dir DIR]`: writes a template app project
 * (src/cli/app/templates/<lang>/, files ending in .tmpl, `{{NAME}}` replaced) that reads its
 * datasets (stdin for one, /data/NAME for several) and arguments and writes its result on
 * stdout the way Ferry runs apps (docs/protocol.md §10.3), with a README giving the build line
 * and the `ferry app run` line. Never overwrites: the directory must not exist.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../../kernel/index.ts';
import { optionalString, requireString } from '../args.ts';
import { type Command, defineCommand } from '../command.ts';

export const APP_LANGS = ['c', 'rust', 'assemblyscript'] as const;
export type AppLang = (typeof APP_LANGS)[number];

const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), 'templates');
/** A lower-case name usable as a file name, a crate name and a JSON string without escaping. */
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;

async function templateFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await templateFiles(dir, rel)));
    else if (e.name.endsWith('.tmpl')) out.push(rel);
  }
  return out.sort();
}

/**
 * Writes the template for `lang` into `dir` (created; it must not exist) with `name`
 * substituted; returns the files written, relative to `dir`.
 */
export async function writeAppTemplate(name: string, lang: string, dir: string): Promise<string[]> {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new FerryError(
      'USAGE_INVALID_ARGUMENT',
      `invalid app name ${JSON.stringify(String(name)).slice(0, 80)}`,
      {
        hints: ['a name is 1 to 64 characters [a-z0-9_-], starting with a letter'],
      },
    );
  }
  if (!(APP_LANGS as readonly string[]).includes(lang)) {
    throw new FerryError(
      'USAGE_INVALID_ARGUMENT',
      `invalid --lang ${JSON.stringify(String(lang)).slice(0, 40)}`,
      {
        hints: [`expected one of: ${APP_LANGS.join(', ')}`],
      },
    );
  }
  const src = join(TEMPLATES, lang);
  const files = await templateFiles(src);
  await mkdir(dirname(dir), { recursive: true });
  try {
    await mkdir(dir); // not recursive: fails when anything (a file, a link) is already there
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FerryError('APP_DIR_EXISTS', `${dir} already exists`, {
        hints: ['ferry app new never overwrites: choose another NAME or --dir'],
      });
    }
    throw new FerryError('IO_WRITE_FAILED', `cannot create ${dir}`, { cause: e });
  }
  const written: string[] = [];
  for (const rel of files) {
    const target = join(dir, rel.slice(0, -'.tmpl'.length));
    const text = (await readFile(join(src, rel), 'utf8')).replaceAll('{{NAME}}', name);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text, { flag: 'wx' });
    written.push(relative(dir, target));
  }
  return written;
}

const command: Command = defineCommand({
  name: 'app new',
  summary: 'write a template app (C, Rust or AssemblyScript) that reads datasets and arguments',
  usage: 'app new NAME --lang c|rust|assemblyscript [--dir DIR] [--json]',
  description: `
Writes a new app project into DIR (default ./NAME; it must not exist, nothing is overwritten):
the source of a WASI preview 1 app in the language chosen and a README with the line that
builds NAME.wasm and the ferry app run line that tests it. The app reads its datasets (stdin
when the task has one, /data/NAME for each argument when it has several) and prints a JSON
result on stdout. NAME: 1 to 64 characters [a-z0-9_-], starting with a letter. Exit status 2
for a bad NAME or --lang, or an existing DIR.`,
  options: {
    lang: { type: 'string', value: 'LANG', description: 'c, rust or assemblyscript' },
    dir: { type: 'string', value: 'DIR', description: 'the project directory (default ./NAME)' },
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const name = ctx.positionals[0];
    const lang = requireString(ctx, 'lang');
    const dir = resolve(ctx.cwd, optionalString(ctx, 'dir') ?? name);
    const files = await writeAppTemplate(name, lang, dir);
    return {
      json: { name, lang, dir, files },
      text: `${dir}: ${files.join(', ')}\nbuild it as its README.md says, then: ferry app run ${name}.wasm --data FILE`,
    };
  },
});

export default command;
