/**
 * Helpers for the enclave suites: a sim root and attester on disk, an owner that encrypts an
 * asset with age and releases its file key sealed (HPKE) to an enclave, as an owner agent does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSimRoot,
  encodeSimAttester,
  issueSimAttester,
  type SimRoot,
} from '../src/attestation/sim/index.ts';
import {
  encrypt,
  generateX25519Identity,
  parseIdentity,
  parseRecipient,
  readFileKey,
} from '../src/crypto/age/index.ts';
import { hpkeSeal, keyReleaseInfo } from '../src/crypto/hpke.ts';
import type { EnclaveHandle, SealedKey } from '../src/enclave/handle.ts';

export const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

export type Fixture = { dir: string; root: SimRoot; attesterFile: string; cleanup: () => Promise<void> };

export async function fixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-enclave-'));
  const root = createSimRoot();
  const attesterFile = join(dir, 'sim-attester.cbor');
  await writeFile(attesterFile, encodeSimAttester(issueSimAttester(root)), { mode: 0o600 });
  return { dir, root, attesterFile, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** An owner's asset: plaintext encrypted with age to the owner's own X25519 identity. */
export async function ownerEncrypt(
  dir: string,
  name: string,
  plaintext: Uint8Array,
): Promise<{ path: string; ciphertext: Uint8Array; fileKey: Uint8Array }> {
  const { identity, recipient } = generateX25519Identity();
  const ciphertext = await encrypt([parseRecipient(recipient)], plaintext);
  const fileKey = await readFileKey([parseIdentity(identity)], ciphertext);
  const path = join(dir, name);
  await writeFile(path, ciphertext);
  return { path, ciphertext, fileKey };
}

/** Seals a file key to an enclave as an owner agent does (info binds task, attempt, evidence, asset). */
export async function sealFor(
  h: EnclaveHandle,
  t: { chainId: bigint; taskId: bigint; attempt: number },
  assetId: bigint,
  assetKind: 'app' | 'dataset',
  fileKey: Uint8Array,
): Promise<SealedKey> {
  const info = keyReleaseInfo({ ...t, evidenceHash: h.evidenceHash, assetId, assetKind });
  const { enc, ciphertext } = await hpkeSeal(h.x25519Pub, fileKey, info);
  return { assetId, assetKind, enc, ciphertext };
}

export function requester(): { identity: string; recipient: string } {
  return generateX25519Identity();
}

export const randomSeed = () => new Uint8Array(randomBytes(32));
