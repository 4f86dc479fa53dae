/**
 * Attestation verification throughput (verifications per second, one core): TDX and SGX
 * (dcap-qvl's raw verify, whose steps Ferry performs; Ferry's appraisal without a cache, i.e.
 * every appraisal as the first call; and with the collateral and PCK chain cached, against
 * issue 16's aim of 500 appraisals/s, with its ratio to the uncached path), SEV-SNP (full appraisal vs the
 * raw node:crypto checks it is made of: one ECDSA P-384 verify and three RSA-PSS certificate
 * verifies), sim (vs one raw Ed25519 verify), and a raw node:crypto ECDSA P-256 verify as
 * the floor of a DCAP quote.
 * Samples from test/vectors, judged at 2025-07-01 (the Intel collateral's validity).
 */
import {
  createPublicKey,
  createVerify,
  generateKeyPairSync,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { QuoteVerifier } from '@phala/dcap-qvl';
import { DcapCache, SgxVerifier, TdxVerifier } from '../src/attestation/dcap/verify.ts';
import { intelSgxRootCaDer } from '../src/attestation/dcap/roots.ts';
import { developmentPolicy, PRODUCTION_POLICY } from '../src/attestation/policy.ts';
import { parsePemCertificates } from '../src/attestation/sev-snp/roots.ts';
import { SevSnpVerifier } from '../src/attestation/sev-snp/verify.ts';
import { createSimRoot, issueSimAttester, SimBackend, SimVerifier } from '../src/attestation/sim/index.ts';
import type { Evidence } from '../src/attestation/types.ts';
import { type Bench, type BenchRow, opsPerSecond } from './harness.ts';

const V = new URL('../test/vectors/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, V)));
const AT = new Date('2025-07-01T00:00:00Z');

/**
 * Best of `rounds` alternating measurements of each function, so that warm-up and the load of
 * a shared machine do not favour whichever runs second.
 */
async function bestOf(fns: (() => unknown)[], ms: number, rounds: number): Promise<number[]> {
  const best = fns.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) best[i] = Math.max(best[i], await opsPerSecond(fns[i], ms, 5));
  }
  return best;
}

/**
 * Operations per second of this process's CPU time (best of `rounds` runs of `n` calls): on a
 * shared, loaded machine steadier than wall time, which counts the time other processes run.
 */
async function perCpuSecond(fn: () => unknown, n: number, rounds: number): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / n);
  }
  return 1e6 / best;
}

const bench: Bench = async ({ quick, log }) => {
  const ms = quick ? 300 : 800;
  const rounds = quick ? 1 : 3;
  const rows: BenchRow[] = [];
  const ctx = { policy: PRODUCTION_POLICY, now: AT };
  const qvl = QuoteVerifier.newWithRootCa(intelSgxRootCaDer());

  // Floor: one raw ECDSA P-256 / SHA-256 verification; a cached DCAP appraisal still makes two
  // (the QE report's and the quote's), so half of it bounds the cached rows.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const msg = Buffer.alloc(632, 7);
  const s = sign('sha256', msg, privateKey);
  const pk = createPublicKey(publicKey.export({ format: 'pem', type: 'spki' }));
  const floor = await opsPerSecond(() => createVerify('sha256').update(msg).verify(pk, s), ms, 5);
  const AIM = 500; // appraisals/s with collateral cached (issue 16 aim 6)
  for (const kind of ['tdx', 'sgx'] as const) {
    const quote = read(`intel-dcap/${kind}_quote`);
    const collateralText = new TextDecoder().decode(read(`intel-dcap/${kind}_quote_collateral.json`));
    const collateral = JSON.parse(collateralText);
    const ev: Evidence = {
      kind,
      reportData: new Uint8Array(64),
      body: { quote, collateral: collateralText },
    };
    const make = (cache: DcapCache | null) =>
      kind === 'tdx' ? new TdxVerifier({ cache }) : new SgxVerifier({ cache });
    const uncached = make(null);
    const cached = make(new DcapCache());
    const first = await cached.appraise(ev, ctx);
    if (first.valid !== true) throw new Error(`${kind} sample does not verify at ${AT.toISOString()}`);
    const [raw, cold, warm] = await bestOf(
      [
        () => qvl.verify(quote, collateral, AT.getTime() / 1000),
        () => uncached.appraise(ev, ctx),
        () => cached.appraise(ev, ctx),
      ],
      ms,
      rounds,
    );
    const cpuCold = await perCpuSecond(() => uncached.appraise(ev, ctx), quick ? 10 : 30, rounds);
    const cpuWarm = await perCpuSecond(() => cached.appraise(ev, ctx), quick ? 300 : 1000, rounds);
    log(
      `${kind}: dcap-qvl ${raw.toFixed(0)}/s, Ferry appraisal uncached ${cold.toFixed(0)}/s, cached ${warm.toFixed(0)}/s (aim ${AIM}/s); ` +
        `per CPU-second uncached ${cpuCold.toFixed(0)}, cached ${cpuWarm.toFixed(0)}`,
    );
    rows.push({ group: kind, name: 'dcap-qvl verify (raw)', value: raw, unit: 'appraisals/s' });
    rows.push({
      group: kind,
      name: 'Ferry appraisal, uncached (first call)',
      value: cold,
      unit: 'appraisals/s',
      baseline: 'dcap-qvl verify (raw)',
    });
    rows.push({
      group: kind,
      name: 'Ferry appraisal, collateral cached',
      value: warm,
      unit: 'appraisals/s',
      baseline: 'Ferry appraisal, uncached (first call)',
      note:
        `aim >= ${AIM}/s (issue 16 aim 6): ${warm >= AIM ? 'met' : 'NOT met'}, ${(warm / AIM).toFixed(1)}x the aim; ` +
        `${((2 * warm) / floor).toFixed(2)}x the floor of two ECDSA verifies (${(floor / 2).toFixed(0)}/s); ` +
        `per CPU-second ${cpuWarm.toFixed(0)} cached vs ${cpuCold.toFixed(0)} uncached (${(cpuWarm / cpuCold).toFixed(1)}x)`,
    });
  }

  const report = read('sev-snp-milan/attestation.bin');
  const vcekDer = read('sev-snp-milan/vcek.der');
  const snp = new SevSnpVerifier();
  const snpEv: Evidence = {
    kind: 'sev-snp',
    reportData: report.slice(0x50, 0x90),
    body: { report, vcek: vcekDer },
  };
  const vcek = new X509Certificate(Buffer.from(vcekDer));
  const [ask, ark] = parsePemCertificates(read('sev-snp-milan/ask_ark_milan.pem'), 'chain');
  const sig = new Uint8Array(96);
  sig.set(Uint8Array.from(report.subarray(0x2a0, 0x2a0 + 48)).reverse(), 0);
  sig.set(Uint8Array.from(report.subarray(0x2a0 + 72, 0x2a0 + 120)).reverse(), 48);
  const signed = report.subarray(0, 0x2a0);
  const [rawSnp, fullSnp] = await bestOf(
    [
      () =>
        ark.verify(ark.publicKey) &&
        ask.verify(ark.publicKey) &&
        vcek.verify(ask.publicKey) &&
        verify('sha384', signed, { key: vcek.publicKey, dsaEncoding: 'ieee-p1363' }, sig),
      () => snp.appraise(snpEv, ctx),
    ],
    ms,
    rounds,
  );
  log(`sev-snp: raw node:crypto ${rawSnp.toFixed(0)}/s, Ferry appraisal ${fullSnp.toFixed(0)}/s`);
  rows.push({
    group: 'sev-snp',
    name: 'node:crypto chain + ECDSA P-384 (raw)',
    value: rawSnp,
    unit: 'verif/s',
  });
  rows.push({
    group: 'sev-snp',
    name: 'Ferry appraisal',
    value: fullSnp,
    unit: 'verif/s',
    baseline: 'node:crypto chain + ECDSA P-384 (raw)',
  });

  // sim (development only): Ed25519 certificate + evidence signature, vs one raw Ed25519 verify.
  const root = createSimRoot();
  const simNow = new Date();
  const simEv = await new SimBackend({
    attester: issueSimAttester(root, { now: simNow }),
    measurement: new Uint8Array(32),
    now: () => simNow,
  }).collect(new Uint8Array(64));
  const simVerifier = new SimVerifier({ roots: [root.publicKey] });
  const simCtx = { policy: developmentPolicy(), now: simNow };
  const ed = generateKeyPairSync('ed25519');
  const edMsg = Buffer.alloc(200, 1);
  const edSig = sign(null, edMsg, ed.privateKey);
  const [rawEd, fullSim] = await bestOf(
    [() => verify(null, edMsg, ed.publicKey, edSig), () => simVerifier.appraise(simEv, simCtx)],
    ms,
    rounds,
  );
  rows.push({ group: 'sim', name: 'node:crypto Ed25519 verify (raw)', value: rawEd, unit: 'verif/s' });
  rows.push({
    group: 'sim',
    name: 'Ferry appraisal',
    value: fullSim,
    unit: 'verif/s',
    baseline: 'node:crypto Ed25519 verify (raw)',
  });

  rows.push({ group: 'floor', name: 'node:crypto ECDSA P-256 verify', value: floor, unit: 'verif/s' });
  return rows;
};

export default bench;
