/**
 * Configuration: flags, then FERRY_* environment variables, then the config file, then
 * defaults; validated once with a zod schema into a frozen object.
 *
 * A key `fooBar` is read from the flag value `fooBar`, the variable `FERRY_FOO_BAR`, and the
 * JSON config file's `fooBar`. Environment values are strings: schemas use `z.coerce` where
 * they need numbers or booleans.
 */
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { FerryError } from './errors.ts';

export function envName(key: string): string {
  return 'FERRY_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The command-line flag of a config key: `enclaveSlots` -> `enclave-slots`. */
export function flagName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** FERRY_HOME, default ~/.ferry. */
export function ferryHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.FERRY_HOME && env.FERRY_HOME.length > 0 ? env.FERRY_HOME : join(homedir(), '.ferry');
}

/**
 * The directory of Node's compile cache for `name` (`cli`, `enclave`), or null for none: under
 * the user's own cache directory ($XDG_CACHE_HOME, else ~/.cache), never a shared one such as
 * /tmp. A cache entry is compiled code that Node runs in place of its source file, so whoever
 * can write the directory runs code in every process that uses it — another local user who
 * created /tmp/<name> first would have run code in this user's CLI (its keys) and enclaves.
 * Created 0700; null when it is not a directory of this user's that only this user can write.
 */
export function compileCacheDir(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const base = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  const dir = join(base, 'ferry', `compile-cache-${name}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return null;
    return dir;
  } catch {
    return null;
  }
}

export type LoadConfigOptions = {
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file; a missing file is fine unless `fileRequired`. */
  file?: string;
  fileRequired?: boolean;
  defaults?: Record<string, unknown>;
};

export function readConfigFile(path: string, required: boolean): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FerryError('CONFIG_FILE_UNREADABLE', `cannot read config file ${path}`, { cause: e });
  }
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new FerryError('CONFIG_INVALID', `config file ${path} is not a JSON object`, { cause: e });
  }
}

export function loadConfig<S extends z.ZodObject>(
  schema: S,
  opts: LoadConfigOptions = {},
): Readonly<z.infer<S>> {
  const env = opts.env ?? process.env;
  const fromFile = opts.file ? readConfigFile(opts.file, opts.fileRequired ?? false) : {};
  const merged: Record<string, unknown> = { ...(opts.defaults ?? {}) };
  for (const key of Object.keys(schema.shape)) {
    const flag = opts.flags?.[key];
    const ev = env[envName(key)];
    if (flag !== undefined) merged[key] = flag;
    else if (ev !== undefined && ev !== '') merged[key] = ev;
    else if (fromFile[key] !== undefined) merged[key] = fromFile[key];
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    throw new FerryError('CONFIG_INVALID', 'invalid configuration', {
      hints: parsed.error.issues.map(
        (i) =>
          `${i.path.join('.') || '(root)'}: ${i.message} (flag --${flagName(String(i.path[0] ?? ''))}, env ${envName(String(i.path[0] ?? ''))})`,
      ),
    });
  }
  return Object.freeze(parsed.data) as Readonly<z.infer<S>>;
}
