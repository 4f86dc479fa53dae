import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { isFerryError } from '../kernel/index.ts';
import { createPeerClient } from './client.ts';
import { guardedLookup, isPublicAddress, parseEndpoint, REFUSED_LOOKUP } from './endpoint.ts';
import { createHttpServer } from './server.ts';

const strict = { localNetwork: false };
const local = { localNetwork: true };

test('an endpoint is a bare http origin: paths, queries, fragments, userinfo and other schemes are refused', () => {
  for (const bad of [
    'http://peer.example.com/internal/admin/export?user=root&x=',
    'http://peer.example.com/admin',
    'http://peer.example.com?x=',
    'http://peer.example.com/?',
    'http://peer.example.com#',
    'http://peer.example.com/#frag',
    'http://root:pw@peer.example.com',
    'http://@peer.example.com',
    'https://peer.example.com',
    'file:///etc/passwd',
    'gopher://peer.example.com:70',
    'http://peer.example.com\\admin',
    'http:// peer.example.com',
    'peer.example.com:8080',
    '',
  ]) {
    for (const policy of [strict, local]) {
      assert.throws(
        () => parseEndpoint(bad, policy),
        (e) => isFerryError(e, 'PEER_ENDPOINT_REFUSED'),
        `${bad} (localNetwork ${policy.localNetwork})`,
      );
    }
  }
  assert.equal(parseEndpoint('http://peer.example.com', strict), 'http://peer.example.com');
  assert.equal(parseEndpoint('http://peer.example.com:8080/', strict), 'http://peer.example.com:8080');
  assert.equal(parseEndpoint('http://8.8.8.8:80', strict), 'http://8.8.8.8');
  assert.equal(parseEndpoint('http://[2001:4860::8888]:9000', strict), 'http://[2001:4860::8888]:9000');
});

test('loopback, private, link-local and other non-public destinations: refused unless localNetwork', () => {
  for (const host of [
    '127.0.0.1',
    '127.1.2.3',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '[::1]',
    '[::]',
    '[fe80::1]',
    '[fd00::1]',
    '[fc00::2]',
    '[ff02::1]',
    '[::ffff:127.0.0.1]',
    '[::ffff:a9fe:a9fe]',
    '[64:ff9b::a00:1]',
    '2130706433',
    '0x7f000001',
    '017700000001',
  ]) {
    const text = `http://${host}:8080`;
    assert.throws(
      () => parseEndpoint(text, strict),
      (e) => isFerryError(e, 'PEER_ENDPOINT_REFUSED') && e.hints.some((h) => /local-network/.test(h)),
      text,
    );
    assert.match(parseEndpoint(text, local), /^http:\/\//, text);
  }
  for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2001:4860:4860::8888'])
    assert.equal(isPublicAddress(a), true, a);
  for (const a of ['127.0.0.1', '::1', '::ffff:10.0.0.1', 'fe80::1', 'not-an-ip'])
    assert.equal(isPublicAddress(a), false, a);
});

function lookupOnce(
  host: string,
  policy: { localNetwork: boolean },
): Promise<{ err: NodeJS.ErrnoException | null; addrs: unknown }> {
  return new Promise((resolve) =>
    guardedLookup(policy)(host, { all: true }, (err, addrs) => resolve({ err, addrs })),
  );
}

test('a name is checked in the lookup the connection uses: resolving to loopback is refused', async () => {
  const refused = await lookupOnce('localhost', strict);
  assert.equal(refused.err?.code, REFUSED_LOOKUP);
  const allowed = await lookupOnce('localhost', local);
  assert.equal(allowed.err, null);
  assert.ok((allowed.addrs as { address: string }[]).some((a) => !isPublicAddress(a.address)));
});

test('the peer client applies the policy: a loopback peer is refused without localNetwork, reached with it', async () => {
  let hits = 0;
  const server = createHttpServer({
    routes: [
      {
        method: 'GET',
        path: '/v1/health',
        auth: 'public',
        handler: () => {
          hits++;
          return { json: { ok: true } };
        },
      },
    ],
  });
  await server.start();
  try {
    assert.throws(
      () => createPeerClient({ baseUrl: server.url, endpointPolicy: strict }),
      (e) => isFerryError(e, 'PEER_ENDPOINT_REFUSED'),
    );
    assert.throws(
      () => createPeerClient({ baseUrl: `${server.url}/x?y=`, endpointPolicy: local }),
      (e) => isFerryError(e, 'PEER_ENDPOINT_REFUSED'),
    );
    // A name that resolves to loopback gets past the text check and is refused at connect.
    const named = createPeerClient({ baseUrl: `http://localhost:${server.port}`, endpointPolicy: strict });
    await assert.rejects(named.json('GET', '/v1/health', z.any()), (e) =>
      isFerryError(e, 'PEER_ENDPOINT_REFUSED'),
    );
    assert.equal(hits, 0);
    const ok = createPeerClient({ baseUrl: server.url, endpointPolicy: local });
    assert.deepEqual(await ok.json('GET', '/v1/health', z.any()), { ok: true });
    assert.equal(hits, 1);
  } finally {
    await server.stop();
  }
});
