/**
 * PolicyBook against a real anvil (built-in policies by hash, an owner's own policy read from
 * the dataset's or the app's registration and policy-update events, unknown hashes, sim
 * policies without allowSim, invalid documents), and the pinned development policy: it accepts sim evidence
 * carrying this checkout's enclave runtime measurement and rejects any other measurement, and
 * its PCR 23 reference value is what a real (software) TPM holds after the node daemon's
 * reset-and-extend.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  developmentPolicy,
  encodePolicyDocument,
  PRODUCTION_POLICY,
  parsePolicy,
  policyHash,
} from '../attestation/index.ts';
import { createSimRoot, issueSimAttester, SimBackend, SimVerifier } from '../attestation/sim/index.ts';
import { Swtpm } from '../attestation/tpm2/swtpm.ts';
import {
  RUNTIME_PCR,
  runtimeMeasurement as tpm2RuntimeMeasurement,
  Tpm2Tools,
} from '../attestation/tpm2/index.ts';
import {
  type ChainWriter,
  createApp,
  createDataset,
  type DatasetPolicy,
  updateAppPolicy,
  updateDatasetPolicy,
} from '../chain/index.ts';
import { startTestChain, type TestChain } from '../chain/testing.ts';
import { runtimeMeasurement } from '../enclave/index.ts';
import { encodeTagged, isFerryError, toHex } from '../kernel/index.ts';
import { requireTool } from '../../test/helpers/tools.ts';
import { pinnedDevelopmentPolicy } from '../enclave/policies.ts';
import { PolicyBook } from './policies.ts';

let tc: TestChain;
let owner: ChainWriter;

const hashHex = (p: Parameters<typeof policyHash>[0]) => toHex(policyHash(p));
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function datasetPolicy(document: Uint8Array): DatasetPolicy {
  return {
    allowedApps: 'any',
    allowedRegions: [],
    teeKinds: ['sim', 'tpm2'],
    tau: 1,
    threshold: 1,
    maxUses: 0,
    expiresAt: 0,
    requesters: [],
    appraisalPolicyDocument: document,
  };
}

async function dataset(document: Uint8Array): Promise<bigint> {
  const r = await createDataset(owner, {
    ciphertextHash: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    policy: datasetPolicy(document),
  });
  return r.datasetId;
}

const ownPolicy = parsePolicy({
  ...PRODUCTION_POLICY,
  name: 'owner-tpm2',
  allowedKinds: ['tpm2'],
  referenceValues: { tpm2: { pcrs: { sha256: { '23': ['11'.repeat(32)] } } } },
});

before(async () => {
  tc = await startTestChain();
  owner = await tc.account();
});

after(async () => {
  await tc?.stop();
});

test('built-in policies resolve by hash without reading the chain; sim ones only with allowSim', async () => {
  const withSim = new PolicyBook({ allowSim: true });
  const noSim = new PolicyBook({ allowSim: false });
  // Dataset 999 does not exist: built-ins never need it.
  assert.deepEqual(await withSim.resolve(tc.deployer, 999n, hashHex(PRODUCTION_POLICY)), PRODUCTION_POLICY);
  assert.deepEqual(
    await withSim.resolve(tc.deployer, 999n, `0x${hashHex(developmentPolicy()).toUpperCase()}`),
    developmentPolicy(),
  );
  assert.equal(await noSim.resolve(tc.deployer, 999n, hashHex(developmentPolicy())), null);
  assert.deepEqual(await noSim.resolve(tc.deployer, 999n, hashHex(PRODUCTION_POLICY)), PRODUCTION_POLICY);
  await assert.rejects(withSim.resolve(tc.deployer, 1n, 'xyz'), (e) => isFerryError(e, 'INVALID_ARGUMENT'));
});

test("an owner's own policy is read from the dataset's events, decoded and cached", async () => {
  const id = await dataset(encodePolicyDocument(ownPolicy));
  const book = new PolicyBook({ allowSim: false });
  assert.equal(book.known(hashHex(ownPolicy)), undefined);
  const p = await book.resolve(tc.deployer, id, hashHex(ownPolicy));
  assert.deepEqual(p, ownPolicy);
  assert.equal(book.known(hashHex(ownPolicy)), p);
  // The policy update publishes another document; both remain resolvable by their hash.
  const pinned = await pinnedDevelopmentPolicy();
  await updateDatasetPolicy(owner, { datasetId: id, policy: datasetPolicy(encodePolicyDocument(pinned)) });
  const withSim = new PolicyBook({ allowSim: true });
  assert.deepEqual(await withSim.resolve(tc.deployer, id, hashHex(pinned)), pinned);
  assert.deepEqual(await withSim.resolve(tc.deployer, id, hashHex(ownPolicy)), ownPolicy);
  // A party without allowSim abstains on the pinned (development) policy.
  assert.equal(await book.resolve(tc.deployer, id, hashHex(pinned)), null);
  // A hash the dataset never published, and a dataset that does not exist.
  const other = parsePolicy({ ...ownPolicy, name: 'never-published' });
  await assert.rejects(book.resolve(tc.deployer, id, hashHex(other)), (e) =>
    isFerryError(e, 'ATTESTATION_POLICY_NOT_FOUND'),
  );
  await assert.rejects(book.resolve(tc.deployer, 777n, hashHex(other)), (e) =>
    isFerryError(e, 'ATTESTATION_POLICY_NOT_FOUND'),
  );
  // Another dataset's document is not this dataset's.
  const id2 = await dataset(encodePolicyDocument(other));
  await assert.rejects(new PolicyBook({ allowSim: false }).resolve(tc.deployer, id, hashHex(other)), (e) =>
    isFerryError(e, 'ATTESTATION_POLICY_NOT_FOUND'),
  );
  assert.deepEqual(
    await new PolicyBook({ allowSim: false }).resolve(tc.deployer, id2, hashHex(other)),
    other,
  );
});

async function app(document: Uint8Array): Promise<bigint> {
  const r = await createApp(owner, {
    measurement: new Uint8Array(randomBytes(32)),
    ciphertextHash: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    teeKinds: ['sim', 'tpm2'],
    appraisalPolicyDocument: document,
  });
  return r.appId;
}

test("an app owner's policy is read from the app's events; a dataset's document is not the app's", async () => {
  const appId = await app(encodePolicyDocument(ownPolicy));
  const book = new PolicyBook({ allowSim: false });
  assert.deepEqual(
    await book.resolve(tc.deployer, { kind: 'app', id: appId }, hashHex(ownPolicy)),
    ownPolicy,
  );
  // Built-ins resolve for apps too, without reading the chain (app 999 does not exist).
  assert.deepEqual(
    await book.resolve(tc.deployer, { kind: 'app', id: 999n }, hashHex(PRODUCTION_POLICY)),
    PRODUCTION_POLICY,
  );
  // The update publishes another document; a party without allowSim abstains on a sim policy.
  const pinned = await pinnedDevelopmentPolicy();
  await updateAppPolicy(owner, {
    appId,
    teeKinds: ['sim'],
    appraisalPolicyDocument: encodePolicyDocument(pinned),
  });
  assert.deepEqual(
    await new PolicyBook({ allowSim: true }).resolve(
      tc.deployer,
      { kind: 'app', id: appId },
      hashHex(pinned),
    ),
    pinned,
  );
  assert.equal(await book.resolve(tc.deployer, { kind: 'app', id: appId }, hashHex(pinned)), null);
  // A document published by a dataset with the app's id is not the app's, and the reverse.
  const other = parsePolicy({ ...ownPolicy, name: 'dataset-only' });
  const datasetId = await dataset(encodePolicyDocument(other));
  const appOnly = parsePolicy({ ...ownPolicy, name: 'app-only' });
  const appId2 = await app(encodePolicyDocument(appOnly));
  for (const id of [appId, appId2, datasetId]) {
    await assert.rejects(
      new PolicyBook({ allowSim: false }).resolve(tc.deployer, { kind: 'app', id }, hashHex(other)),
      (e) => isFerryError(e, 'ATTESTATION_POLICY_NOT_FOUND') && /app /.test(e.message),
    );
  }
  await assert.rejects(
    new PolicyBook({ allowSim: false }).resolve(
      tc.deployer,
      { kind: 'dataset', id: appId2 },
      hashHex(appOnly),
    ),
    (e) => isFerryError(e, 'ATTESTATION_POLICY_NOT_FOUND'),
  );
  assert.deepEqual(
    await new PolicyBook({ allowSim: false }).resolve(
      tc.deployer,
      { kind: 'dataset', id: datasetId },
      hashHex(other),
    ),
    other,
  );
  // A bad asset argument names itself.
  for (const bad of [{ kind: 'task', id: 1n }, { kind: 'app', id: 1 }, null]) {
    await assert.rejects(book.resolve(tc.deployer, bad as never, hashHex(ownPolicy)), (e) =>
      isFerryError(e, 'INVALID_ARGUMENT'),
    );
  }
});

test('a published document that is not a valid normalized policy is refused with a stable code', async () => {
  const bad = [
    new Uint8Array(randomBytes(40)),
    encodeTagged('ferry/appraisal-policy/v1', { name: 'x' }),
    encodeTagged('ferry/appraisal-policy/v1', {
      ...(ownPolicy as unknown as Record<string, never>),
      allowedKinds: ['tpm2', 'sev-snp'],
    }),
  ];
  for (const doc of bad) {
    const id = await dataset(doc);
    const book = new PolicyBook({ allowSim: true });
    for (let i = 0; i < 2; i++) {
      // The second time from the cache: the same refusal.
      await assert.rejects(book.resolve(tc.deployer, id, sha256Hex(doc)), (e) =>
        isFerryError(e, 'ATTESTATION_POLICY_DOCUMENT_INVALID'),
      );
    }
  }
});

test('the pinned policy accepts sim evidence of this runtime and rejects another measurement', async () => {
  const pinned = await pinnedDevelopmentPolicy();
  const m = await runtimeMeasurement();
  assert.equal(pinned.name, 'pinned');
  assert.deepEqual(pinned.referenceValues.sim?.measurement, [toHex(m)]);
  assert.deepEqual(pinned.allowedKinds, developmentPolicy().allowedKinds);
  // It is publishable and hashes like any policy.
  assert.equal(sha256Hex(encodePolicyDocument(pinned)), hashHex(pinned));
  const now = new Date();
  const root = createSimRoot();
  const attester = issueSimAttester(root, { now });
  const verifier = new SimVerifier({ roots: [root.publicKey] });
  const reportData = new Uint8Array(randomBytes(64));
  const appraise = async (measurement: Uint8Array) => {
    const ev = await new SimBackend({ attester, measurement, now: () => now }).collect(reportData);
    return verifier.appraise(ev, { policy: pinned, now, expectedReportData: reportData });
  };
  const ok = await appraise(m);
  assert.deepEqual(ok.reasons, []);
  assert.equal(ok.accepted, true);
  const modified = Uint8Array.from(m);
  modified[0] ^= 1;
  const bad = await appraise(modified);
  assert.equal(bad.accepted, false);
  assert.deepEqual(
    bad.reasons.map((r) => r.code),
    ['ATTESTATION_MEASUREMENT_MISMATCH'],
  );
  // The development policy (no reference values) accepts both: pinning is what rejects.
  const dev = await new SimBackend({ attester, measurement: modified, now: () => now }).collect(reportData);
  assert.equal(
    (await verifier.appraise(dev, { policy: developmentPolicy(), now, expectedReportData: reportData }))
      .accepted,
    true,
  );
});

test("the pinned PCR 23 is what a TPM holds after the daemon's runtime measurement", async (t) => {
  if (!['swtpm', 'swtpm_setup', 'tpm2_pcrextend', 'tpm2_pcrread'].every((n) => requireTool(t, n))) return;
  const pinned = await pinnedDevelopmentPolicy();
  const sw = await Swtpm.start();
  try {
    const tools = new Tpm2Tools({ tcti: sw.tcti });
    // What src/node/daemon.ts #measureRuntime does at node start.
    const m = tpm2RuntimeMeasurement([
      { name: 'ferry/enclave-runtime', content: await runtimeMeasurement() },
    ]);
    const out = await tools.session(async (run) => {
      await run('tpm2_pcrreset', [String(RUNTIME_PCR)]);
      await run('tpm2_pcrextend', [`${RUNTIME_PCR}:sha256=${toHex(m)}`]);
      return run('tpm2_pcrread', [`sha256:${RUNTIME_PCR}`]);
    });
    const value = /23\s*:\s*0x([0-9A-Fa-f]{64})/.exec(out)?.[1]?.toLowerCase();
    assert.ok(value, `tpm2_pcrread output: ${out}`);
    assert.deepEqual(pinned.referenceValues.tpm2?.pcrs?.sha256?.['23'], [value]);
  } finally {
    await sw.stop();
  }
});
