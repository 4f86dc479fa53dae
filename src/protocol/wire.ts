/**
 * Messages about a task attempt that several parties read over HTTP (docs/protocol.md §12).
 */
import { z } from 'zod';
import type { PeerClient } from '../net/index.ts';

/** Answer of the executor's GET /v1/tasks/:id/attempts/:n/enclave: the enclave's public keys. */
export const EnclaveKeysSchema = z.object({
  x25519Pub: z.string().regex(/^[0-9a-f]{64}$/),
  ed25519Pub: z.string().regex(/^[0-9a-f]{64}$/),
  evidenceHash: z.string().regex(/^[0-9a-f]{64}$/),
});

/** Largest evidence document a party downloads (bytes). */
export const MAX_EVIDENCE_BYTES = 1 << 20;

/** What the executor's API serves for an attempt (docs/protocol.md §12). */
export type AttemptResource = 'evidence' | 'enclave' | 'result' | 'keys';

/** The path of an attempt's resource on the executor's API: `/v1/tasks/ID/attempts/N/WHAT`. */
export function attemptPath(
  taskId: bigint | number | string,
  attempt: number,
  what: AttemptResource,
): string {
  return `/v1/tasks/${taskId}/attempts/${attempt}/${what}`;
}

/**
 * Where an executor whose API is at `base` serves an attempt's evidence or result: what it
 * commits on chain as EvidenceCommitted's `evidenceLocation` and TaskCompleted's
 * `resultLocation` (`BASE/v1/tasks/ID/attempts/N/evidence`); `executorBaseUrl` reads it back.
 */
export function attemptLocation(
  base: string,
  taskId: bigint | number | string,
  attempt: number,
  what: 'evidence' | 'result',
): string {
  return `${base}${attemptPath(taskId, attempt, what)}`;
}

/** The executor's base URL from an EvidenceCommitted location (`BASE/v1/tasks/ID/attempts/N/evidence`). */
export function executorBaseUrl(evidenceLocation: string): string {
  return evidenceLocation.replace(/\/v1\/tasks\/.*$/, '');
}

/** What an executor serves for an attempt: its evidence and the enclave's public keys. */
export type ServedEvidence = { evidenceBytes: Uint8Array; x25519Pub: Uint8Array; ed25519Pub: Uint8Array };

/**
 * Fetches an attempt's evidence (`GET …/evidence`, at most MAX_EVIDENCE_BYTES) and its enclave's
 * public keys (`GET …/enclave`) from the executor, over the caller's client (its transport,
 * signer and deadlines). Throws the peer client's PEER_* errors; the
 * bytes are not checked here (appraiseAttempt does, §9.5).
 */
export async function fetchServedEvidence(
  peer: PeerClient,
  taskId: bigint,
  attempt: number,
  signal?: AbortSignal,
): Promise<ServedEvidence> {
  const evidenceBytes = await peer.bytes('GET', attemptPath(taskId, attempt, 'evidence'), {
    signal,
    maxBytes: MAX_EVIDENCE_BYTES,
  });
  const keys = await peer.json('GET', attemptPath(taskId, attempt, 'enclave'), EnclaveKeysSchema, { signal });
  return {
    evidenceBytes,
    x25519Pub: Uint8Array.from(Buffer.from(keys.x25519Pub, 'hex')),
    ed25519Pub: Uint8Array.from(Buffer.from(keys.ed25519Pub, 'hex')),
  };
}
