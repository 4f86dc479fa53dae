/**
 * Helpers for the enclave suites: a sim root and attester on disk, an owner that encrypts an
 * asset with age and releases its file key sealed (HPKE) to an enclave, as an owner agent does,
 * and the task commitments an enclave is created for.
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
import { X25519Recipient } from '../src/crypto/age/x25519.ts';
import { hpkeSeal } from '../src/crypto/hpke.ts';
import type { EnclaveHandle, SealedKey } from '../src/enclave/handle.ts';
import { encodeCanonical } from '../src/kernel/index.ts';
import { checkCommitments, type TaskCommitments } from '../src/protocol/commitments.ts';
import { keyReleaseInfo } from '../src/protocol/release-info.ts';

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

/**
 * Seals a file key to an enclave as an owner agent does: the info binds the commitments hash
 * (by default the one the enclave reported), the evidence hash and the asset.
 */
export async function sealFor(
  h: EnclaveHandle,
  assetId: bigint,
  assetKind: 'app' | 'dataset',
  fileKey: Uint8Array,
  commitments: Uint8Array = h.commitmentsHash,
): Promise<SealedKey> {
  const info = keyReleaseInfo({ commitments, evidenceHash: h.evidenceHash, assetId, assetKind });
  const { enc, ciphertext } = await hpkeSeal(h.x25519Pub, fileKey, info);
  return { assetId, assetKind, enc, ciphertext };
}

/** SHA-256 of the canonical CBOR array of the args (TaskCreated.inputHash). */
export const inputHashOf = (args: string[]) => sha256(encodeCanonical(args));

/** The X25519 public key of an `age1...` recipient. */
export const recipientKey = (recipient: string) => new X25519Recipient(recipient).publicKey;

/** Task commitments for a test task; the requester's recipient is the result recipient. */
export function commitmentsFor(o: {
  app: Uint8Array;
  datasets: { id: bigint; ciphertext: Uint8Array }[];
  args?: string[];
  recipient: string;
  chainId?: bigint;
  taskId?: bigint;
  attempt?: number;
  appId?: bigint;
  seed?: Uint8Array;
}): TaskCommitments {
  return checkCommitments({
    chainId: o.chainId ?? 31337n,
    taskId: o.taskId ?? 9n,
    attempt: o.attempt ?? 1,
    seed: o.seed ?? randomSeed(),
    appId: o.appId ?? 1n,
    appMeasurement: sha256(o.app),
    inputHash: inputHashOf(o.args ?? []),
    resultRecipient: recipientKey(o.recipient),
    datasets: o.datasets.map((d) => ({ id: d.id, ciphertextHash: sha256(d.ciphertext) })),
  });
}

export function requester(): { identity: string; recipient: string } {
  return generateX25519Identity();
}

export const randomSeed = () => new Uint8Array(randomBytes(32));
