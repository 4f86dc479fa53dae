/**
 * The HPKE `info` of a key release (docs/protocol.md §6.2): what a sealed file key is bound to.
 *
 *   info = ["ferry/key-release-info/v2", {assetId, assetKind, commitments: bytes(32),
 *            evidenceHash: bytes(32)}]   (tagged deterministic CBOR)
 *
 * `commitments` is the attempt's commitmentsHash (commitments.ts), so a key opens only in an
 * enclave created for this task's app, input, result recipient and datasets, with this
 * evidence. Version 2 replaces v1's (chainId, taskId, attempt), which the commitments contain.
 * Pure; loaded by the enclave runtime.
 */
import { describe, encodeTagged, FerryError } from '../kernel/index.ts';

export const KEY_RELEASE_INFO_TAG = 'ferry/key-release-info/v2';

export type AssetKind = 'dataset' | 'app';

export type KeyReleaseInfoParams = {
  /** commitmentsHash of the attempt's task commitments. */
  commitments: Uint8Array;
  /** SHA-256 of the enclave's evidence (`ferry/evidence/v1`), as committed on chain. */
  evidenceHash: Uint8Array;
  assetId: bigint;
  assetKind: AssetKind;
};

const U64 = (1n << 64n) - 1n;

/** The info bytes. Throws INVALID_ARGUMENT naming the bad field. */
export function keyReleaseInfo(p: KeyReleaseInfoParams): Uint8Array {
  if (p === null || typeof p !== 'object') {
    throw new FerryError('INVALID_ARGUMENT', 'keyReleaseInfo expects an object', {
      hints: [`got: ${describe(p)}`],
    });
  }
  for (const f of ['commitments', 'evidenceHash'] as const) {
    const v = p[f];
    if (!(v instanceof Uint8Array) || v.length !== 32) {
      throw new FerryError('INVALID_ARGUMENT', `${f} must be 32 bytes`, {
        hints: ['expected: Uint8Array(32)', `got: ${describe(v)}`],
      });
    }
  }
  if (typeof p.assetId !== 'bigint' || p.assetId < 0n || p.assetId > U64) {
    throw new FerryError('INVALID_ARGUMENT', 'assetId must be a bigint in [0, 2^64)', {
      hints: [`got: ${typeof p.assetId === 'bigint' ? p.assetId.toString() : describe(p.assetId)}`],
    });
  }
  if (p.assetKind !== 'dataset' && p.assetKind !== 'app') {
    throw new FerryError('INVALID_ARGUMENT', 'assetKind must be "dataset" or "app"', {
      hints: [`got: ${describe(p.assetKind)}`],
    });
  }
  return Uint8Array.from(
    encodeTagged(KEY_RELEASE_INFO_TAG, {
      assetId: p.assetId,
      assetKind: p.assetKind,
      commitments: p.commitments,
      evidenceHash: p.evidenceHash,
    }),
  );
}
