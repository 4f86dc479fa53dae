/**
 * Profiles: a person's keys under `$FERRY_HOME/profiles/<name>/` (docs/protocol.md §13.5).
 *
 *     profile.json   public parts: {version, name, address, signingPublicKey, ageRecipient, createdAt}
 *     evm.key        the EVM account private key, `0x` + 64 hex digits and a newline   (0600)
 *     signing.key    the Ed25519 request/receipt signing seed, 64 hex digits            (0600)
 *     age.key        an age identity file (`AGE-SECRET-KEY-1...`), usable with `age -i` (0600)
 *
 * The directory is created 0700 and appears atomically (written under a temporary name and
 * renamed), so a crash never leaves half a profile. Secret files that are readable by group or
 * others are refused (PROFILE_INVALID), as ssh does. Nothing here prints or logs a secret.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { z } from 'zod';
import { generateX25519Identity, X25519Identity } from '../crypto/age/index.ts';
import { FerryError, fromHex, toHex } from '../kernel/index.ts';
import { Ed25519Signer } from '../net/index.ts';

export const PROFILE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export const ProfilePublicSchema = z.object({
  version: z.literal(1),
  name: z.string().regex(PROFILE_NAME_RE),
  address: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  signingPublicKey: z.string().regex(/^[0-9a-f]{64}$/),
  ageRecipient: z.string().startsWith('age1'),
  createdAt: z.string(),
});

export type ProfilePublic = z.infer<typeof ProfilePublicSchema>;

export type ProfileSecrets = {
  profile: ProfilePublic;
  /** `0x`-prefixed 32-byte hex; pass to viem's privateKeyToAccount, never print. */
  evmPrivateKey: `0x${string}`;
  signer: Ed25519Signer;
  /** The 32-byte Ed25519 seed (for signTagged); the caller wipes it when done. */
  signingSecretKey: Uint8Array;
  ageIdentity: X25519Identity;
};

export function profilesDir(home: string): string {
  return join(home, 'profiles');
}

export function profileDir(home: string, name: string): string {
  checkName(name);
  return join(profilesDir(home), name);
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !PROFILE_NAME_RE.test(name)) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', 'invalid profile name', {
      hints: [
        'expected: 1-32 characters a-z, 0-9, _ and -, starting with a letter or digit',
        `got: ${String(name).slice(0, 40)}`,
      ],
    });
  }
}

export type CreateProfileOptions = {
  /** Import this EVM private key instead of generating one (e.g. a funded devnet account). */
  evmPrivateKey?: `0x${string}`;
  now?: Date;
};

/** Creates a profile with fresh keys. PROFILE_EXISTS when the name is taken. */
export function createProfile(home: string, name: string, opts: CreateProfileOptions = {}): ProfilePublic {
  const dir = profileDir(home, name);
  const root = profilesDir(home);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  if (exists(dir)) {
    throw new FerryError('PROFILE_EXISTS', `profile ${name} already exists`, {
      hints: [`path: ${dir}`, 'choose another name, or use the existing profile'],
    });
  }
  let evmKey: `0x${string}`;
  if (opts.evmPrivateKey !== undefined) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(opts.evmPrivateKey)) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', 'EVM private key must be 0x and 64 hex digits');
    }
    evmKey = opts.evmPrivateKey.toLowerCase() as `0x${string}`;
  } else {
    evmKey = generatePrivateKey();
  }
  const address = privateKeyToAccount(evmKey).address;
  const { signer, seed } = Ed25519Signer.generate();
  const age = generateX25519Identity();
  const createdAt = (opts.now ?? new Date()).toISOString();
  const pub: ProfilePublic = {
    version: 1,
    name,
    address,
    signingPublicKey: toHex(signer.keyId),
    ageRecipient: age.recipient,
    createdAt,
  };
  const tmp = join(root, `.tmp-${name}-${randomBytes(6).toString('hex')}`);
  try {
    mkdirSync(tmp, { mode: 0o700 });
    chmodSync(tmp, 0o700);
    const secret = (file: string, text: string) =>
      writeFileSync(join(tmp, file), text, { mode: 0o600, flag: 'wx' });
    secret('evm.key', `${evmKey}\n`);
    secret('signing.key', `${toHex(seed)}\n`);
    secret('age.key', `# created: ${createdAt}\n# public key: ${age.recipient}\n${age.identity}\n`);
    writeFileSync(join(tmp, 'profile.json'), `${JSON.stringify(pub, null, 2)}\n`, {
      mode: 0o644,
      flag: 'wx',
    });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (exists(dir)) {
      throw new FerryError('PROFILE_EXISTS', `profile ${name} already exists`, { hints: [`path: ${dir}`] });
    }
    throw new FerryError('IO_WRITE_FAILED', `cannot write profile ${name}`, {
      cause: e,
      hints: [`path: ${dir}`, (e as NodeJS.ErrnoException).code ?? ''],
    });
  } finally {
    seed.fill(0);
  }
  return pub;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The public parts of a profile. PROFILE_NOT_FOUND / PROFILE_INVALID. */
export function loadProfile(home: string, name: string): ProfilePublic {
  const dir = profileDir(home, name);
  let text: string;
  try {
    text = readFileSync(join(dir, 'profile.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FerryError('PROFILE_NOT_FOUND', `no profile named ${name}`, {
        hints: [`looked in: ${dir}`, `create it with: ferry profile create ${name}`],
      });
    }
    throw new FerryError('PROFILE_INVALID', `cannot read profile ${name}`, {
      cause: e,
      hints: [`path: ${dir}`],
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FerryError('PROFILE_INVALID', `profile ${name}: profile.json is not JSON`, { cause: e });
  }
  const r = ProfilePublicSchema.safeParse(value);
  if (!r.success || r.data.name !== name) {
    throw new FerryError('PROFILE_INVALID', `profile ${name}: profile.json is invalid`, {
      hints: r.success
        ? ['name does not match the directory']
        : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return r.data;
}

/** Every profile under the home, sorted by name (invalid ones are skipped). */
export function listProfiles(home: string): ProfilePublic[] {
  let names: string[];
  try {
    names = readdirSync(profilesDir(home));
  } catch {
    return [];
  }
  const out: ProfilePublic[] = [];
  for (const n of names.sort()) {
    if (!PROFILE_NAME_RE.test(n)) continue;
    try {
      out.push(loadProfile(home, n));
    } catch {
      // Not a profile (or damaged): `ferry profile show NAME` reports why.
    }
  }
  return out;
}

function readSecret(dir: string, file: string, name: string): string {
  const path = join(dir, file);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new FerryError('PROFILE_INVALID', `profile ${name} has no ${file}`, {
      cause: e,
      hints: [`path: ${path}`],
    });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new FerryError('PROFILE_INVALID', `profile ${name}: ${file} is readable by others`, {
      hints: [`path: ${path}`, `fix: chmod 600 ${path}`],
    });
  }
  return readFileSync(path, 'utf8');
}

/**
 * Loads a profile's secret keys and checks they match its public parts (PROFILE_INVALID
 * otherwise, without saying anything about the secret values).
 */
export function loadProfileSecrets(home: string, name: string): ProfileSecrets {
  const profile = loadProfile(home, name);
  const dir = profileDir(home, name);
  const evm = readSecret(dir, 'evm.key', name).trim();
  if (!/^0x[0-9a-f]{64}$/.test(evm))
    throw new FerryError('PROFILE_INVALID', `profile ${name}: evm.key is malformed`);
  const evmPrivateKey = evm as `0x${string}`;
  if (privateKeyToAccount(evmPrivateKey).address.toLowerCase() !== profile.address.toLowerCase()) {
    throw new FerryError(
      'PROFILE_INVALID',
      `profile ${name}: evm.key does not match the address in profile.json`,
    );
  }
  let signingSecretKey: Uint8Array;
  try {
    signingSecretKey = fromHex(readSecret(dir, 'signing.key', name).trim(), 'signing.key', 32);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'PROFILE_INVALID') throw e;
    throw new FerryError('PROFILE_INVALID', `profile ${name}: signing.key is malformed`);
  }
  const signer = new Ed25519Signer(signingSecretKey);
  if (toHex(signer.keyId) !== profile.signingPublicKey) {
    throw new FerryError('PROFILE_INVALID', `profile ${name}: signing.key does not match profile.json`);
  }
  const line = readSecret(dir, 'age.key', name)
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('AGE-SECRET-KEY-1'));
  if (!line) throw new FerryError('PROFILE_INVALID', `profile ${name}: age.key has no X25519 identity`);
  let ageIdentity: X25519Identity;
  try {
    ageIdentity = new X25519Identity(line);
  } catch {
    throw new FerryError('PROFILE_INVALID', `profile ${name}: age.key is malformed`);
  }
  if (ageIdentity.recipient.toString() !== profile.ageRecipient) {
    throw new FerryError('PROFILE_INVALID', `profile ${name}: age.key does not match profile.json`);
  }
  return { profile, evmPrivateKey, signer, signingSecretKey, ageIdentity };
}
