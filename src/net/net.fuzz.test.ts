// Fuzz: the signed request envelope (verifyRequest) and HTTP request targets (the path / query
// parsing of the server's dispatcher) (issue 13 item 5). Every failure must be a coded
// FerryError; over HTTP, every error answer must carry a listed code other than INTERNAL.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { assertExercised, fuzz, fuzzAsync, mutate, type Rng, summary } from '../../test/helpers/fuzz.ts';
import { createLogger, ERROR_CODES } from '../kernel/index.ts';
import { Ed25519Signer } from './ed25519.ts';
import { ReplayCache, signRequest, verifyRequest } from './envelope.ts';
import { parseContentRange, parseRange } from './range.ts';
import { createHttpServer, type HttpServer } from './server.ts';

const signer = new Ed25519Signer(new Uint8Array(32).fill(7));
const NOW = 1_800_000_000_000;

type Req = { method: string; path: string; body: Uint8Array; headers: Record<string, string> };

const enc = (s: string) => new TextEncoder().encode(s);
const lat = (b: Uint8Array) => Buffer.from(b).toString('latin1');

function signed(method: string, path: string, body: Uint8Array): Req {
  return { method, path, body, headers: signRequest(signer, { method, path, body, now: NOW }) };
}

test('fuzz verifyRequest: mutated headers, method, path and body', (t) => {
  const seeds = [
    signed('GET', '/v1/health', new Uint8Array(0)),
    signed('POST', '/v1/tasks/7/keys?x=1', enc('{"n":1}')),
    signed('put', '/v1/assets/%2F..%2F', new Uint8Array(100).fill(0xff)),
  ];
  const gen = (rng: Rng, s: readonly Req[]): Req => {
    const x = rng.pick(s);
    const r: Req = { ...x, headers: { ...x.headers } };
    switch (rng.below(5)) {
      case 0:
        r.method = lat(mutate(rng, enc(r.method)));
        break;
      case 1:
        r.path = lat(mutate(rng, enc(r.path)));
        break;
      case 2:
        r.body = mutate(rng, r.body);
        break;
      default: {
        const k = rng.pick(Object.keys(r.headers));
        if (rng.below(6) === 0) delete r.headers[k];
        else r.headers[k] = lat(mutate(rng, enc(r.headers[k] as string)));
      }
    }
    return r;
  };
  const stats = fuzz('verifyRequest', { seed: 0xe4e1, iterations: 3000, seeds, generate: gen }, (r) =>
    // A fresh cache per input: the seeds verify, every mutation is judged on its own.
    verifyRequest(r, { replay: new ReplayCache(), now: NOW }),
  );
  assertExercised('verifyRequest', stats);
  t.diagnostic(summary(stats));
});

test('fuzz parseRange / parseContentRange: a range it returns lies inside the file', (t) => {
  const seeds = [
    'bytes=0-99',
    'bytes=-500',
    'bytes=100-',
    'bytes 0-99/1000',
    'bytes 5-9/*',
    'bytes=9007199254740991-',
  ].map(enc);
  let k = 0;
  const stats = fuzz('range', { seed: 0x4a9e, iterations: 3000, seeds }, (b) => {
    const header = lat(b);
    const size = [0, 1, 100, 1000, 2 ** 40][k++ % 5] as number;
    const r = parseRange(header, size);
    if (r !== null && r !== 'unsatisfiable') {
      assert.ok(
        Number.isSafeInteger(r.start) && r.start >= 0 && r.start <= r.end && r.end < size,
        `${JSON.stringify(header)} on ${size} bytes gave ${JSON.stringify(r)}`,
      );
    }
    const c = parseContentRange(header);
    if (c !== null) assert.ok(c.start >= 0 && c.end >= 0);
  });
  t.diagnostic(summary(stats));
});

// ---- HTTP request targets -------------------------------------------------------------------

let server: HttpServer;
before(async () => {
  server = createHttpServer({
    log: createLogger({ level: 'error', write: () => {} }),
    routes: [
      { method: 'GET', path: '/v1/health', auth: 'public', handler: () => ({ json: { ok: true } }) },
      {
        method: 'GET',
        path: '/v1/tasks/:id/attempts/:n',
        auth: 'public',
        handler: (req) => ({ json: { id: req.params.id, n: req.params.n, q: req.query.get('q') } }),
      },
      {
        method: 'POST',
        path: '/v1/keys',
        auth: 'signed',
        authorize: () => true,
        handler: () => ({ json: {} }),
      },
    ],
  });
  await server.start();
});
after(async () => {
  await server.stop();
});

/** Sends one raw HTTP/1.1 request with `target` and returns the status and body. */
function raw(method: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    s.end(Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1'));
  });
}

const TARGETS = [
  '/v1/health',
  '/v1/tasks/7/attempts/1?q=%2F%00',
  '/v1/tasks/%ff/attempts/..',
  '/v1/keys',
  'http://localhost/v1/health',
  '*',
];

// The fuzz report's finding 3 (`GET //`, `//[`, `http://[`, `http://x:99999/v1/health` answered
// 500 INTERNAL): the dispatcher now accepts origin-form targets only and answers 400
// PEER_BAD_REQUEST to the rest.
test('fuzz HTTP request targets: no error answer is INTERNAL', async (t) => {
  const stats = await fuzzAsync(
    'request target',
    {
      seed: 0x7a27,
      iterations: 300,
      seeds: ['//', ...TARGETS],
      generate: (rng, s) => {
        // Printable, non-space bytes only: anything else is refused by the HTTP parser itself.
        const b = mutate(rng, enc(rng.pick(s)), s.map(enc)).map((c) => (c > 0x20 && c < 0x7f ? c : 0x2f));
        return lat(b);
      },
    },
    async (target) => {
      const { status, body } = await raw(methodFor(target), target);
      // Node's HTTP parser answers a request line it cannot parse with a bare 400 (no handler ran).
      if (status === 400 && body === '') return;
      assert.ok(status > 0, `no answer to ${JSON.stringify(target)}`);
      if (status >= 400) {
        const code = (JSON.parse(body || '{}') as { error?: { code?: string } }).error?.code;
        assert.ok(
          code && Object.hasOwn(ERROR_CODES, code),
          `status ${status} without a listed code: ${body}`,
        );
        assert.notEqual(code, 'INTERNAL', `${JSON.stringify(target)} answers ${status} ${body}`);
      }
    },
  );
  t.diagnostic(summary(stats));
});

/** A method per target (HEAD answers carry no body, so they are left out). */
function methodFor(target: string): string {
  return ['GET', 'POST', 'PUT', 'DELETE'][target.length % 4] as string;
}

test('the HTTP target fuzz harness itself: well-formed targets are answered with listed codes', async () => {
  for (const target of TARGETS) {
    const { status, body } = await raw('GET', target);
    assert.ok(status > 0, target);
    if (status >= 400)
      assert.ok(Object.hasOwn(ERROR_CODES, JSON.parse(body).error.code), `${target}: ${body}`);
  }
  assert.equal((await raw('GET', '/v1/health')).status, 200);
});
