/**
 * The requester's last step: fetch the result of a completed task, audit the task from the
 * chain (src/audit) including the result ciphertext's hash, and decrypt the result with the
 * profile's age identity. Also builds the receipt bundle `task run --receipt` saves.
 */
import { type AuditReport, type ReceiptBundle, verifyTaskFromChain } from '../audit/index.ts';
import type { Tpm2VerifierOptions } from '../attestation/index.ts';
import type { ChainReader, FerryContracts } from '../chain/index.ts';
import { decrypt } from '../crypto/age/index.ts';
import { FerryError, toFerryError } from '../kernel/index.ts';
import { createPeerClient } from '../net/index.ts';
import type { ProfileSecrets } from '../profile/index.ts';

/** Whom the requester trusts for evidence when it audits or re-appraises an attempt. */
export type RequesterTrust = {
  /** Trusted simulation roots (Ed25519 public keys), needed to appraise `sim` evidence. */
  simRoots?: Uint8Array[];
  /** TPM trust; absent when no tpm2 CA is trusted (tpm2 evidence then cannot be appraised). */
  tpm2?: Tpm2VerifierOptions;
};

/** Fetches the result ciphertext from the executor (public route), bounded. */
export async function fetchResult(location: string, signal?: AbortSignal): Promise<Uint8Array> {
  const base = location.replace(/\/v1\/tasks\/.*$/, '');
  const peer = createPeerClient({ baseUrl: base, timeoutMs: 30_000 });
  return peer.bytes('GET', location.slice(base.length), { signal, maxBytes: 64 << 20 });
}

export type Finished = {
  report: AuditReport;
  /** The decrypted result; null when it could not be fetched or opened. */
  plaintext: Uint8Array | null;
  ciphertext: Uint8Array | null;
  bundle: ReceiptBundle | null;
  /** Why the result could not be fetched or opened, if so. */
  resultError: FerryError | null;
};

export async function finishTask(p: {
  chain: ChainReader;
  chainId: number;
  contracts: FerryContracts;
  taskId: bigint;
  secrets: ProfileSecrets;
  /** Whom the audit trusts for evidence. */
  trust: RequesterTrust;
  signal?: AbortSignal;
}): Promise<Finished> {
  // First pass finds the result location (and fails fast on a task that did not complete).
  const first = await verifyTaskFromChain(p.chain, p.taskId, {
    ...p.trust,
    chainId: p.chainId,
    signal: p.signal,
  });
  let ciphertext: Uint8Array | null = null;
  let resultError: FerryError | null = null;
  if (first.resultLocation) {
    try {
      ciphertext = await fetchResult(first.resultLocation, p.signal);
    } catch (e) {
      resultError = toFerryError(e);
    }
  }
  let report = first;
  if (ciphertext) {
    report = await verifyTaskFromChain(p.chain, p.taskId, {
      ...p.trust,
      chainId: p.chainId,
      signal: p.signal,
      resultCiphertext: ciphertext,
      evidence:
        first.evidence && first.enclave
          ? {
              bytes: first.evidence,
              x25519Pub: first.enclave.x25519Pub,
              ed25519Pub: first.enclave.ed25519Pub,
            }
          : undefined,
    });
  }
  let plaintext: Uint8Array | null = null;
  if (ciphertext && report.verified) {
    try {
      plaintext = await decrypt([p.secrets.ageIdentity], ciphertext);
    } catch (e) {
      resultError = new FerryError('AGE_NO_MATCH', 'the result cannot be opened with this profile', {
        cause: e,
        hints: ['the result is sealed to the requester of the task; use its --profile'],
      });
    }
  }
  const bundle: ReceiptBundle | null =
    report.receiptBytes && report.signature && report.evidence && report.enclave && report.attempt !== null
      ? {
          chainId: p.chainId,
          contracts: p.contracts,
          taskId: p.taskId,
          attempt: report.attempt,
          receipt: report.receiptBytes,
          signature: report.signature,
          evidence: report.evidence,
          x25519Pub: report.enclave.x25519Pub,
          ed25519Pub: report.enclave.ed25519Pub,
          resultHash: report.resultHash!,
          resultLocation: report.resultLocation ?? '',
        }
      : null;
  return { report, plaintext, ciphertext, bundle, resultError };
}
