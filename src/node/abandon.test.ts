import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ed25519Signer, HttpServer } from '../net/index.ts';
import { abandonCause } from './abandon.ts';
import { CiphertextRelay } from './relay.ts';

const SECRET = 'internal-admin: token for db=prod expired (user root)';

test('an abandonment cause never carries the peer text: a hostile asset endpoint answers 401 with its own words', async () => {
  const hostile = new HttpServer({
    routes: [
      {
        method: 'GET',
        path: '/v1/datasets/:id/ciphertext',
        auth: 'public',
        handler: () => ({
          status: 401,
          json: { error: { code: 'PEER_UNAUTHORIZED', message: SECRET, hints: [SECRET] } },
        }),
      },
    ],
  });
  await hostile.start();
  const relay = new CiphertextRelay({
    signer: Ed25519Signer.generate().signer,
    endpointPolicy: { localNetwork: true },
  });
  await relay.start();
  try {
    const { url, token } = relay.issue({ baseUrl: hostile.url, path: '/v1/datasets/4/ciphertext' });
    const res = await fetch(url);
    assert.equal(res.status, 502);
    const failure = relay.failure(token);
    assert.ok(failure);
    assert.match(failure.message, /token for db=prod/); // the peer's words are in the error…
    const cause = abandonCause(failure.code, failure.message);
    assert.equal(cause, 'PEER_UNAUTHORIZED: an input could not be fetched from its owner');
    assert.doesNotMatch(cause, /prod|root|admin/); // …and not in what goes on chain
  } finally {
    await relay.stop();
    await hostile.stop();
  }
});

test('a relay without localNetwork refuses an asset endpoint on loopback, with a path or a query', () => {
  const relay = new CiphertextRelay({ signer: Ed25519Signer.generate().signer });
  return relay.start().then(async () => {
    try {
      for (const baseUrl of [
        'http://127.0.0.1:9',
        'http://169.254.169.254',
        'http://peer.example.com/admin/secrets?x=',
      ]) {
        assert.throws(
          () => relay.issue({ baseUrl, path: '/v1/apps/4/ciphertext' }),
          (e) => (e as { code?: string }).code === 'PEER_ENDPOINT_REFUSED',
          baseUrl,
        );
      }
    } finally {
      await relay.stop();
    }
  });
});

test('abandonCause: unknown or forged codes become INTERNAL; every cause is code plus fixed words', () => {
  assert.equal(abandonCause('NOT A CODE: user root'), 'INTERNAL: the run could not finish');
  assert.equal(abandonCause('__proto__'), 'INTERNAL: the run could not finish');
  assert.equal(
    abandonCause('PEER_ENDPOINT_REFUSED'),
    'PEER_ENDPOINT_REFUSED: an input endpoint on chain is not one this node calls',
  );
  assert.equal(abandonCause('ENCLAVE_CRASHED'), 'ENCLAVE_CRASHED: the enclave could not finish the run');
  // The input named by our own error is kept (kind and number only), nothing after it.
  assert.equal(
    abandonCause('AGE_PAYLOAD_INVALID', 'dataset 3: peer said: user root'),
    'AGE_PAYLOAD_INVALID: dataset 3: an input did not decrypt',
  );
  assert.equal(
    abandonCause('PEER_UNAUTHORIZED', 'peer refused the request: dataset 3: root'),
    'PEER_UNAUTHORIZED: an input could not be fetched from its owner',
  );
});
