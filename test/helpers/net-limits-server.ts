/**
 * A Ferry HTTP server in its own process for test/net-limits.test.ts, so that its memory can be
 * measured apart from the attacking clients': short timeouts, a public GET without a body, a
 * POST with a 4 KiB body, and `GET /v1/rss` reporting its resident set. Prints `{"port": N}`.
 */
import { createHttpServer } from '../../src/net/index.ts';

const server = createHttpServer({
  requestTimeoutMs: 2_000,
  headersTimeoutMs: 1_000,
  idleTimeoutMs: 3_000,
  maxConnectionsPerAddress: 1_000,
  routes: [
    { method: 'GET', path: '/v1/health', auth: 'public', handler: () => ({ json: { ok: true } }) },
    {
      method: 'GET',
      path: '/v1/rss',
      auth: 'public',
      handler: () => {
        globalThis.gc?.();
        return { json: { rss: process.memoryUsage().rss } };
      },
    },
    {
      method: 'POST',
      path: '/v1/keys',
      auth: 'public',
      maxBodyBytes: 4096,
      handler: (req) => ({ json: { bytes: req.body.length } }),
    },
  ],
});
await server.start();
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
const stop = () => {
  server.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
