/**
 * The owner agent's HTTP API (docs/protocol.md §13.3):
 *
 *   GET /v1/health                      public: {"ok": true, "role": "agent", "keyId", "assets"}
 *   GET /v1/assets/:id/ciphertext       signed: the asset's age ciphertext, with HTTP Range
 *
 * `:id` is the asset's on-chain id (decimal) once registered, or its local id (32 hex digits
 * with at least one letter). The ciphertext is served only to a caller whose verified node key
 * the injected `authorize` accepts for that asset (the daemon's check: the key is the executor
 * of an attested task that uses the asset); revoked assets are never served. The ETag is the
 * ciphertext's SHA-256, so a client resuming with Range and If-Range cannot splice two files.
 */
import { FerryError, type Logger, toHex } from '../kernel/index.ts';
import { HttpServer, type ReplayCache, type Route, type VerifiedCaller } from '../net/index.ts';
import type { AgentState, Asset } from './state.ts';

export type CiphertextRequest = {
  caller: VerifiedCaller;
  asset: Asset;
};

export type AgentServerOptions = {
  state: AgentState;
  /** Decides whether a verified caller may read an asset's ciphertext. */
  authorize: (req: CiphertextRequest) => Promise<boolean>;
  /** The agent's own public signing key (hex), reported by /v1/health. */
  keyId?: string;
  host?: string;
  port?: number;
  log?: Logger;
  freshnessMs?: number;
  replay?: ReplayCache;
};

/** Finds an asset by on-chain id (decimal) or local id. */
export function findAsset(state: AgentState, id: string): Asset | null {
  if (/^[0-9]{1,78}$/.test(id)) return state.getAssetByChainId(id);
  if (/^[0-9a-f]{8,64}$/.test(id)) return state.getAsset(id);
  return null;
}

export function agentRoutes(opts: AgentServerOptions): Route[] {
  const lookup = (id: string): Asset => {
    const a = findAsset(opts.state, id);
    if (!a) throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: [`id: ${id.slice(0, 80)}`] });
    return a;
  };
  return [
    {
      method: 'GET',
      path: '/v1/health',
      auth: 'public',
      handler: () => ({
        json: { ok: true, role: 'agent', keyId: opts.keyId ?? null, assets: opts.state.listAssets().length },
      }),
    },
    {
      method: 'GET',
      path: '/v1/assets/:id/ciphertext',
      auth: 'signed',
      authorize: async (caller, req) => {
        const asset = findAsset(opts.state, req.params.id);
        // Unknown assets fall through to the handler's 404 only for authorized callers; an
        // unauthorized caller learns nothing about which ids exist.
        if (!asset || asset.status === 'revoked') return false;
        return opts.authorize({ caller, asset });
      },
      handler: (req) => {
        const asset = lookup(req.params.id);
        return {
          file: asset.path,
          etag: toHex(asset.ciphertextSha256),
          contentType: 'application/octet-stream',
        };
      },
    },
  ];
}

export function createAgentServer(opts: AgentServerOptions): HttpServer {
  return new HttpServer({
    routes: agentRoutes(opts),
    host: opts.host,
    port: opts.port,
    log: opts.log,
    freshnessMs: opts.freshnessMs,
    replay: opts.replay,
  });
}
