/**
 * The HTTP transport end to end on 127.0.0.1: signed requests, authorization, replay,
 * Range serving, error mapping, aborts and the server lifecycle.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { FerryError, isFerryError } from '../src/kernel/index.ts';
import {
  createHttpServer,
  createPeerClient,
  Ed25519Signer,
  type HttpServer,
  parseJsonBody,
  signRequest,
} from '../src/net/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-net-'));
const big = join(dir, 'big.bin');
const BIG_SIZE = 3 * 1024 * 1024 + 17;
const bigBytes = randomBytes(BIG_SIZE);
writeFileSync(big, bigBytes);

const allowed = Ed25519Signer.generate().signer;
const stranger = Ed25519Signer.generate().signer;
let handlerAborted = false;
let server: HttpServer;

before(async () => {
  server = createHttpServer({
    routes: [
      { method: 'GET', path: '/v1/health', auth: 'public', handler: () => ({ json: { ok: true } }) },
      {
        method: 'POST',
        path: '/v1/echo/:id',
        auth: 'signed',
        authorize: (caller) => caller.keyIdHex === Buffer.from(allowed.keyId).toString('hex'),
        maxBodyBytes: 1024,
        handler: (req) => ({
          json: {
            id: req.params.id,
            caller: req.caller?.keyIdHex,
            body: parseJsonBody(req, z.object({ n: z.number() })),
          },
        }),
      },
      {
        method: 'GET',
        path: '/v1/file',
        auth: 'signed',
        authorize: () => true,
        handler: () => ({ file: big, etag: 'abc' }),
      },
      { method: 'GET', path: '/v1/public-file', auth: 'public', handler: () => ({ file: big }) },
      {
        method: 'GET',
        path: '/v1/missing',
        auth: 'public',
        handler: () => {
          throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: ['id: 7'] });
        },
      },
      {
        method: 'GET',
        path: '/v1/bug',
        auth: 'public',
        handler: () => {
          throw new Error('secret detail that must not leak');
        },
      },
      {
        method: 'GET',
        path: '/v1/slow',
        auth: 'public',
        handler: async (req) => {
          await new Promise<void>((resolve) => {
            req.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          handlerAborted = req.signal.aborted;
          return { json: {} };
        },
      },
    ],
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
  });
  await server.start();
  await server.start(); // idempotent
});

after(async () => {
  await server.stop();
  await server.stop(); // idempotent
  rmSync(dir, { recursive: true, force: true });
});

test('public JSON endpoint and 404 / 405', async () => {
  const c = createPeerClient({ baseUrl: server.url });
  assert.deepEqual(await c.json('GET', '/v1/health', z.object({ ok: z.boolean() })), { ok: true });
  await assert.rejects(c.json('GET', '/v1/nope', z.any()), (e) => isFerryError(e, 'PEER_NOT_FOUND'));
  await assert.rejects(c.json('DELETE', '/v1/health', z.any()), (e) => isFerryError(e, 'PEER_BAD_REQUEST'));
  await assert.rejects(c.json('GET', '/v1/health', z.object({ ok: z.string() })), (e) =>
    isFerryError(e, 'PEER_PROTOCOL'),
  );
});

test('signed route: accepted key, refused key, unsigned request', async () => {
  const ok = createPeerClient({ baseUrl: server.url, signer: allowed });
  const r = await ok.json('POST', '/v1/echo/a%20b?x=1', z.any(), { signed: true, body: { n: 5 } });
  assert.deepEqual(r, { id: 'a b', caller: Buffer.from(allowed.keyId).toString('hex'), body: { n: 5 } });
  const no = createPeerClient({ baseUrl: server.url, signer: stranger });
  await assert.rejects(
    no.json('POST', '/v1/echo/a', z.any(), { signed: true, body: { n: 5 } }),
    (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && (e.details as { status: number }).status === 403,
  );
  await assert.rejects(
    ok.json('POST', '/v1/echo/a', z.any(), { body: { n: 5 } }),
    (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && (e.details as { status: number }).status === 401,
  );
  await assert.rejects(ok.json('POST', '/v1/echo/a', z.any(), { signed: true, body: { n: 'five' } }), (e) =>
    isFerryError(e, 'PEER_BAD_REQUEST'),
  );
  await assert.rejects(
    ok.json('POST', '/v1/echo/a', z.any(), { signed: true, body: { n: 1, pad: 'x'.repeat(2000) } }),
    (e) =>
      isFerryError(e, 'PEER_PAYLOAD_TOO_LARGE') &&
      (e.details as { status: number }).status === 413 &&
      /too large/.test(e.message),
  );
});

function rawPost(path: string, body: Buffer, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: 'POST', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a captured signed request cannot be replayed or retargeted', async () => {
  const body = Buffer.from('{"n":1}');
  const headers = signRequest(allowed, { method: 'POST', path: '/v1/echo/x', body });
  const h = { ...headers, 'content-type': 'application/json' };
  assert.equal(await rawPost('/v1/echo/x', body, h), 200);
  assert.equal(await rawPost('/v1/echo/x', body, h), 401);
  const fresh = signRequest(allowed, { method: 'POST', path: '/v1/echo/x', body });
  assert.equal(await rawPost('/v1/echo/y', body, { ...fresh }), 401);
  assert.equal(await rawPost('/v1/echo/x', Buffer.from('{"n":2}'), { ...fresh }), 401);
  assert.equal(await rawPost('/v1/echo/x', body, { ...fresh }), 200);
});

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(p);
  return Buffer.concat(parts);
}

test('Range: whole file, ranges, suffix, open end, unsatisfiable, If-Range', async () => {
  const c = createPeerClient({ baseUrl: server.url, signer: allowed });
  const whole = await c.stream('/v1/file', { signed: true });
  assert.equal(whole.status, 200);
  assert.equal(whole.size, BIG_SIZE);
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.ok((await collect(whole.body)).equals(bigBytes));

  const mid = await c.stream('/v1/file', { signed: true, range: { start: 1_000_000, end: 1_065_535 } });
  assert.equal(mid.status, 206);
  assert.deepEqual(mid.range, { start: 1_000_000, end: 1_065_535 });
  assert.equal(mid.size, BIG_SIZE);
  assert.ok((await collect(mid.body)).equals(bigBytes.subarray(1_000_000, 1_065_536)));

  const tail = await c.stream('/v1/file', { signed: true, range: { start: BIG_SIZE - 10 } });
  assert.ok((await collect(tail.body)).equals(bigBytes.subarray(BIG_SIZE - 10)));

  await assert.rejects(c.stream('/v1/file', { signed: true, range: { start: BIG_SIZE } }), (e) =>
    isFerryError(e, 'PEER_RANGE_NOT_SATISFIABLE'),
  );
  // If-Range with a different validator: the server sends the whole file (200), and the client
  // refuses it because the range did not start at 0.
  await assert.rejects(
    c.stream('/v1/file', { signed: true, range: { start: 5 }, headers: { 'if-range': '"other"' } }),
    (e) => isFerryError(e, 'PEER_PROTOCOL'),
  );
  const same = await c.stream('/v1/file', {
    signed: true,
    range: { start: 5, end: 9 },
    headers: { 'if-range': '"abc"' },
  });
  assert.equal(same.status, 206);
  assert.ok((await collect(same.body)).equals(bigBytes.subarray(5, 10)));

  // Unsigned access to the signed file route is refused; the public one serves ranges too.
  await assert.rejects(c.stream('/v1/file'), (e) => isFerryError(e, 'PEER_UNAUTHORIZED'));
  const pub = await c.stream('/v1/public-file', { range: { start: 0, end: 0 } });
  assert.ok((await collect(pub.body)).equals(bigBytes.subarray(0, 1)));
});

test('errors: Ferry codes pass through, internal errors do not leak', async () => {
  const c = createPeerClient({ baseUrl: server.url });
  await assert.rejects(
    c.json('GET', '/v1/missing', z.any()),
    (e) => isFerryError(e, 'ASSET_NOT_FOUND') && e.hints.includes('peer: id: 7'),
  );
  await assert.rejects(
    c.json('GET', '/v1/bug', z.any()),
    (e) => isFerryError(e, 'PEER_PROTOCOL') && !JSON.stringify(e.toJSON()).includes('secret detail'),
  );
});

test('aborting a call aborts the handler; a stopped peer is PEER_UNAVAILABLE (exit 4)', async () => {
  const c = createPeerClient({ baseUrl: server.url });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(c.json('GET', '/v1/slow', z.any(), { signal: ac.signal }), (e) =>
    isFerryError(e, 'ABORTED'),
  );
  for (let i = 0; i < 50 && !handlerAborted; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(handlerAborted, true);

  const other = createHttpServer({ routes: [] });
  await other.start();
  const url = other.url;
  await other.stop();
  const gone = createPeerClient({ baseUrl: url, timeoutMs: 2000 });
  await assert.rejects(
    gone.json('GET', '/v1/health', z.any()),
    (e) => isFerryError(e, 'PEER_UNAVAILABLE') && e.exitCode === 4,
  );
});

test('start on a busy port fails with PEER_UNAVAILABLE and rolls back', async () => {
  const clash = createHttpServer({ routes: [], port: server.port });
  await assert.rejects(clash.start(), (e) => isFerryError(e, 'PEER_UNAVAILABLE'));
  assert.equal(clash.isStarted, false);
  await clash.stop();
});
