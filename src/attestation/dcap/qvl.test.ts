// qvl.ts: the same answers as @phala/dcap-qvl 0.3.9 (on the Intel samples, at many times, and on
// mutated quotes and collateral, with a warm cache and without), and the cache played against
// as an attacker would: a tampered quote after a valid one with the same chain, a revocation
// given later, collateral and certificates expiring, and many distinct chains against its bound.
// Revocation and expiry need CRLs and certificates nobody but Intel can sign for Intel's root,
// so those tests build a small DCAP PKI of their own (root, PCK CA, PCK leaf carrying the Intel
// sample's SGX extension, TCB signing key) and re-sign the SGX sample's quote and collateral.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type Collateral, Quote, QuoteVerifier, utils } from '@phala/dcap-qvl';
import { mutate, Rng } from '../../../test/helpers/fuzz.ts';
import {
  BoundedCache,
  cacheKey,
  DcapCache,
  keyOf,
  rawSignatureToDer,
  sealCollateral,
  verifyQuoteCached,
} from './qvl.ts';
import { intelSgxRootCaDer } from './roots.ts';

const V = new URL('../../../test/vectors/intel-dcap/', import.meta.url);
const AT = new Date('2025-07-01T00:00:00Z').getTime();
const KINDS = ['tdx', 'sgx'] as const;
const QUOTES = KINDS.map((k) => new Uint8Array(readFileSync(new URL(`${k}_quote`, V))));
const COLLS = KINDS.map(
  (k) => JSON.parse(readFileSync(new URL(`${k}_quote_collateral.json`, V), 'utf8')) as Collateral,
);
const INTEL = intelSgxRootCaDer();

type Outcome = { ok: true; status: string; advisoryIds: string[] } | { ok: false; message: string };

function ours(
  raw: Uint8Array,
  c: Collateral,
  nowMs: number,
  cache: DcapCache | null,
  root: Uint8Array = INTEL,
): Outcome {
  try {
    const r = verifyQuoteCached(raw, Quote.parse(raw), c, nowMs, root, cache);
    return { ok: true, status: r.status, advisoryIds: r.advisoryIds };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}

function theirs(raw: Uint8Array, c: Collateral, nowMs: number, root: Uint8Array = INTEL): Outcome {
  try {
    const r = QuoteVerifier.newWithRootCa(Buffer.from(root)).verify(raw, c, Math.floor(nowMs / 1000));
    return { ok: true, status: r.status, advisoryIds: [...r.advisory_ids] };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
}

/** Ours with a warm cache, ours without one, and dcap-qvl all give `expected` (or agree). */
function agree(
  raw: Uint8Array,
  c: Collateral,
  nowMs: number,
  cache: DcapCache,
  root: Uint8Array = INTEL,
): Outcome {
  let parsedOk = true;
  try {
    Quote.parse(raw);
  } catch {
    parsedOk = false; // verify.ts refuses it before qvl.ts
  }
  const want = theirs(raw, c, nowMs, root);
  if (!parsedOk) return want;
  assert.deepEqual(ours(raw, c, nowMs, cache, root), want, `cached, at ${new Date(nowMs).toISOString()}`);
  assert.deepEqual(ours(raw, c, nowMs, null, root), want, `uncached, at ${new Date(nowMs).toISOString()}`);
  return want;
}

test('the Intel samples: the same result as dcap-qvl at AT and at times across every validity edge, cached or not', () => {
  for (let k = 0; k < 2; k++) {
    const cache = new DcapCache();
    const raw = QUOTES[k] as Uint8Array;
    const c = COLLS[k] as Collateral;
    const first = agree(raw, c, AT, cache);
    assert.equal(first.ok, true);
    assert.equal(cache.collateral.size, 1);
    assert.equal(cache.pckChains.size, 1);
    const tcb = JSON.parse(c.tcb_info);
    const qe = JSON.parse(c.qe_identity);
    const edges = [tcb.issueDate, tcb.nextUpdate, qe.issueDate, qe.nextUpdate].map((d) =>
      new Date(d).getTime(),
    );
    for (const pemChain of [c.tcb_info_issuer_chain, c.qe_identity_issuer_chain]) {
      for (const der of utils.extractCerts(Buffer.from(pemChain))) {
        const x = new X509Certificate(der);
        edges.push(new Date(x.validFrom).getTime(), new Date(x.validTo).getTime());
      }
    }
    const times = [0, Date.UTC(2018, 0, 1), Date.UTC(2030, 0, 1), Date.UTC(2050, 0, 1), Date.now()];
    for (const e of edges) times.push(e - 1000, e, e + 1000);
    for (const t of times) agree(raw, c, t, cache);
    const again = agree(raw, c, AT, cache);
    assert.deepEqual(again, first);
  }
});

test('mutated quotes and collateral: the same result as dcap-qvl, with a warm cache and without', () => {
  const rng = new Rng(0x16a6);
  const cache = new DcapCache();
  const fields = Object.keys(COLLS[0] as object) as (keyof Collateral)[];
  let refused = 0;
  for (let i = 0; i < 100; i++) {
    const k = rng.below(2);
    assert.equal(ours(QUOTES[k] as Uint8Array, COLLS[k] as Collateral, AT, cache).ok, true); // warm
    if (rng.below(2) === 0) {
      const q = mutate(rng, QUOTES[k] as Uint8Array, QUOTES);
      if (!agree(q, COLLS[k] as Collateral, AT, cache).ok) refused++;
    } else {
      const c = { ...(COLLS[k] as Collateral) } as Record<string, unknown>;
      const f = fields[rng.below(fields.length)] as string;
      const bytes = new TextEncoder().encode(String(c[f]));
      c[f] = new TextDecoder().decode(mutate(rng, bytes));
      if (!agree(QUOTES[k] as Uint8Array, c as unknown as Collateral, AT, cache).ok) refused++;
    }
  }
  assert.ok(refused > 30, `only ${refused} mutations refused`);
});

// ---- a DCAP PKI of our own ----

function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
const seq = (...p: Uint8Array[]) => tlv(0x30, ...p);
function int(n: number): Buffer {
  let h = n.toString(16);
  if (h.length % 2) h = `0${h}`;
  if (Number.parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
  return tlv(0x02, Buffer.from(h, 'hex'));
}
function oid(s: string): Buffer {
  const [a, b, ...rest] = s.split('.').map(Number) as number[];
  const out = [40 * (a as number) + (b as number)];
  for (const v of rest) {
    const bytes = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) bytes.unshift((x & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}
const utc = (ms: number) =>
  tlv(0x17, Buffer.from(`${new Date(ms).toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
const name = (cn: string) => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const bits = (b: Uint8Array) => tlv(0x03, Buffer.from([0]), b);

type Ca = { name: string; key: KeyObject; der: Buffer };
let serialNo = 1000;

function issue(opts: {
  subject: string;
  issuer?: Ca;
  ca?: boolean;
  from?: number;
  to?: number;
  extensions?: Buffer[];
}): Ca & { serial: number } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = serialNo++;
  const bc = opts.ca
    ? seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq(tlv(0x01, Buffer.from([0xff])))))
    : seq(oid('2.5.29.19'), tlv(0x04, seq()));
  const tbs = seq(
    tlv(0xa0, int(2)),
    int(serial),
    ECDSA_SHA256,
    name(opts.issuer?.name ?? opts.subject),
    seq(utc(opts.from ?? Date.UTC(2020, 0, 1)), utc(opts.to ?? Date.UTC(2040, 0, 1))),
    name(opts.subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(bc, ...(opts.extensions ?? []))),
  );
  const sig = sign('sha256', tbs, opts.issuer?.key ?? privateKey);
  return { name: opts.subject, key: privateKey, der: seq(tbs, ECDSA_SHA256, bits(sig)), serial };
}

function crl(
  issuer: Ca,
  revoked: number[],
  thisUpdate = Date.UTC(2025, 0, 1),
  next = Date.UTC(2026, 0, 1),
): string {
  const tbs = seq(
    int(1),
    ECDSA_SHA256,
    name(issuer.name),
    utc(thisUpdate),
    utc(next),
    ...(revoked.length ? [seq(...revoked.map((s) => seq(int(s), utc(thisUpdate))))] : []),
  );
  return seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, issuer.key))).toString('hex');
}

const pemOf = (der: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${(
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n')}\n-----END CERTIFICATE-----\n`;
const p1363 = (key: KeyObject, data: Uint8Array) => sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });

// The SGX sample's Intel extension (FMSPC, CPUSVN, PCESVN, ...), copied into our PCK leaves.
const SGX = Quote.parse(QUOTES[1] as Uint8Array);
const SGX_LEAF = utils.extractCerts(Buffer.from(SGX.authData.intoV3().certificationData.body))[0] as Buffer;
const SGX_EXT = (() => {
  const cert = utils.Certificate.decode(SGX_LEAF, 'der');
  const e = cert.tbsCertificate.extensions.find(
    (x: { extnID: number[] }) => x.extnID.join('.') === '1.2.840.113741.1.13.1',
  );
  return seq(oid('1.2.840.113741.1.13.1'), tlv(0x04, e.extnValue));
})();

const root = issue({ subject: 'Test SGX Root CA', ca: true });
const pckCa = issue({ subject: 'Test PCK Platform CA', issuer: root, ca: true });
const tcbSigner = issue({ subject: 'Test TCB Signing', issuer: root });

function pckLeaf(opts: { to?: number } = {}) {
  return issue({ subject: 'Test PCK Certificate', issuer: pckCa, extensions: [SGX_EXT], ...opts });
}

/** The SGX sample's header and report, signed anew by a fresh attestation key and QE via `leaf`. */
function sgxQuote(leaf: Ca, mutateAuth?: (a: { qeReport: Buffer; akRaw: Buffer }) => void): Uint8Array {
  const src = QUOTES[1] as Uint8Array;
  const signed = Buffer.from(src.subarray(0, 48 + 384));
  const auth = SGX.authData.intoV3();
  const ak = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = ak.publicKey.export({ format: 'jwk' });
  const akRaw = Buffer.concat([
    Buffer.from(jwk.x as string, 'base64url'),
    Buffer.from(jwk.y as string, 'base64url'),
  ]);
  const qeAuth = Buffer.from(auth.qeAuthData);
  const qeReport = Buffer.from(auth.qeReport);
  const hashData = Buffer.alloc(96);
  akRaw.copy(hashData, 0);
  qeAuth.copy(hashData, 64);
  createHash('sha256').update(hashData).digest().copy(qeReport, 320);
  mutateAuth?.({ qeReport, akRaw });
  const chain = Buffer.from(pemOf(leaf.der) + pemOf(pckCa.der) + pemOf(root.der));
  const u16 = (n: number) => Buffer.from([n & 0xff, n >> 8]);
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const authData = Buffer.concat([
    p1363(ak.privateKey, signed),
    akRaw,
    qeReport,
    p1363(leaf.key, qeReport),
    u16(qeAuth.length),
    qeAuth,
    u16(5),
    u32(chain.length),
    chain,
  ]);
  return new Uint8Array(Buffer.concat([signed, u32(authData.length), authData]));
}

function testCollateral(opts: { revoked?: number[]; signer?: Ca } = {}): Collateral {
  const c = COLLS[1] as Collateral;
  const signer = opts.signer ?? tcbSigner;
  const chain = pemOf(signer.der) + pemOf(root.der);
  return {
    ...c,
    root_ca_crl: crl(root, []),
    pck_crl: crl(pckCa, opts.revoked ?? []),
    pck_crl_issuer_chain: pemOf(pckCa.der) + pemOf(root.der),
    tcb_info_issuer_chain: chain,
    tcb_info_signature: p1363(signer.key, Buffer.from(c.tcb_info)).toString('hex'),
    qe_identity_issuer_chain: chain,
    qe_identity_signature: p1363(signer.key, Buffer.from(c.qe_identity)).toString('hex'),
  };
}

const ROOT = new Uint8Array(root.der);
const LEAF = pckLeaf({ to: Date.UTC(2025, 6, 5) });
const QUOTE = sgxQuote(LEAF);
const COLL = testCollateral();

test('our own PKI: the re-signed SGX sample verifies, as with dcap-qvl, and is cached', () => {
  const cache = new DcapCache();
  const r = agree(QUOTE, COLL, AT, cache, ROOT);
  assert.deepEqual(r, {
    ok: true,
    status: 'ConfigurationAndSWHardeningNeeded',
    advisoryIds: ['INTEL-SA-00289', 'INTEL-SA-00615'],
  });
  assert.equal(cache.collateral.size, 1);
  assert.equal(cache.pckChains.size, 1);
  // The Intel root does not anchor it.
  assert.equal(ours(QUOTE, COLL, AT, new DcapCache()).ok, false);
});

test('attacker: a quote tampered after a valid one with the same chain was cached is refused', () => {
  const cache = new DcapCache();
  assert.equal(ours(QUOTE, COLL, AT, cache, ROOT).ok, true);
  const flip = (off: number) => {
    const q = Uint8Array.from(QUOTE);
    q[off] = (q[off] as number) ^ 1;
    return q;
  };
  const authStart = 48 + 384 + 4;
  const cases: [string, Uint8Array, string][] = [
    ['the attestation signature', flip(authStart + 5), 'ISV enclave report signature is invalid'],
    ['the report (report_data)', flip(48 + 320 + 3), 'ISV enclave report signature is invalid'],
    ['the header', flip(10), 'ISV enclave report signature is invalid'],
    [
      'the QE report signature',
      flip(authStart + 128 + 384 + 7),
      'Signature is invalid for qe_report in quote',
    ],
    ['the QE report', flip(authStart + 128 + 100), 'Signature is invalid for qe_report in quote'],
    ['the attestation key', flip(authStart + 64 + 3), 'QE report hash mismatch'],
  ];
  for (const [what, q, message] of cases) {
    assert.deepEqual(ours(q, COLL, AT, cache, ROOT), { ok: false, message }, what);
    assert.deepEqual(theirs(q, COLL, AT, ROOT), { ok: false, message }, what);
  }
  // Another attestation key and signature, with the QE report of the cached quote: not bound.
  const other = sgxQuote(LEAF, ({ qeReport }) => {
    Buffer.from(Quote.parse(QUOTE).authData.intoV3().qeReport).copy(qeReport);
  });
  assert.deepEqual(ours(other, COLL, AT, cache, ROOT), { ok: false, message: 'QE report hash mismatch' });
  assert.equal(cache.pckChains.size, 1, 'the same chain, served from the cache');
  assert.equal(ours(QUOTE, COLL, AT, cache, ROOT).ok, true);
});

test('attacker: a PCK or TCB-signing certificate revoked by a CRL given later is refused though its chain was cached', () => {
  const cache = new DcapCache();
  assert.equal(ours(QUOTE, COLL, AT, cache, ROOT).ok, true);
  const revokedLeaf = testCollateral({ revoked: [LEAF.serial] });
  assert.deepEqual(ours(QUOTE, revokedLeaf, AT, cache, ROOT), {
    ok: false,
    message: 'Certificate is revoked',
  });
  assert.deepEqual(theirs(QUOTE, revokedLeaf, AT, ROOT), { ok: false, message: 'Certificate is revoked' });
  const revokedCa = testCollateral({ revoked: [pckCa.serial] });
  assert.deepEqual(ours(QUOTE, revokedCa, AT, cache, ROOT), { ok: false, message: 'Certificate is revoked' });
  const revokedSigner = testCollateral({ revoked: [tcbSigner.serial] });
  assert.deepEqual(ours(QUOTE, revokedSigner, AT, cache, ROOT), {
    ok: false,
    message: 'Certificate is revoked',
  });
  // Revoking some other serial changes nothing.
  assert.equal(ours(QUOTE, testCollateral({ revoked: [1] }), AT, cache, ROOT).ok, true);
  assert.equal(cache.pckChains.size, 1);
  // And the cached chain is still good with the first collateral.
  assert.equal(ours(QUOTE, COLL, AT, cache, ROOT).ok, true);
});

test('attacker: collateral and certificates accepted at one time are refused at a later time, cache or not', () => {
  const cache = new DcapCache();
  assert.equal(ours(QUOTE, COLL, AT, cache, ROOT).ok, true);
  // The PCK leaf expires on 2025-07-05; the TCB info and QE identity on 2025-07-19.
  const expired = 'Certificate is expired or not yet valid';
  for (const [t, message] of [
    [Date.UTC(2025, 6, 6), expired],
    [Date.UTC(2025, 6, 20), 'TCBInfo expired'],
    [Date.UTC(2025, 5, 1), 'TCBInfo issue date is in the future'],
  ] as const) {
    assert.deepEqual(ours(QUOTE, COLL, t, cache, ROOT), { ok: false, message });
    assert.deepEqual(theirs(QUOTE, COLL, t, ROOT), { ok: false, message });
  }
  // A TCB signing certificate valid only until 2025-07-02: refused after it, from the cache.
  const shortSigner = issue({ subject: 'Test TCB Signing', issuer: root, to: Date.UTC(2025, 6, 2) });
  const c2 = testCollateral({ signer: shortSigner });
  assert.equal(ours(QUOTE, c2, AT, cache, ROOT).ok, true);
  assert.deepEqual(ours(QUOTE, c2, Date.UTC(2025, 6, 3), cache, ROOT), { ok: false, message: expired });
  assert.equal(cache.collateral.size, 2);
  assert.equal(ours(QUOTE, COLL, AT, cache, ROOT).ok, true);
});

test('attacker: many distinct chains cannot grow the cache past its bound; chains that fail are not stored', () => {
  const cache = new DcapCache({ maxPckChains: 4, maxKeys: 4, maxCollateral: 2 });
  for (let i = 0; i < 12; i++) {
    const q = sgxQuote(pckLeaf());
    assert.equal(ours(q, COLL, AT, cache, ROOT).ok, true);
    assert.ok(cache.pckChains.size <= 4 && cache.keys.size <= 4);
  }
  assert.equal(cache.pckChains.size, 4);
  for (let i = 0; i < 4; i++) {
    assert.equal(ours(QUOTE, testCollateral({ revoked: [900 + i] }), AT, cache, ROOT).ok, true);
  }
  assert.equal(cache.collateral.size, 2);
  // Chains that do not verify (a leaf signed by a key that is not the PCK CA's) are never kept.
  const fresh = new DcapCache();
  const rogueCa = issue({ subject: 'Test PCK Platform CA' });
  for (let i = 0; i < 5; i++) {
    const rogue = issue({
      subject: 'Test PCK Certificate',
      issuer: { ...pckCa, key: rogueCa.key },
      extensions: [SGX_EXT],
    });
    assert.deepEqual(ours(sgxQuote(rogue), COLL, AT, fresh, ROOT), {
      ok: false,
      message: 'Failed to verify certificate chain - leaf signature invalid',
    });
  }
  assert.equal(fresh.pckChains.size, 0);
  assert.equal(fresh.collateral.size, 1);
});

test("raw r||s signatures are DER-encoded as dcap-qvl's encodeAsDer does", () => {
  const rng = new Rng(0x5e9);
  const cases = [new Uint8Array(64), new Uint8Array(64).fill(0xff), new Uint8Array(64).fill(0x7f)];
  for (let i = 0; i < 200; i++) {
    const b = new Uint8Array(64);
    for (let j = 0; j < 64; j++) b[j] = rng.below(256);
    // Leading zero bytes and top bits in both halves.
    for (let j = 0, z = rng.below(34); j < z; j++) b[j] = 0;
    for (let j = 32, z = rng.below(34); j < 32 + z && j < 64; j++) b[j] = 0;
    cases.push(b);
  }
  for (const raw of cases) {
    assert.deepEqual(
      rawSignatureToDer(raw),
      utils.encodeAsDer(Buffer.from(raw)),
      Buffer.from(raw).toString('hex'),
    );
  }
});

test('BoundedCache: least recently used first out, bound checked', () => {
  const c = new BoundedCache<number>(2);
  c.set('a', 1);
  c.set('b', 2);
  assert.equal(c.get('a'), 1);
  c.set('c', 3);
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.size, 2);
  assert.throws(() => new BoundedCache(0), /max/);
  // cacheKey separates its parts: no two splits of the same bytes collide.
  assert.notEqual(cacheKey(['ab', 'c']), cacheKey(['a', 'bc']));
  assert.notEqual(cacheKey(['ab']), cacheKey([Buffer.from('ab')]));
  assert.equal(cacheKey([[0x61, 0x62]]), cacheKey([Buffer.from('ab')]));
  // What is not text or bytes is not cached at all (no key that two inputs could share).
  assert.equal(cacheKey([[256]]), null);
  assert.equal(cacheKey([{ toJSON: () => 'ab' }]), null);
  assert.equal(cacheKey([undefined]), null);
  // Keys are remembered only with objects sealed (deep-frozen) here; others are keyed afresh.
  let n = 0;
  const open = { pck_crl: 'aa' };
  keyOf(open, 'k', () => `${n++}`);
  assert.equal(
    keyOf(open, 'k', () => `${n++}`),
    '1',
  );
  const shut = sealCollateral({ pck_crl: 'aa', root_ca_crl: [1, 2] });
  assert.equal(
    keyOf(shut, 'k', () => `${n++}`),
    '2',
  );
  assert.equal(
    keyOf(shut, 'k', () => `${n++}`),
    '2',
  );
  assert.ok(Object.isFrozen(shut) && Object.isFrozen(shut.root_ca_crl));
  assert.throws(() => {
    (shut as { pck_crl: string }).pck_crl = 'bb';
  }, TypeError);
});
