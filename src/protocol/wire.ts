/**
 * Messages about a task attempt that several parties read over HTTP (docs/protocol.md §12).
 */
import { z } from 'zod';

/** Answer of the executor's GET /v1/tasks/:id/attempts/:n/enclave: the enclave's public keys. */
export const EnclaveKeysSchema = z.object({
  x25519Pub: z.string().regex(/^[0-9a-f]{64}$/),
  ed25519Pub: z.string().regex(/^[0-9a-f]{64}$/),
  evidenceHash: z.string().regex(/^[0-9a-f]{64}$/),
});
