/**
 * Enclave processes with the tpm2, tdx and sev-snp backends: a real swtpm provisioned the way
 * node registration does it (AK, credential activation, activation record on disk), and
 * configfs-tsm roots that are missing or are not the kernel's. The tdx and sev-snp evidence
 * itself is checked through `openTeeBackend` (the enclave process's constructor) over the
 * fake configfs-tsm, whose kernel emulation lives in the calling process.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { parsePolicy, PRODUCTION_POLICY } from '../src/attestation/policy.ts';
import {
  encodeActivationRecord,
  makeCredential,
  signActivationRecord,
} from '../src/attestation/tpm2/activation.ts';
import { Tpm2Backend, tpm2Nonce } from '../src/attestation/tpm2/backend.ts';
import { parseQuoteAttest } from '../src/attestation/tpm2/structures.ts';
import { Swtpm } from '../src/attestation/tpm2/swtpm.ts';
import { Tpm2Tools } from '../src/attestation/tpm2/tools.ts';
import { Tpm2Verifier } from '../src/attestation/tpm2/verifier.ts';
import { FakeTsm } from '../src/attestation/tsm/fake-tsm.ts';
import { openTeeBackend } from '../src/enclave/backends.ts';
import { type BackendSpec, createEnclave, type EnclaveHandle } from '../src/enclave/handle.ts';
import { type FerryError, isFerryError, toHex } from '../src/kernel/index.ts';
import { reportDataFor } from '../src/protocol/binding.ts';
import { checkCommitments, type TaskCommitments } from '../src/protocol/commitments.ts';
import { randomSeed } from './enclave-helpers.ts';
import { requireTool } from './helpers/tools.ts';

const task = { chainId: 31337n, taskId: 77n, attempt: 1 };
const AK_HANDLE = 0x81010020;
let dir: string;
const open: EnclaveHandle[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-enclave-backends-'));
});
after(async () => {
  await Promise.all(open.map((h) => h.destroy()));
  await rm(dir, { recursive: true, force: true });
});

/** Commitments of a test task with this seed (the other fields are fixed, non-zero). */
function commit(seed: Uint8Array, attempt = task.attempt): TaskCommitments {
  const b = (n: number) => new Uint8Array(32).fill(n);
  return checkCommitments({
    ...task,
    attempt,
    seed,
    appId: 1n,
    appMeasurement: b(1),
    inputHash: b(2),
    resultRecipient: b(9),
    datasets: [{ id: 2n, ciphertextHash: b(3) }],
  });
}

async function enclave(opts: { seed: Uint8Array; backend: BackendSpec }) {
  const h = await createEnclave({ commitments: commit(opts.seed), backend: opts.backend });
  open.push(h);
  return h;
}

function bindingOf(h: EnclaveHandle, seed: Uint8Array, attempt = task.attempt): Uint8Array {
  return reportDataFor({
    commitments: commit(seed, attempt),
    x25519Pub: h.x25519Pub,
    ed25519Pub: h.ed25519Pub,
  });
}

describe('tpm2 backend on swtpm', () => {
  let sw: Swtpm | undefined;
  after(async () => sw?.stop());
  const activator = generateKeyPairSync('ed25519');
  const activatorPub = new Uint8Array(
    Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
  );

  /** Node registration: AK created, credential activated, record and EK chain written to files. */
  async function provision(t: TestContext) {
    if (!['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_quote'].every((n) => requireTool(t, n))) return null;
    sw ??= await Swtpm.start();
    const tools = new Tpm2Tools({ tcti: sw.tcti });
    const be = await Tpm2Backend.open({ tools, akHandle: AK_HANDLE, recreateAk: true });
    const ek = new X509Certificate(Buffer.from(await be.readEkCertificate()));
    const secret = new Uint8Array(randomBytes(32));
    const got = await be.activateCredential(makeCredential(ek.publicKey, be.akName, secret));
    assert.equal(toHex(got), toHex(secret));
    const record = signActivationRecord(activator.privateKey, {
      akName: be.akName,
      ekCert: ek,
      activatedAt: Math.floor(Date.now() / 1000),
    });
    const activationRecordFile = join(dir, 'activation.cbor');
    await writeFile(activationRecordFile, encodeActivationRecord(record));
    const issuerFile = join(dir, 'issuer.pem');
    await writeFile(issuerFile, await sw.issuerCaPem());
    return {
      be,
      ek,
      root: new X509Certificate(await sw.rootCaPem()),
      spec: {
        kind: 'tpm2' as const,
        tcti: sw.tcti,
        akHandle: AK_HANDLE,
        activationRecordFile,
        ekChainFiles: [issuerFile],
      },
    };
  }

  test('the enclave quotes its report_data with the registered AK; Tpm2Verifier accepts it', async (t) => {
    const p = await provision(t);
    if (!p) return;
    const seed = randomSeed();
    const h = await enclave({ seed, backend: p.spec });
    const ev = h.evidence();
    assert.equal(ev.kind, 'tpm2');
    const rd = bindingOf(h, seed);
    assert.equal(toHex(ev.reportData), toHex(rd));
    // The quote carries SHA256(report_data) and was signed by the provisioned AK.
    assert.equal(toHex(parseQuoteAttest(ev.body.quote as Uint8Array).extraData), toHex(tpm2Nonce(rd)));
    assert.equal(toHex(ev.body.akPublic as Uint8Array), toHex(p.be.akPublicBytes));

    const verifier = new Tpm2Verifier({ trustedCas: [p.root], trustedActivators: [activatorPub] });
    // Production settings pinning the PCR 23 this TPM quoted (nothing extended it here): a
    // policy must identify the software (ATTESTATION_NO_REFERENCE_VALUES otherwise).
    const pcr23 = toHex((ev.body.pcrs as { [b: string]: { [i: string]: Uint8Array } }).sha256['23']);
    const policy = parsePolicy({
      ...PRODUCTION_POLICY,
      name: 'tpm2-only',
      allowedKinds: ['tpm2'],
      referenceValues: { tpm2: { pcrs: { sha256: { '23': [pcr23] } } } },
    });
    const ok = await verifier.appraise(ev, { policy, now: new Date(), expectedReportData: rd });
    assert.deepEqual(ok.reasons, []);
    assert.equal(ok.accepted, true);
    assert.equal(ok.claims.akProof, 'activation');

    // The same evidence presented for another attempt of the task: its binding differs.
    const other = await verifier.appraise(ev, {
      policy,
      now: new Date(),
      expectedReportData: bindingOf(h, seed, task.attempt + 1),
    });
    assert.equal(other.accepted, false);
    assert.deepEqual(
      other.reasons.map((r) => r.code),
      ['ATTESTATION_REPORT_DATA_MISMATCH'],
    );
    // A verifier that does not trust this activator does not accept the AK.
    const stranger = new Tpm2Verifier({ trustedCas: [p.root], trustedActivators: [new Uint8Array(32)] });
    const s = await stranger.appraise(ev, { policy, now: new Date(), expectedReportData: rd });
    assert.deepEqual(
      s.reasons.map((r) => r.code),
      ['ATTESTATION_AK_NOT_PROVEN'],
    );

    const report = await h.destroy();
    assert.deepEqual(report, { exitCode: 0, signal: null, killed: false });

    // The EK certificate from a file (PEM) instead of NV: the same certificate in the evidence.
    const ekCertFile = join(dir, 'ek.pem');
    await writeFile(ekCertFile, p.ek.toString());
    const seed2 = randomSeed();
    const h2 = await enclave({ seed: seed2, backend: { ...p.spec, ekCertFile, ekCertIndex: 0x1c00003 } });
    const ev2 = h2.evidence();
    assert.equal(toHex(ev2.body.ekCert as Uint8Array), toHex(new Uint8Array(p.ek.raw)));
    const ok2 = await verifier.appraise(ev2, {
      policy,
      now: new Date(),
      expectedReportData: bindingOf(h2, seed2),
    });
    assert.equal(ok2.accepted, true, JSON.stringify(ok2.reasons));
    await h2.destroy();
  });

  test('no AK at the handle, or a record for another AK: unavailable, and the enclave exits', async (t) => {
    const p = await provision(t);
    if (!p) return;
    for (const [spec, re] of [
      [{ ...p.spec, akHandle: 0x81010021 }, /no attestation key/],
      [{ ...p.spec, activationRecordFile: join(dir, 'missing.cbor') }, /activation record/],
    ] as const) {
      await assert.rejects(
        createEnclave({ commitments: commit(randomSeed()), backend: spec }),
        (e: FerryError) => {
          assert.equal(e.code, 'ATTESTATION_BACKEND_UNAVAILABLE');
          assert.match(e.message, re);
          assert.deepEqual(e.details?.enclaveExit, { exitCode: 0, signal: null, killed: false });
          return true;
        },
      );
    }
    // The enclave must not have created an AK at the unknown handle.
    await assert.rejects(p.be.tools.run('tpm2_readpublic', ['-c', '0x81010021']), (e) =>
      isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED'),
    );
    // A record signed for an AK that was since replaced.
    const replaced = await Tpm2Backend.open({ tools: p.be.tools, akHandle: AK_HANDLE, recreateAk: true });
    assert.notEqual(toHex(replaced.akName), toHex(p.be.akName));
    await assert.rejects(
      createEnclave({ commitments: commit(randomSeed()), backend: p.spec }),
      (e: FerryError) => e.code === 'ATTESTATION_BACKEND_UNAVAILABLE' && /another AK/.test(e.message),
    );
  });
});

test('backend specs are checked before anything is spawned', async () => {
  for (const [backend, re] of [
    [{ kind: 'tpm2', tcti: 'tcp:1.2.3.4' }, /bad tcti/],
    [{ kind: 'tpm2', tcti: 'device:/dev/tpmrm0', akHandle: -1 }, /bad akHandle/],
    [{ kind: 'tpm2', tcti: 'device:/dev/tpmrm0', ekChainFiles: 'x' }, /bad ekChainFiles/],
    [{ kind: 'tpm2', tcti: 'device:/dev/tpmrm0', attesterFile: 'x' }, /unknown field attesterFile/],
    [{ kind: 'tdx', privlevel: 0 }, /bad privlevel/],
    [{ kind: 'sev-snp', privlevel: 4 }, /bad privlevel/],
    [{ kind: 'sgx' }, /unknown kind/],
    [null, /expected a map/],
  ] as const) {
    await assert.rejects(
      createEnclave({ commitments: commit(randomSeed()), backend: backend as never }),
      (e: FerryError) => e.code === 'INVALID_ARGUMENT' && re.test(e.message),
      `${JSON.stringify(backend)}`,
    );
  }
});

describe('tdx and sev-snp backends over configfs-tsm', () => {
  for (const kind of ['tdx', 'sev-snp'] as const) {
    test(`${kind}: a missing tree is ATTESTATION_BACKEND_UNAVAILABLE and the enclave exits cleanly`, async () => {
      const tsmRoot = join(dir, `${kind}-absent`, 'report');
      await assert.rejects(
        createEnclave({ commitments: commit(randomSeed()), backend: { kind, tsmRoot } }),
        (e: FerryError) => {
          assert.equal(e.code, 'ATTESTATION_BACKEND_UNAVAILABLE');
          assert.ok(e.message.includes(tsmRoot), e.message);
          assert.deepEqual(e.details?.enclaveExit, { exitCode: 0, signal: null, killed: false });
          return true;
        },
      );
    });
  }

  test('a tree that is not the kernel: the enclave process makes its report there, and fails', async () => {
    const tsmRoot = join(dir, 'plain-dir');
    await mkdir(tsmRoot);
    const seen: string[] = [];
    const w = watch(tsmRoot, (_ev, name) => name && seen.push(String(name)));
    try {
      await assert.rejects(
        createEnclave({ commitments: commit(randomSeed()), backend: { kind: 'tdx', tsmRoot } }),
        (e: FerryError) => e.code === 'ATTESTATION_BACKEND_UNAVAILABLE' && /provider/.test(e.message),
      );
    } finally {
      await new Promise((r) => setTimeout(r, 50)); // let queued inotify events through
      w.close();
    }
    // The report directory was named after the enclave process, not this one.
    const made = seen.find((n) => n.startsWith('ferry-'));
    assert.ok(made, `no report directory seen: ${seen.join(', ')}`);
    assert.notEqual(made.split('-')[1], String(process.pid));
  });

  test('openTeeBackend (the enclave side) builds a TsmBackend at tsmRoot: inblob = report_data', async () => {
    const rd = new Uint8Array(randomBytes(64));
    // A TDX v4 quote and an SEV-SNP report that echo the inblob (values made up by us).
    const tdxQuote = (inblob: Uint8Array) => {
      const q = new Uint8Array(1024);
      q[0] = 4;
      q.set(inblob, 568);
      return q;
    };
    const snpReport = (inblob: Uint8Array) => {
      const r = new Uint8Array(0x4a0);
      r.set(inblob, 0x50);
      return r;
    };
    for (const [kind, provider, outblob] of [
      ['tdx', 'tdx_guest', tdxQuote],
      ['sev-snp', 'sev_guest', snpReport],
    ] as const) {
      const fake = await new FakeTsm({ provider, outblob }).mount();
      let inblob: Uint8Array | undefined;
      const fs = {
        ...fake.fs,
        writeFile: async (p: string, data: Uint8Array) => {
          if (p.endsWith('/inblob')) inblob = Uint8Array.from(data);
          return fake.fs.writeFile(p, data);
        },
      };
      const be = await openTeeBackend({ kind, tsmRoot: fake.root }, { tsmFs: fs });
      assert.equal(be.kind, kind);
      const ev = await be.collect(rd);
      assert.equal(ev.kind, kind);
      assert.equal(toHex(inblob ?? new Uint8Array()), toHex(rd));
      assert.equal(toHex(ev.reportData), toHex(rd));
      assert.deepEqual(
        fake.log.map((l) => l.split(' ')[0]),
        ['mkdir', 'write', 'rmdir'],
      );
    }
  });
});
