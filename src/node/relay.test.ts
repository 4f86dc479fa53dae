/**
 * The relay from the attacker's side: an owner agent that drips its ciphertext (a byte now and
 * then, which no idle timeout catches) or never answers cannot hold the executor's job; the
 * stream fails with PEER_UNAVAILABLE once the agent has used its deadline. An enclave that reads
 * slowly is not held against the agent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { FerryError } from '../kernel/index.ts';
import { Ed25519Signer } from '../net/index.ts';
import { CiphertextRelay } from './relay.ts';

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Sends one byte every 20 ms, forever (until the connection goes), with or without a length. */
function drip(length: boolean) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, length ? { 'content-length': '100000' } : {});
    const t = setInterval(() => res.write(Buffer.of(0x61)), 20);
    res.on('close', () => clearInterval(t));
  };
}

async function withRelay(deadlineMs: number, fn: (relay: CiphertextRelay) => Promise<void>) {
  const relay = new CiphertextRelay({
    signer: Ed25519Signer.generate().signer,
    endpointPolicy: { localNetwork: true },
    deadlineMs,
    log: quiet,
  });
  await relay.start();
  try {
    await fn(relay);
  } finally {
    await relay.stop();
  }
}

test('relay: an agent dripping its ciphertext fails with PEER_UNAVAILABLE (length announced or not)', async () => {
  for (const length of [true, false]) {
    const agent = await upstream(drip(length));
    try {
      await withRelay(300, async (relay) => {
        const { url, token } = relay.issue({ baseUrl: agent.url, path: '/v1/datasets/1/ciphertext' });
        const res = await fetch(url);
        assert.equal(res.status, 200);
        await assert.rejects(res.arrayBuffer());
        const why = relay.failure(token) as FerryError;
        assert.equal(why?.code, 'PEER_UNAVAILABLE', `length announced: ${length}`);
        assert.match(why.message, /too slow/);
      });
    } finally {
      await agent.close();
    }
  }
});

test('relay: an agent that never answers fails with PEER_UNAVAILABLE, not after the idle timeout only', async () => {
  // Headers never come, but the connection is open: the idle timeout (30 s) is not what ends it.
  const agent = await upstream(() => {});
  try {
    await withRelay(300, async (relay) => {
      const { url, token } = relay.issue({ baseUrl: agent.url, path: '/v1/datasets/1/ciphertext' });
      const res = await fetch(url);
      assert.equal(res.status, 502);
      assert.equal(await res.text(), 'PEER_UNAVAILABLE\n');
      assert.equal(relay.failure(token)?.code, 'PEER_UNAVAILABLE');
    });
  } finally {
    await agent.close();
  }
});

test('relay: an enclave reading slowly is not counted against a prompt agent', async () => {
  const data = randomBytes(8 << 20);
  const agent = await upstream((_req, res) => {
    res.writeHead(200, { 'content-length': String(data.length) });
    res.end(data);
  });
  try {
    // 8 MiB take the agent 128 ms at the minimum rate, + 1 s base; the reader takes longer.
    await withRelay(1000, async (relay) => {
      const { url, token } = relay.issue({ baseUrl: agent.url, path: '/v1/datasets/1/ciphertext' });
      const res = await fetch(url);
      const reader = res.body!.getReader();
      const parts: Uint8Array[] = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parts.push(value);
        await new Promise((r) => setTimeout(r, parts.length < 40 ? 60 : 0));
      }
      assert.ok(Buffer.concat(parts).equals(data));
      assert.equal(relay.failure(token), null);
    });
  } finally {
    await agent.close();
  }
});

test('relay: without a length, an agent above the minimum rate is not cut at the base deadline', async () => {
  // 4 KiB every 20 ms (200 KiB/s), chunked, for 1.2 s, four times the 300 ms base: the budget
  // grows with the bytes received. (Small chunks: the relay never waits for the enclave here.)
  const piece = randomBytes(4 * 1024);
  const agent = await upstream((_req, res) => {
    res.writeHead(200);
    let n = 0;
    const t = setInterval(() => {
      res.write(piece);
      if (++n === 60) {
        clearInterval(t);
        res.end();
      }
    }, 20);
    res.on('close', () => clearInterval(t));
  });
  try {
    await withRelay(300, async (relay) => {
      const { url, token } = relay.issue({ baseUrl: agent.url, path: '/v1/datasets/1/ciphertext' });
      const res = await fetch(url);
      assert.equal((await res.arrayBuffer()).byteLength, 60 * piece.length);
      assert.equal(relay.failure(token), null);
    });
  } finally {
    await agent.close();
  }
});
