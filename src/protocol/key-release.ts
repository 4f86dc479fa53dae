/**
 * The key-release statement (docs/protocol.md §13.4): what an owner agent signs with the asset
 * owner's EVM account when it delivers a sealed file key to an executor, and what the executor
 * checks before it stores the delivery.
 *
 *   releaseHash = SHA-256(enc || ciphertext)          (the value recorded on chain)
 *   digest      = SHA-256(canonical ["ferry/key-release/v1", {
 *                   chainId, tasks (20 bytes), taskId, attempt, assetKind, assetId, releaseHash }])
 *   signature   = EIP-191 personal_sign over the 32 raw digest bytes (65 bytes, r || s || v)
 *
 * The transport is untrusted: the executor recovers the signer from the signature and accepts
 * the delivery only when it is the asset's on-chain owner (checked by the caller).
 */
import { createHash } from 'node:crypto';
import { type Address, type Hex, isAddress, recoverMessageAddress } from 'viem';
import { FerryError, fromHex, hashTagged, toHex } from '../kernel/index.ts';

export const KEY_RELEASE_TAG = 'ferry/key-release/v1';

export type KeyReleaseStatement = {
  chainId: bigint;
  /** The Tasks contract address. */
  tasks: Address;
  taskId: bigint;
  attempt: number;
  assetKind: 'app' | 'dataset';
  assetId: bigint;
  /** SHA-256(enc || ciphertext), 32 bytes. */
  releaseHash: Uint8Array;
};

/** SHA-256(enc || ciphertext) of a sealed key: the release hash recorded on chain. */
export function releaseHashOf(enc: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(enc).update(ciphertext).digest());
}

/** The digest an owner signs; throws INVALID_ARGUMENT on a malformed statement. */
export function keyReleaseDigest(s: KeyReleaseStatement): Uint8Array {
  if (!isAddress(s.tasks, { strict: false })) {
    throw new FerryError('INVALID_ARGUMENT', 'tasks: expected a 20-byte address', {
      hints: [`got: ${s.tasks}`],
    });
  }
  if (!Number.isSafeInteger(s.attempt) || s.attempt < 1) {
    throw new FerryError('INVALID_ARGUMENT', 'attempt: expected an integer >= 1', {
      hints: [`got: ${String(s.attempt)}`],
    });
  }
  if (s.assetKind !== 'app' && s.assetKind !== 'dataset') {
    throw new FerryError('INVALID_ARGUMENT', 'assetKind: expected app or dataset', {
      hints: [`got: ${String(s.assetKind)}`],
    });
  }
  if (!(s.releaseHash instanceof Uint8Array) || s.releaseHash.length !== 32) {
    throw new FerryError('INVALID_ARGUMENT', 'releaseHash: expected 32 bytes');
  }
  return hashTagged(KEY_RELEASE_TAG, {
    chainId: s.chainId,
    tasks: fromHex(s.tasks.slice(2).toLowerCase(), 'tasks', 20),
    taskId: s.taskId,
    attempt: s.attempt,
    assetKind: s.assetKind,
    assetId: s.assetId,
    releaseHash: s.releaseHash,
  });
}

/** What signs: a viem local account or a wallet client with one. */
export type MessageSigner = { signMessage(args: { message: { raw: Uint8Array } }): Promise<Hex> };

/** Signs a statement with an EVM account (EIP-191 over the raw digest). */
export async function signKeyRelease(signer: MessageSigner, s: KeyReleaseStatement): Promise<Hex> {
  return signer.signMessage({ message: { raw: keyReleaseDigest(s) } });
}

/**
 * The address that signed a statement; throws KEY_DELIVERY_REFUSED when the signature is
 * malformed or cannot be recovered (a well-formed signature by anyone recovers to some address:
 * the caller compares it with the expected signer).
 */
export async function recoverKeyReleaseSigner(s: KeyReleaseStatement, signature: string): Promise<Address> {
  if (!/^0x[0-9a-f]{130}$/i.test(signature)) {
    throw new FerryError('KEY_DELIVERY_REFUSED', 'the key delivery signature is malformed', {
      hints: ['expected: 0x followed by 130 hex digits (65 bytes)'],
    });
  }
  try {
    return await recoverMessageAddress({
      message: { raw: keyReleaseDigest(s) },
      signature: signature as Hex,
    });
  } catch (e) {
    throw new FerryError('KEY_DELIVERY_REFUSED', 'the key delivery signature cannot be recovered', {
      cause: e,
      hints: [`releaseHash: ${toHex(s.releaseHash)}`],
    });
  }
}
