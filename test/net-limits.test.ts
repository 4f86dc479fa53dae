/**
 * The HTTP server's limits from the attacker's side (docs/protocol.md §13.1, issue 13 item 2):
 * slow and idle connections, bodies where none is taken, connection caps, and unauthorised
 * keys flooding the replay cache. Loopback only; the honest client connects from 127.0.0.2 so
 * that per-address caps on the attacker's 127.0.0.1 do not apply to it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { isFerryError } from '../src/kernel/index.ts';
import {
  createHttpServer,
  createPeerClient,
  Ed25519Signer,
  ReplayCache,
  signRequest,
} from '../src/net/index.ts';

const HONEST = '127.0.0.2';

/** GET from the honest address; resolves with status and body. */
function honestGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: HONEST, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw attacker socket from 127.0.0.1; `closed` resolves with what the server sent before closing. */
function attacker(port: number, first: string | Buffer): { socket: Socket; closed: Promise<string> } {
  const socket = connect({ host: '127.0.0.1', port });
  let got = '';
  socket.on('data', (d) => {
    got += d.toString('latin1');
  });
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(got)));
  socket.write(first);
  return { socket, closed };
}

let child: ChildProcess;
let port = 0;

before(async () => {
  child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--disable-warning=ExperimentalWarning',
      join(import.meta.dirname, 'helpers', 'net-limits-server.ts'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
});

after(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

test('300 slow-body and idle connections are refused or timed out; memory stays bounded; an honest request succeeds', async () => {
  const rss = async () => (JSON.parse((await honestGet(port, '/v1/rss')).body) as { rss: number }).rss;
  const before = await rss();
  const MiB = 1 << 20;
  const conns: { kind: string; closed: Promise<string> }[] = [];
  for (let i = 0; i < 100; i++) {
    // The reproduction of finding 9: a body of 1 MiB − 1 to a GET that takes none, then silence.
    const a = attacker(port, `GET /v1/health HTTP/1.1\r\nhost: x\r\ncontent-length: ${MiB - 1}\r\n\r\n`);
    a.socket.write(Buffer.alloc(MiB - 1, 0x41));
    conns.push({ kind: 'body-on-get', closed: a.closed });
  }
  for (let i = 0; i < 100; i++) {
    // Headers that never end.
    conns.push({
      kind: 'idle-headers',
      closed: attacker(port, 'GET /v1/health HTTP/1.1\r\nhost: x\r\n').closed,
    });
  }
  for (let i = 0; i < 100; i++) {
    // A body within the route's limit, sent too slowly to finish.
    const a = attacker(port, 'POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: 4096\r\n\r\n');
    a.socket.write(Buffer.alloc(100, 0x42));
    conns.push({ kind: 'slow-body', closed: a.closed });
  }
  const answers = await Promise.all(conns.map(async (c) => ({ kind: c.kind, got: await c.closed })));
  // Every connection was closed by the server (the client never closes), the body on a GET with
  // 413 before it was read, the others by the header and request timeouts (408).
  // (A connection reset while the attacker is still writing can drop the answer on its side.)
  for (const a of answers) {
    if (a.kind === 'body-on-get') assert.match(a.got, /^HTTP\/1\.1 413 |^$/, a.kind);
    else assert.match(a.got, /^HTTP\/1\.1 408 |^$/, a.kind);
  }
  const ok = await honestGet(port, '/v1/health');
  assert.equal(ok.status, 200);
  const grown = (await rss()) - before;
  // Buffering the bodies would hold 100 MiB; the server read none of them.
  assert.ok(grown < 48 * MiB, `server RSS grew by ${Math.round(grown / MiB)} MiB`);
});

test('a body on a route that takes none is refused from the headers, before it is sent', async () => {
  // Only the headers are sent: a server that waited for the declared body would never answer.
  const a = attacker(port, 'GET /v1/health HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n');
  const got = await a.closed;
  assert.match(got, /^HTTP\/1\.1 413 /);
  assert.match(got, /PEER_PAYLOAD_TOO_LARGE/);
  assert.match(got, /connection: close/i);
  const chunked = attacker(port, 'GET /v1/health HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n');
  assert.match(await chunked.closed, /^HTTP\/1\.1 413 /);
  const over = attacker(port, 'POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-length: 4097\r\n\r\n');
  assert.match(await over.closed, /^HTTP\/1\.1 413 /);
});

test('connections beyond the per-address cap are dropped; another address is still served', async () => {
  const server = createHttpServer({
    maxConnectionsPerAddress: 10,
    routes: [{ method: 'GET', path: '/v1/health', auth: 'public', handler: () => ({ json: { ok: true } }) }],
  });
  await server.start();
  try {
    const socks = Array.from({ length: 30 }, () => attacker(server.port, ''));
    await Promise.all(socks.map((s) => new Promise((r) => s.socket.once('connect', r))));
    let dropped = 0;
    await Promise.race([
      Promise.all(socks.map((s) => s.closed.then(() => dropped++))),
      new Promise<void>((r) => {
        const tick = setInterval(() => {
          if (dropped >= 20) {
            clearInterval(tick);
            r();
          }
        }, 10);
      }),
    ]);
    assert.equal(dropped, 20);
    assert.equal(server.connections, 10);
    assert.equal((await honestGet(server.port, '/v1/health')).status, 200);
    for (const s of socks) s.socket.destroy();
  } finally {
    await server.stop();
  }
});

test('unauthorised keys flooding nonces do not fill the replay cache; a flooding authorised key is limited alone', async () => {
  const alice = Ed25519Signer.generate().signer;
  const bob = Ed25519Signer.generate().signer;
  const allowed = new Set([alice, bob].map((s) => Buffer.from(s.keyId).toString('hex')));
  const replay = new ReplayCache({ maxEntries: 1000, maxPerKey: 40 });
  const server = createHttpServer({
    replay,
    addressRate: { perSecond: 1, burst: 10_000 },
    keyRate: { perSecond: 1, burst: 30 },
    routes: [
      {
        method: 'GET',
        path: '/v1/secret',
        auth: 'signed',
        authorize: (caller) => allowed.has(caller.keyIdHex),
        handler: () => ({ json: { ok: true } }),
      },
    ],
  });
  await server.start();
  try {
    // 300 strangers, each with a fresh key and a valid signature: refused, and not recorded.
    for (let i = 0; i < 300; i++) {
      const s = createPeerClient({ baseUrl: server.url, signer: Ed25519Signer.generate().signer });
      await assert.rejects(
        s.json('GET', '/v1/secret', z.any(), { signed: true }),
        (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && (e.details as { status: number }).status === 403,
      );
    }
    assert.equal(replay.size, 0);
    // Alice floods with her authorised key: she is limited (429), her nonces bounded per key…
    const a = createPeerClient({ baseUrl: server.url, signer: alice });
    let limited = 0;
    for (let i = 0; i < 60; i++) {
      try {
        await a.json('GET', '/v1/secret', z.any(), { signed: true });
      } catch (e) {
        assert.ok(isFerryError(e, 'PEER_RATE_LIMITED'), String(e));
        limited++;
      }
    }
    assert.ok(limited >= 25, `limited ${limited}`);
    assert.ok(replay.countFor(Buffer.from(alice.keyId).toString('hex')) <= 40);
    // …and bob is served.
    const b = createPeerClient({ baseUrl: server.url, signer: bob });
    assert.deepEqual(await b.json('GET', '/v1/secret', z.any(), { signed: true }), { ok: true });
    // A replayed authorised request is still refused.
    const headers = signRequest(bob, { method: 'GET', path: '/v1/secret' });
    const first = await createPeerClient({ baseUrl: server.url }).json('GET', '/v1/secret', z.any(), {
      headers,
    });
    assert.deepEqual(first, { ok: true });
    await assert.rejects(
      createPeerClient({ baseUrl: server.url }).json('GET', '/v1/secret', z.any(), { headers }),
      (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && /replay/.test(e.hints.join()),
    );
  } finally {
    await server.stop();
  }
});

test('the replay cache expires entries incrementally and bounds each key', () => {
  const c = new ReplayCache({ maxEntries: 10, maxPerKey: 3 });
  assert.equal(c.checkAndAdd('k1:a', 100, 0), true);
  assert.equal(c.checkAndAdd('k1:b', 200, 0), true);
  assert.equal(c.checkAndAdd('k1:c', 300, 0), true);
  assert.throws(
    () => c.checkAndAdd('k1:d', 300, 0),
    (e) => isFerryError(e, 'PEER_RATE_LIMITED'),
  );
  assert.equal(c.checkAndAdd('k2:a', 300, 0), true);
  assert.equal(c.checkAndAdd('k1:a', 150, 50), false);
  // At 100 only k1:a has expired: one slot for k1 again, the others kept.
  assert.equal(c.checkAndAdd('k1:d', 400, 100), true);
  assert.equal(c.checkAndAdd('k1:b', 400, 150), false);
  assert.equal(c.size, 4);
  c.sweep(1000);
  assert.equal(c.size, 0);
  assert.equal(c.countFor('k1'), 0);
});
