/**
 * The owner agent's HTTP API (docs/protocol.md §13.3):
 *
 *   GET /v1/health                      public: {"ok": true, "role": "agent", "keyId", "assets"}
 *   GET /v1/apps/:id/ciphertext         signed: an app's age ciphertext by on-chain app id, with Range
 *   GET /v1/datasets/:id/ciphertext     signed: a dataset's, by on-chain dataset id
 *   GET /v1/assets/:id/ciphertext       signed: an asset's, by local id (32 hex digits)
 *
 * App and dataset ids are separate sequences on chain, hence the two routes. The ciphertext is served only to a caller whose verified node key
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

/**
 * Finds an asset: by on-chain id (decimal) within its kind (`apps` / `datasets` routes), or by
 * local id (`assets` route).
 */
export function findAsset(
  state: AgentState,
  scope: 'apps' | 'datasets' | 'assets',
  id: string,
): Asset | null {
  if (scope === 'assets') return /^[0-9a-f]{8,64}$/.test(id) ? state.getAsset(id) : null;
  if (!/^[0-9]{1,78}$/.test(id)) return null;
  return state.getAssetByChainId(scope === 'apps' ? 'app' : 'dataset', id);
}

export function agentRoutes(opts: AgentServerOptions): Route[] {
  const lookup = (scope: 'apps' | 'datasets' | 'assets', id: string): Asset => {
    const a = findAsset(opts.state, scope, id);
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
      path: '/v1/apps/:id/ciphertext',
      auth: 'signed',
      authorize: async (caller, req) => {
        const asset = findAsset(opts.state, 'apps', req.params.id);
        // Unknown assets fall through to the handler's 404 only for authorized callers; an
        // unauthorized caller learns nothing about which ids exist.
        if (!asset || asset.status === 'revoked') return false;
        return opts.authorize({ caller, asset });
      },
      handler: (req) => {
        const asset = lookup('apps', req.params.id);
        return {
          file: asset.path,
          etag: toHex(asset.ciphertextSha256),
          contentType: 'application/octet-stream',
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/datasets/:id/ciphertext',
      auth: 'signed',
      authorize: async (caller, req) => {
        const asset = findAsset(opts.state, 'datasets', req.params.id);
        // Unknown assets fall through to the handler's 404 only for authorized callers; an
        // unauthorized caller learns nothing about which ids exist.
        if (!asset || asset.status === 'revoked') return false;
        return opts.authorize({ caller, asset });
      },
      handler: (req) => {
        const asset = lookup('datasets', req.params.id);
        return {
          file: asset.path,
          etag: toHex(asset.ciphertextSha256),
          contentType: 'application/octet-stream',
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/assets/:id/ciphertext',
      auth: 'signed',
      authorize: async (caller, req) => {
        const asset = findAsset(opts.state, 'assets', req.params.id);
        // Unknown assets fall through to the handler's 404 only for authorized callers; an
        // unauthorized caller learns nothing about which ids exist.
        if (!asset || asset.status === 'revoked') return false;
        return opts.authorize({ caller, asset });
      },
      handler: (req) => {
        const asset = lookup('assets', req.params.id);
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
