/**
 * App and dataset policies through the CLI on a network that is not a devnet (a plain anvil
 * with Ferry deployed, named by --rpc and --contracts): `app publish --policy FILE --tee KINDS`
 * publishes the policy document on chain and `app ls` shows it; without --policy, `app publish`
 * and `dataset add` are usage errors (exit 2) before anything is encrypted or spent: there is
 * no default policy off a devnet. Every command is spawned as `bin/ferry ... --json`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Address, sha256 } from 'viem';
import { agentHome } from '../src/agent/config.ts';
import { encodePolicyDocument, PRODUCTION_POLICY, parsePolicy } from '../src/attestation/index.ts';
import { getApp, getPolicyDocuments } from '../src/chain/index.ts';
import { startTestChain, type TestChain } from '../src/chain/testing.ts';
import { createProfile } from '../src/profile/index.ts';

const FERRY = fileURLToPath(new URL('../bin/ferry', import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: parsed CLI JSON, checked field by field by the assertions
type J = any;
type Run = { code: number; json: J; stdout: string; stderr: string };

function ferry(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(FERRY, [...args, '--json'], { env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      let json: J = {};
      try {
        json = JSON.parse(stdout);
      } catch {
        // asserted by the caller
      }
      resolve({ code: typeof code === 'number' ? code : 1, json, stdout, stderr });
    });
  });
}

let tc: TestChain;
let home = '';
let work = '';
let env: NodeJS.ProcessEnv = {};
let net: string[] = [];
const owners: Record<string, Address> = {};

/** bob's own policy: tpm2 only, PCR 23 pinned. */
const bobPolicy = parsePolicy({
  ...PRODUCTION_POLICY,
  name: 'bob-tpm2-pinned',
  allowedKinds: ['tpm2'],
  referenceValues: { tpm2: { pcrs: { sha256: { '23': ['22'.repeat(32)] } } } },
});

before(async () => {
  tc = await startTestChain();
  home = mkdtempSync(join(tmpdir(), 'ferry-asset-policy-'));
  work = mkdtempSync(join(tmpdir(), 'ferry-asset-policy-work-'));
  env = { ...process.env, FERRY_HOME: home, FERRY_LOG_LEVEL: 'warn' };
  delete env.FERRY_PROFILE;
  delete env.FERRY_RPC;
  delete env.FERRY_CONTRACTS;
  for (const name of ['alice', 'bob']) {
    const p = createProfile(home, name);
    owners[name] = p.address as Address;
    await tc.rpc('anvil_setBalance', [p.address, '0x21e19e0c9bab2400000']);
  }
  net = ['--rpc', tc.chain.rpcUrl, '--contracts', JSON.stringify(tc.contracts)];
  // The smallest valid WebAssembly module: magic and version.
  writeFileSync(join(work, 'app.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  writeFileSync(join(work, 'policy.json'), JSON.stringify(bobPolicy));
  writeFileSync(join(work, 'cities.csv'), 'temp,city\n10,Berlin\n');
});

after(async () => {
  await tc?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const balance = (a: Address) => tc.deployer.public.getBalance({ address: a });

test('off a devnet, app publish and dataset add without --policy are usage errors; nothing is spent', async () => {
  const before = { alice: await balance(owners.alice), bob: await balance(owners.bob) };
  const app = await ferry([
    'app',
    'publish',
    join(work, 'app.wasm'),
    '--profile',
    'bob',
    '--endpoint',
    'http://127.0.0.1:9',
    ...net,
  ]);
  assert.equal(app.code, 2, app.stdout + app.stderr);
  assert.equal(app.json.error.code, 'USAGE_MISSING_ARGUMENT');
  assert.match(app.json.error.message, /--policy/);
  assert.ok(
    app.json.error.hints.some((h: string) =>
      /release, production, development, pinned, or a policy JSON file/.test(h),
    ),
    app.json.error.hints.join(' / '),
  );
  const ds = await ferry([
    'dataset',
    'add',
    join(work, 'cities.csv'),
    '--region',
    'DE',
    '--allow-app',
    'any',
    '--profile',
    'alice',
    '--endpoint',
    'http://127.0.0.1:9',
    ...net,
  ]);
  assert.equal(ds.code, 2, ds.stdout + ds.stderr);
  assert.equal(ds.json.error.code, 'USAGE_MISSING_ARGUMENT');
  assert.match(ds.json.error.message, /--policy/);
  // Nothing registered, nothing paid, nothing encrypted into the owners' agents.
  assert.equal(await balance(owners.alice), before.alice);
  assert.equal(await balance(owners.bob), before.bob);
  assert.equal(await getApp(tc.deployer, 1n), null);
  assert.equal(existsSync(agentHome('alice', env)), false);
  assert.equal(existsSync(agentHome('bob', env)), false);
  const ls = await ferry(['dataset', 'ls', ...net]);
  assert.equal(ls.code, 0, ls.stdout + ls.stderr);
  assert.deepEqual(ls.json.datasets, []);
});

test('app publish --policy FILE --tee KINDS publishes the document; app ls shows kinds and policy', async () => {
  const r = await ferry([
    'app',
    'publish',
    join(work, 'app.wasm'),
    '--policy',
    join(work, 'policy.json'),
    '--tee',
    'tpm2,sgx',
    '--profile',
    'bob',
    '--endpoint',
    'http://127.0.0.1:9',
    ...net,
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const doc = encodePolicyDocument(bobPolicy);
  const hash = sha256(doc).slice(2);
  assert.deepEqual(r.json.teeKinds, ['tpm2', 'sgx']);
  assert.equal(r.json.appraisalPolicy, 'bob-tpm2-pinned');
  assert.equal(r.json.appraisalPolicyHash, hash);
  // On chain: the app's fields, and the document itself in its registration event.
  const appId = BigInt(r.json.appId);
  const a = await getApp(tc.deployer, appId);
  assert.deepEqual(
    [a?.owner, a?.teeKinds, a?.appraisalPolicyHash],
    [owners.bob, ['tpm2', 'sgx'], `0x${hash}`],
  );
  const docs = await getPolicyDocuments(tc.deployer, appId, { assetKind: 'app' });
  assert.equal(docs.length, 1);
  assert.deepEqual(docs[0].document, new Uint8Array(doc));
  const ls = await ferry(['app', 'ls', ...net]);
  assert.equal(ls.code, 0, ls.stdout + ls.stderr);
  assert.deepEqual(
    ls.json.apps.map((x: J) => [
      x.appId,
      x.teeKinds,
      x.appraisalPolicy,
      x.appraisalPolicyHash,
      x.policyEpoch,
    ]),
    [[r.json.appId, ['tpm2', 'sgx'], 'bob-tpm2-pinned', hash, 0]],
  );
  // A bad --policy value is refused before anything is spent, naming the choices.
  const bad = await ferry([
    'app',
    'publish',
    join(work, 'app.wasm'),
    '--policy',
    join(work, 'missing.json'),
    '--profile',
    'bob',
    '--endpoint',
    'http://127.0.0.1:9',
    ...net,
  ]);
  assert.notEqual(bad.code, 0);
  assert.ok(bad.json.error.hints.some((h: string) => /pinned/.test(h)));
  assert.equal(await getApp(tc.deployer, appId + 1n), null);
});
