/**
 * A peer that drips its answer cannot hold a bounded read (the idle timeout alone would not stop
 * it: one byte per interval keeps the socket busy): the read fails with PEER_UNAVAILABLE at its
 * overall deadline, retryable, while a prompt peer is read as before.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { createPeerClient } from './client.ts';

let server: Server;
let base: string;
const timers = new Set<NodeJS.Timeout>();

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/fast') {
      res.end('{"ok":true}');
      return;
    }
    // Declares 1 MiB and sends one byte every 100 ms: never idle, never done.
    res.writeHead(200, { 'content-length': String(1 << 20), 'content-type': 'application/json' });
    const t = setInterval(() => res.write('x'), 100);
    timers.add(t);
    res.on('close', () => {
      clearInterval(t);
      timers.delete(t);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test('a dripping answer fails at the read deadline with PEER_UNAVAILABLE (bytes and json)', async () => {
  const peer = createPeerClient({ baseUrl: base, timeoutMs: 5_000, deadlineMs: 800 });
  for (const call of [
    () => peer.bytes('GET', '/drip', { maxBytes: 1 << 20, deadlineMs: 800 }),
    () =>
      peer.json('GET', '/drip', { safeParse: () => ({ success: true, data: 1 }) } as never, {
        deadlineMs: 800,
      }),
  ]) {
    await assert.rejects(call, (e) => isFerryError(e, 'PEER_UNAVAILABLE') && /too slow/.test(e.message));
  }
});

test('the caller aborting stays ABORTED; a prompt peer is read', async () => {
  const peer = createPeerClient({ baseUrl: base });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(
    () => peer.bytes('GET', '/drip', { signal: ac.signal }),
    (e) => isFerryError(e, 'ABORTED'),
  );
  assert.deepEqual(new TextDecoder().decode(await peer.bytes('GET', '/fast')), '{"ok":true}');
});
