/**
 * The node daemon's HTTP API (docs/protocol.md §13.4):
 *
 *   GET  /v1/health                               public
 *   GET  /v1/tasks/:id/attempts/:n/evidence       public: the encoded ferry/evidence/v1 object
 *   GET  /v1/tasks/:id/attempts/:n/attestation-result  public: a verifier's signed result (CBOR)
 *   GET  /v1/tasks/:id/attempts/:n/enclave        public: {x25519Pub, ed25519Pub, evidenceHash} (hex),
 *                                                 the keys bound into the evidence's report_data
 *   GET  /v1/tasks/:id/attempts/:n/result         public: the result ciphertext (age, to the
 *                                                 requester), with HTTP Range
 *   POST /v1/tasks/:id/attempts/:n/keys           a sealed file key, signed (in the body) by the
 *                                                 asset owner's EVM account
 *
 * Evidence and results are public because they protect themselves: evidence is checked
 * against its hash on chain, the result is encrypted to the requester and its hash is in the
 * signed receipt. A key delivery needs no transport authentication: it carries the asset owner's
 * EIP-191 signature over the key-release statement (src/protocol/key-release.ts), which the injected
 * `verifyDelivery` checks (the daemon's check: the signer is the asset's on-chain owner, for an
 * attested or running attempt this node executes); a refusal is 403 with the stable code
 * KEY_DELIVERY_REFUSED. An accepted delivery is stored once per (task, attempt, asset) before it
 * is acknowledged, then handed to `onKeys`.
 */
import { z } from 'zod';
import { FerryError, fromHex, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import { attemptNumber, taskKey } from '../daemon/index.ts';
import { HttpServer, parseJsonBody, type ReplayCache, type Route } from '../net/index.ts';
import type { KeyDelivery, NodeState } from './state.ts';

/** Body of POST /v1/tasks/:id/attempts/:n/keys. */
export const KeyDeliverySchema = z.object({
  /** On-chain asset id, decimal. */
  assetId: z.string().regex(/^[0-9]{1,78}$/),
  assetKind: z.enum(['dataset', 'app']),
  /** HPKE encapsulated key, 32 bytes hex. */
  enc: z.string().regex(/^[0-9a-f]{64}$/),
  /** HPKE ciphertext of the 16-byte file key (with its 16-byte tag), hex. */
  ciphertext: z.string().regex(/^[0-9a-f]{64}$/),
  /**
   * The asset owner's EIP-191 signature over the key-release statement, 0x + 130 hex. Optional
   * in the schema only so that an unsigned delivery is refused as such (403
   * KEY_DELIVERY_REFUSED) rather than as a malformed body.
   */
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]{130}$/)
    .optional(),
});

export type KeyDeliveryBody = z.infer<typeof KeyDeliverySchema>;

export type SealedKeyDelivery = {
  task: string;
  attempt: number;
  assetId: bigint;
  assetKind: 'dataset' | 'app';
  enc: Uint8Array;
  ciphertext: Uint8Array;
  /** The owner address that signed the delivery. */
  sender: string;
};

/** The stored form of a sealed key: assetKind byte (0 dataset, 1 app) || enc(32) || ciphertext. */
export function encodeSealed(d: {
  assetKind: 'dataset' | 'app';
  enc: Uint8Array;
  ciphertext: Uint8Array;
}): Uint8Array {
  const out = new Uint8Array(1 + d.enc.length + d.ciphertext.length);
  out[0] = d.assetKind === 'app' ? 1 : 0;
  out.set(d.enc, 1);
  out.set(d.ciphertext, 1 + d.enc.length);
  return out;
}

export function decodeSealed(k: KeyDelivery): SealedKeyDelivery {
  const b = k.sealed;
  if (b.length !== 1 + 32 + 32 || b[0] > 1) {
    throw new FerryError('STATE_UNAVAILABLE', 'stored sealed key is malformed', {
      hints: [`task ${k.task} attempt ${k.attempt}`],
    });
  }
  return {
    task: k.task,
    attempt: k.attempt,
    assetId: BigInt(k.asset.slice(k.asset.indexOf(':') + 1)),
    assetKind: b[0] === 1 ? 'app' : 'dataset',
    enc: b.subarray(1, 33),
    ciphertext: b.subarray(33),
    sender: k.sender,
  };
}

export type NodeServerOptions = {
  state: NodeState;
  /**
   * Checks a delivery and returns the signer's address (lowercase 0x-hex); throws
   * KEY_DELIVERY_REFUSED (or another FerryError) to refuse it.
   */
  verifyDelivery: (req: { task: string; attempt: number; body: KeyDeliveryBody }) => Promise<string>;
  /** Called after a new delivery is stored (not for repeats). Errors are logged, not returned. */
  onKeys?: (d: SealedKeyDelivery) => void | Promise<void>;
  /** The node's public request-signing key (hex), reported by /v1/health. */
  keyId?: string;
  host?: string;
  port?: number;
  log?: Logger;
  freshnessMs?: number;
  replay?: ReplayCache;
};

function params(p: Record<string, string>): { task: string; attempt: number } {
  try {
    return { task: taskKey(p.id), attempt: attemptNumber(p.n) };
  } catch (e) {
    throw new FerryError('PEER_BAD_REQUEST', 'bad task id or attempt in the path', { cause: e });
  }
}

export function nodeRoutes(opts: NodeServerOptions): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/health',
      auth: 'public',
      handler: () => ({ json: { ok: true, role: 'node', keyId: opts.keyId ?? null } }),
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id/attempts/:n/evidence',
      auth: 'public',
      handler: (req) => {
        const { task, attempt } = params(req.params);
        const a = opts.state.getAttempt(task, attempt);
        if (!a?.evidence) {
          throw new FerryError('PEER_NOT_FOUND', 'no evidence for this attempt here', {
            hints: [`task ${task} attempt ${attempt}`],
          });
        }
        return {
          bytes: a.evidence,
          contentType: 'application/cbor',
          headers: a.evidenceHash ? { 'ferry-evidence-hash': toHex(a.evidenceHash) } : undefined,
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id/attempts/:n/attestation-result',
      auth: 'public',
      handler: (req) => {
        const { task, attempt } = params(req.params);
        const v = opts.state.getVote(task, attempt);
        if (!v?.result) {
          throw new FerryError('PEER_NOT_FOUND', 'no attestation result for this attempt here', {
            hints: [`task ${task} attempt ${attempt}`],
          });
        }
        return { bytes: v.result, contentType: 'application/cbor' };
      },
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id/attempts/:n/enclave',
      auth: 'public',
      handler: (req) => {
        const { task, attempt } = params(req.params);
        const a = opts.state.getAttempt(task, attempt);
        if (!a?.evidence || !a.enclaveX25519 || !a.enclaveEd25519 || !a.evidenceHash) {
          throw new FerryError('PEER_NOT_FOUND', 'no enclave for this attempt here', {
            hints: [`task ${task} attempt ${attempt}`],
          });
        }
        return {
          json: {
            x25519Pub: toHex(a.enclaveX25519),
            ed25519Pub: toHex(a.enclaveEd25519),
            evidenceHash: toHex(a.evidenceHash),
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/tasks/:id/attempts/:n/result',
      auth: 'public',
      handler: (req) => {
        const { task, attempt } = params(req.params);
        const a = opts.state.getAttempt(task, attempt);
        if (!a?.resultPath) {
          throw new FerryError('PEER_NOT_FOUND', 'no result for this attempt here', {
            hints: [`task ${task} attempt ${attempt}`],
          });
        }
        return { file: a.resultPath, etag: a.resultHash ? toHex(a.resultHash) : undefined };
      },
    },
    {
      method: 'POST',
      path: '/v1/tasks/:id/attempts/:n/keys',
      auth: 'public',
      maxBodyBytes: 4096,
      handler: async (req) => {
        const { task, attempt } = params(req.params);
        const body = parseJsonBody(req, KeyDeliverySchema);
        let sender: string;
        try {
          sender = await opts.verifyDelivery({ task, attempt, body });
        } catch (e) {
          const fe = toFerryError(e);
          if (fe.code !== 'KEY_DELIVERY_REFUSED') throw fe;
          opts.log?.warn('key delivery refused', { task, attempt, message: fe.message });
          return {
            status: 403,
            json: { error: { code: fe.code, message: fe.message, hints: [...fe.hints] } },
          };
        }
        const enc = fromHex(body.enc, 'enc', 32);
        const ciphertext = fromHex(body.ciphertext, 'ciphertext', 32);
        const { fresh } = opts.state.saveKeyDelivery({
          task,
          attempt,
          asset: `${body.assetKind}:${BigInt(body.assetId)}`,
          sender,
          sealed: encodeSealed({ assetKind: body.assetKind, enc, ciphertext }),
          signature: body.signature?.toLowerCase() ?? null,
        });
        if (fresh && opts.onKeys) {
          try {
            await opts.onKeys({
              task,
              attempt,
              assetId: BigInt(body.assetId),
              assetKind: body.assetKind,
              enc,
              ciphertext,
              sender,
            });
          } catch (e) {
            opts.log?.warn('key delivery handler failed', { task, attempt, error: e as Error });
          }
        }
        return { json: { accepted: true, fresh } };
      },
    },
  ];
}

export function createNodeServer(opts: NodeServerOptions): HttpServer {
  return new HttpServer({
    routes: nodeRoutes(opts),
    host: opts.host,
    port: opts.port,
    log: opts.log,
    freshnessMs: opts.freshnessMs,
    replay: opts.replay,
  });
}
