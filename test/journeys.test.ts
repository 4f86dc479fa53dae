/**
 * The user journeys through the CLI on one local devnet (sim TEE, 1 executor, 3 verifiers):
 * bob publishes csv-stats, alice adds datasets with policies, carol runs tasks and waits, an
 * auditor verifies receipts by id and from a saved bundle (and a tampered one fails), and the
 * refusals come back in words: no executor in the region, app not allowed, revoked dataset,
 * evidence rejected by the verifiers. How the app ended (exit code, trap, time limit) shows in
 * task run, task result, task show and task ls; `task result` fetches and verifies later and
 * refuses a result the executor altered; without a terminal the stages are lines starting with
 * the task id; careless-user errors (unfunded or misspelt profile, missing file, --out into a
 * missing folder) are refused in words before anything is spent.
 * Every command is spawned as `bin/ferry ... --json` (one case without, to see the stage lines).
 * No test depends on another having run: the published app and the registered dataset are
 * made by whichever test needs them first (`csvStats()`, `citiesDataset()`), and the test that
 * gets the executor jailed runs on a devnet of its own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { connect, getCredits, getTask, writer } from '../src/chain/index.ts';
import { createTaskFor } from '../src/requester/index.ts';
import { loadProfileSecrets } from '../src/profile/index.ts';
import { type Devnet, devnetUp } from '../src/devnet/up.ts';
import {
  type CliJson as J,
  type CliRun as Run,
  FERRY,
  ferry,
  type Net,
  quiet,
  taskEvents,
  withDevnet,
} from './helpers/devnet.ts';

let home = '';
let env: NodeJS.ProcessEnv = {};
let devnet: Devnet | null = null;
let work = '';
const csv = 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n-3,Oslo\n';
/** csv-stats's measurement: the SHA-256 of the module. */
const measurement = createHash('sha256')
  .update(readFileSync(examplePath('csv-stats')))
  .digest('hex');

let published: Promise<Run> | null = null;
/** bob publishes csv-stats: once, by the first test that needs it. */
async function csvStats(): Promise<{ appId: string; run: Run }> {
  published ??= ferry(['app', 'publish', examplePath('csv-stats'), '--profile', 'bob'], env);
  const run = await published;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  return { appId: run.json.appId, run };
}

let registered: Promise<Run> | null = null;
/**
 * alice adds cities.csv in DE for csv-stats, committee tau 3000 with threshold 2/3 (every
 * verifier holds all its stake as seats, tau is the verifier stake in units: 2 of 3 must pass):
 * once, by the first test that needs it.
 */
async function citiesDataset(): Promise<{ datasetId: string; run: Run }> {
  registered ??= ferry(
    [
      'dataset',
      'add',
      join(work, 'cities.csv'),
      '--region',
      'DE',
      '--allow-app',
      measurement,
      '--committee',
      '3000',
      '--threshold',
      '2/3',
      '--profile',
      'alice',
    ],
    env,
  );
  const run = await registered;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  return { datasetId: run.json.datasetId, run };
}

/** alice adds cities.csv in `region`, allowing one app, with tau 3000 and threshold 2000. */
function addCities(region: string, allowApp: string): Promise<Run> {
  return ferry(
    [
      'dataset',
      'add',
      join(work, 'cities.csv'),
      '--region',
      region,
      '--allow-app',
      allowApp,
      '--committee',
      '3000',
      '--threshold',
      '2000',
      '--profile',
      'alice',
    ],
    env,
  );
}

before(async () => {
  await ensureExamplesBuilt();
  home = mkdtempSync(join(tmpdir(), 'ferry-journeys-'));
  work = mkdtempSync(join(tmpdir(), 'ferry-journeys-work-'));
  env = { ...process.env, FERRY_HOME: home, FERRY_LOG_LEVEL: 'warn' };
  delete env.FERRY_PROFILE;
  devnet = await devnetUp({ home, executors: 1, verifiers: 3, log: quiet, env });
  writeFileSync(join(work, 'cities.csv'), csv);
});

after(async () => {
  await devnet?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

test('without a network: DEVNET_NOT_RUNNING, exit 2', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'ferry-empty-'));
  try {
    const r = await ferry(['dataset', 'ls'], { ...env, FERRY_HOME: empty });
    assert.equal(r.code, 2);
    assert.equal(r.json.error.code, 'DEVNET_NOT_RUNNING');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('nodes ls: the registry from the chain', async () => {
  const r = await ferry(['nodes', 'ls'], env);
  assert.equal(r.code, 0, r.stdout);
  assert.equal(r.json.nodes.length, 4);
  assert.deepEqual(r.json.nodes.map((n: J) => n.roles.join()).sort(), [
    'executor',
    'verifier',
    'verifier',
    'verifier',
  ]);
  for (const n of r.json.nodes) {
    assert.equal(n.status, 'active');
    assert.equal(n.region, 'DE');
    assert.equal(n.stake, (10n ** 18n).toString());
  }
});

test('app publish: bob registers csv-stats with its measurement; bad input refused', async () => {
  const noProfile = await ferry(['app', 'publish', examplePath('csv-stats')], env);
  assert.equal(noProfile.code, 2);
  assert.equal(noProfile.json.error.code, 'USAGE_MISSING_ARGUMENT');
  const notWasm = await ferry(['app', 'publish', join(work, 'cities.csv'), '--profile', 'bob'], env);
  assert.equal(notWasm.code, 2);
  assert.equal(notWasm.json.error.code, 'USAGE_INVALID_ARGUMENT');
  const { appId, run: r } = await csvStats();
  assert.equal(r.json.measurement, measurement);
  assert.match(appId, /^[0-9]+$/);
  // On a devnet the app's policy defaults to pinned and its TEE kinds to sim.
  assert.deepEqual([r.json.teeKinds, r.json.appraisalPolicy], [['sim'], 'pinned']);
  const ls = await ferry(['app', 'ls'], env);
  assert.equal(ls.code, 0);
  assert.deepEqual(
    ls.json.apps
      .filter((a: J) => a.appId === appId)
      .map((a: J) => [a.appId, a.measurement, a.teeKinds, a.appraisalPolicy]),
    [[appId, measurement, ['sim'], 'pinned']],
  );
});

test('dataset add: alice stores and registers a dataset; committee figures shown; bad input refused', async () => {
  const file = join(work, 'cities.csv');
  const noRegion = await ferry(
    ['dataset', 'add', file, '--allow-app', measurement, '--profile', 'alice'],
    env,
  );
  assert.equal(noRegion.code, 2);
  assert.equal(noRegion.json.error.code, 'USAGE_MISSING_ARGUMENT');
  const badRegion = await ferry(
    ['dataset', 'add', file, '--region', 'Germany', '--allow-app', measurement, '--profile', 'alice'],
    env,
  );
  assert.equal(badRegion.code, 2);
  const badThreshold = await ferry(
    [
      'dataset',
      'add',
      file,
      '--region',
      'DE',
      '--allow-app',
      measurement,
      '--committee',
      '5',
      '--threshold',
      '9',
      '--profile',
      'alice',
    ],
    env,
  );
  assert.equal(badThreshold.code, 2);
  const missing = await ferry(
    ['dataset', 'add', join(work, 'nope.csv'), '--region', 'DE', '--allow-app', 'any', '--profile', 'alice'],
    env,
  );
  assert.equal(missing.code, 1);
  assert.equal(missing.json.error.code, 'IO_READ_FAILED');
  const past = await ferry(
    [
      'dataset',
      'add',
      file,
      '--region',
      'DE',
      '--allow-app',
      'any',
      '--expires',
      '2001-01-01T00:00:00Z',
      '--profile',
      'alice',
    ],
    env,
  );
  assert.equal(past.code, 2);
  assert.match(past.json.error.message, /future/);
  const noPolicy = await ferry(
    [
      'dataset',
      'add',
      file,
      '--region',
      'DE',
      '--allow-app',
      'any',
      '--policy',
      join(work, 'nope.json'),
      '--profile',
      'alice',
    ],
    env,
  );
  assert.equal(noPolicy.code, 1);
  assert.equal(noPolicy.json.error.code, 'IO_READ_FAILED');
  writeFileSync(join(work, 'bad-policy.json'), '{"version": 1}');
  const badPolicy = await ferry(
    [
      'dataset',
      'add',
      file,
      '--region',
      'DE',
      '--allow-app',
      'any',
      '--policy',
      join(work, 'bad-policy.json'),
      '--profile',
      'alice',
    ],
    env,
  );
  assert.equal(badPolicy.code, 2);
  assert.equal(badPolicy.json.error.code, 'ATTESTATION_POLICY_INVALID');
  const expiring = await ferry(
    [
      'dataset',
      'add',
      file,
      '--region',
      'DE',
      '--allow-app',
      'any',
      '--expires',
      '+1h',
      '--max-uses',
      '3',
      '--profile',
      'alice',
    ],
    env,
  );
  assert.equal(expiring.code, 0, expiring.stdout);
  assert.ok(expiring.json.expiresAt > Date.now() / 1000 + 3000);
  assert.equal(expiring.json.maxUses, 3);
  assert.equal(expiring.json.allowedApps, 'any');
  assert.equal(expiring.json.tau, 10);
  assert.equal(expiring.json.threshold, 7);
  const { datasetId, run: r } = await citiesDataset();
  assert.match(datasetId, /^[0-9]+$/);
  assert.deepEqual(r.json.regions, ['DE']);
  assert.deepEqual(r.json.teeKinds, ['sim']);
  assert.equal(r.json.threshold, 2000);
  assert.equal(r.json.appraisalPolicy, 'pinned');
  assert.equal(typeof r.json.committee.capture, 'number');
  assert.equal(typeof r.json.committee.livenessFailure, 'number');
  const ls = await ferry(['dataset', 'ls', '--mine', '--profile', 'alice'], env);
  assert.equal(ls.code, 0);
  const d = ls.json.datasets.find((x: J) => x.datasetId === datasetId);
  assert.equal(d.ciphertextHash, r.json.ciphertextHash);
  assert.deepEqual(d.policy.regions, ['DE']);
  assert.equal(d.revoked, false);
  const bobs = await ferry(['dataset', 'ls', '--mine', '--profile', 'bob'], env);
  assert.deepEqual(bobs.json.datasets, []);
});

test('task run --wait: completed, verified, result decrypted; receipt verify by id and from the bundle', {
  timeout: 120_000,
}, async () => {
  const { appId } = await csvStats();
  const { datasetId } = await citiesDataset();
  const out = join(work, 'result.json');
  const bundle = join(work, 'receipt.json');
  const r = await ferry(
    [
      'task',
      'run',
      '--app',
      appId,
      '--dataset',
      datasetId,
      '--wait',
      '--out',
      out,
      '--receipt',
      bundle,
      '--profile',
      'carol',
    ],
    env,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.status, 'completed');
  assert.equal(r.json.verified, true);
  const stages = ['seeded', 'claimed', 'evidence', 'votes', 'keysReleased', 'running', 'receipt', 'done'];
  assert.deepEqual(Object.keys(r.json.stagesMs), stages);
  for (let i = 1; i < stages.length; i++) {
    assert.ok(
      r.json.stagesMs[stages[i]] >= r.json.stagesMs[stages[i - 1]],
      `${stages[i]} after ${stages[i - 1]}`,
    );
  }
  const result = JSON.parse(readFileSync(out, 'utf8'));
  assert.deepEqual(
    [result.column, result.count, result.mean, result.min, result.max],
    ['temp', 4, 10.5, -3, 21],
  );
  assert.ok(r.json.checks.every((c: J) => c.ok));
  const taskId = r.json.taskId;

  const byId = await ferry(['receipt', 'verify', taskId], env);
  assert.equal(byId.code, 0, byId.stdout);
  assert.equal(byId.json.verified, true);
  assert.equal(byId.json.taskId, taskId);
  for (const name of [
    'claim-vrf',
    'claim-lowest',
    'evidence-binding',
    'evidence-appraisal',
    'votes-vrf',
    'votes-seats',
    'votes-threshold',
    'receipt-signature',
  ]) {
    assert.equal(byId.json.checks.find((c: J) => c.name === name)?.ok, true, name);
  }
  const byFile = await ferry(['receipt', 'verify', bundle], env);
  assert.equal(byFile.code, 0, byFile.stdout);
  assert.equal(byFile.json.verified, true);

  // A bundle whose evidence was altered, and a result that is not the task's, fail (exit 3).
  const b = JSON.parse(readFileSync(bundle, 'utf8'));
  const flipped = b.evidence.slice(0, -2) + (b.evidence.endsWith('00') ? '01' : '00');
  writeFileSync(join(work, 'tampered.json'), JSON.stringify({ ...b, evidence: flipped }));
  const tampered = await ferry(['receipt', 'verify', join(work, 'tampered.json')], env);
  assert.equal(tampered.code, 3, tampered.stdout);
  assert.equal(tampered.json.verified, false);
  assert.equal(tampered.json.checks.find((c: J) => c.name === 'evidence-hash').ok, false);
  // A receipt altered in the bundle no longer hashes to the one posted on chain; an altered
  // signature does not verify under the attested enclave key.
  const flip = (h: string, at: number) =>
    h.slice(0, at) + (h.slice(at, at + 2) === '00' ? '01' : '00') + h.slice(at + 2);
  writeFileSync(join(work, 'tampered-receipt.json'), JSON.stringify({ ...b, receipt: flip(b.receipt, 40) }));
  const badReceipt = await ferry(['receipt', 'verify', join(work, 'tampered-receipt.json')], env);
  assert.equal(badReceipt.code, 3, badReceipt.stdout);
  assert.equal(badReceipt.json.verified, false);
  writeFileSync(join(work, 'tampered-sig.json'), JSON.stringify({ ...b, signature: flip(b.signature, 10) }));
  const badSig = await ferry(['receipt', 'verify', join(work, 'tampered-sig.json')], env);
  assert.equal(badSig.code, 3, badSig.stdout);
  assert.equal(badSig.json.checks.find((c: J) => c.name === 'receipt-signature')?.ok, false);
  const wrongResult = await ferry(['receipt', 'verify', taskId, '--result', out], env);
  assert.equal(wrongResult.code, 3);
  assert.equal(wrongResult.json.checks.find((c: J) => c.name === 'result-ciphertext').ok, false);
  const malformed = await ferry(['receipt', 'verify', out], env);
  assert.equal(malformed.code, 3);
  assert.equal(malformed.json.error.code, 'RECEIPT_INVALID');

  const show = await ferry(['task', 'show', taskId], env);
  assert.equal(show.code, 0);
  assert.equal(show.json.status, 'completed');
  assert.ok(show.json.timeline.some((t: J) => t.event === 'TaskCompleted'));
  assert.equal(show.json.votes.length >= 2, true);
  const ls = await ferry(['task', 'ls', '--mine', '--profile', 'carol'], env);
  assert.deepEqual(
    ls.json.tasks.filter((t: J) => t.taskId === taskId).map((t: J) => [t.taskId, t.status]),
    [[taskId, 'completed']],
  );
  const none = await ferry(['task', 'show', '999'], env);
  assert.equal(none.code, 2);
  assert.equal(none.json.error.code, 'TASK_NOT_FOUND');
});

test('task run --arg: the arguments reach the app and the receipt binds them (input hash)', {
  timeout: 120_000,
}, async () => {
  const { appId } = await csvStats();
  const { datasetId } = await citiesDataset();
  const out = join(work, 'result-city.json');
  const r = await ferry(
    [
      'task',
      'run',
      '--app',
      appId,
      '--dataset',
      datasetId,
      '--arg',
      'city',
      '--wait',
      '--out',
      out,
      '--profile',
      'carol',
    ],
    env,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.verified, true);
  assert.equal(r.json.checks.find((c: J) => c.name === 'receipt-input')?.ok, true);
  // Column "city" holds no numbers: the app was run with the requester's argument, not the default.
  const result = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(result.column, 'city');
  assert.equal(result.count, 0);
});

test('task run refusals in words: no executor in the region, app not allowed, revoked dataset', async () => {
  const { appId } = await csvStats();
  const { datasetId } = await citiesDataset();
  const fr = await addCities('FR', measurement);
  assert.equal(fr.code, 0, fr.stdout);
  const r1 = await ferry(
    ['task', 'run', '--app', appId, '--dataset', fr.json.datasetId, '--wait', '--profile', 'carol'],
    env,
  );
  assert.equal(r1.code, 1);
  assert.equal(r1.json.error.code, 'TASK_FAILED');
  assert.equal(r1.json.error.message, 'no executor in region FR');

  const other = await addCities('DE', 'ab'.repeat(32));
  const r2 = await ferry(
    ['task', 'run', '--app', appId, '--dataset', other.json.datasetId, '--profile', 'carol'],
    env,
  );
  assert.equal(r2.code, 1);
  assert.equal(r2.json.error.code, 'CHAIN_POLICY_FORBIDS');
  assert.match(r2.json.error.message, /^app not allowed by the dataset's policy/);

  const rev = await ferry(['dataset', 'revoke', other.json.datasetId, '--profile', 'bob'], env);
  assert.equal(rev.code, 2, 'only the owner may revoke');
  assert.equal(rev.json.error.code, 'CHAIN_NOT_OWNER');
  const ok = await ferry(['dataset', 'revoke', other.json.datasetId, '--profile', 'alice'], env);
  assert.equal(ok.code, 0, ok.stdout);
  assert.equal(ok.json.revoked, true);
  const r3 = await ferry(
    ['task', 'run', '--app', appId, '--dataset', other.json.datasetId, '--profile', 'carol'],
    env,
  );
  assert.equal(r3.code, 1);
  assert.equal(r3.json.error.code, 'CHAIN_ASSET_REVOKED');

  const usage = await ferry(['task', 'run', '--app', 'x', '--dataset', datasetId, '--profile', 'carol'], env);
  assert.equal(usage.code, 2);
  const noDs = await ferry(['task', 'run', '--app', appId, '--dataset', '999', '--profile', 'carol'], env);
  assert.equal(noDs.code, 2);
  assert.equal(noDs.json.error.code, 'ASSET_NOT_FOUND');
});

test('a task created for a region without executors (by a client without the preflight) fails on chain with that reason; the escrow is refunded', {
  timeout: 120_000,
}, async () => {
  const { appId } = await csvStats();
  const fr = await addCities('FR', measurement);
  assert.equal(fr.code, 0, fr.stdout);
  const secrets = loadProfileSecrets(home, 'carol');
  const chain = writer(
    await connect({ rpcUrl: devnet!.info.rpcUrl, privateKey: secrets.evmPrivateKey }),
    devnet!.info.contracts,
  );
  const creditsBefore = await getCredits(chain, secrets.profile.address as `0x${string}`);
  const fee = 10n ** 16n;
  const { taskId } = await createTaskFor({
    chain,
    secrets,
    appId: BigInt(appId),
    datasetIds: [BigInt(fr.json.datasetId)],
    args: [],
    fee,
    ttlSeconds: 600,
  });
  // The nodes time out each attempt's claim window; after the last attempt the task fails.
  let show: Run | null = null;
  const end = Date.now() + 90_000;
  while (Date.now() < end) {
    show = await ferry(['task', 'show', String(taskId)], env);
    if (show.json.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.equal(show?.json.status, 'failed', show?.stdout ?? 'no output');
  assert.equal(show!.json.error.code, 'TASK_FAILED');
  assert.equal(show!.json.error.message, 'no executor in region FR');
  const events = await taskEvents(chain, taskId);
  const failed = events.filter((e) => e.eventName === 'TaskFailed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0].args.refund, fee, 'the whole escrow is refunded');
  assert.equal(events.filter((e) => e.eventName === 'TaskClaimed').length, 0, 'never claimed');
  assert.equal(events.filter((e) => e.eventName === 'KeyReleased').length, 0, 'no key released');
  assert.equal((await getTask(chain, taskId))!.fee, 0n);
  assert.equal(await getCredits(chain, secrets.profile.address as `0x${string}`), creditsBefore + fee);
});

test('task run --wait: an app that traps gives a verified receipt but exit 1 (ENCLAVE_APP_FAILED)', {
  timeout: 120_000,
}, async () => {
  const app = await ferry(['app', 'publish', examplePath('trap'), '--profile', 'bob'], env);
  assert.equal(app.code, 0, app.stdout);
  const ds = await addCities('DE', app.json.measurement);
  assert.equal(ds.code, 0, ds.stdout);
  const r = await ferry(
    ['task', 'run', '--app', app.json.appId, '--dataset', ds.json.datasetId, '--wait', '--profile', 'carol'],
    env,
  );
  assert.equal(r.code, 1, r.stdout);
  assert.equal(r.json.status, 'completed');
  assert.equal(r.json.verified, true);
  assert.equal(r.json.outcome, 'trap');
  assert.equal(r.json.appExitCode, null);
  assert.equal(r.json.error.code, 'ENCLAVE_APP_FAILED');
  // The chain state stays completed; every view of the task shows how the app ended.
  const show = await ferry(['task', 'show', r.json.taskId], env);
  assert.equal(show.json.status, 'completed');
  assert.equal(show.json.outcome, 'trap');
  const ls = await ferry(['task', 'ls'], env);
  const row = ls.json.tasks.find((t: J) => t.taskId === r.json.taskId);
  assert.deepEqual([row.status, row.outcome, row.appExitCode], ['completed', 'trap', null]);
});

test('task run --wait: an app stopped at its time limit: outcome limit, a hint naming the limit and how to raise it', {
  timeout: 180_000,
}, async () => {
  const app = await ferry(['app', 'publish', examplePath('loop'), '--profile', 'bob'], env);
  assert.equal(app.code, 0, app.stdout);
  const ds = await addCities('DE', app.json.measurement);
  assert.equal(ds.code, 0, ds.stdout);
  // The shortest run window: the app gets the protocol's minimum run time less the receipt margin.
  const r = await ferry(
    [
      'task',
      'run',
      '--app',
      app.json.appId,
      '--dataset',
      ds.json.datasetId,
      '--run-window',
      '5',
      '--wait',
      '--profile',
      'carol',
    ],
    env,
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.json.status, 'completed');
  assert.equal(r.json.verified, true);
  assert.deepEqual([r.json.outcome, r.json.appExitCode, r.json.limitHit], ['limit', null, 'time']);
  assert.equal(r.json.error.code, 'ENCLAVE_APP_FAILED');
  assert.match(r.json.error.message, /hit its time limit/);
  assert.ok(
    r.json.error.hints.some((h: string) => h.includes('--run-window')),
    r.stdout,
  );
});

test('task result: fetches, verifies and decrypts after the fact; refuses (exit 3) a result that does not match the receipt; without a terminal one line per stage', {
  timeout: 120_000,
}, async () => {
  const { appId } = await csvStats();
  const { datasetId } = await citiesDataset();
  // Not a terminal and no --json: the stages as lines on stderr, each starting with the task id.
  const plain = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      FERRY,
      [
        'task',
        'run',
        '--app',
        appId,
        '--dataset',
        datasetId,
        '--arg',
        'temp',
        '--wait',
        '--profile',
        'carol',
      ],
      { env },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(plain.code, 0, plain.stderr);
  const lines = plain.stderr.trim().split('\n');
  const id = lines.map((l) => /^task (\d+) created$/.exec(l)?.[1]).find((x) => x !== undefined);
  assert.ok(id, plain.stderr);
  for (const stage of [
    'seeded',
    'claimed',
    'evidence',
    'votes',
    'keys released',
    'running',
    'receipt',
    'done',
  ]) {
    assert.ok(
      lines.some((l) => l.startsWith(`task ${id} +`) && l.includes(` ${stage} `)),
      `a line for ${stage}:\n${plain.stderr}`,
    );
  }
  assert.equal(JSON.parse(plain.stdout).count, 4);

  const out = join(work, 'later.json');
  const bundle = join(work, 'later-receipt.json');
  const later = await ferry(
    ['task', 'result', id, '--out', out, '--receipt', bundle, '--profile', 'carol'],
    env,
  );
  assert.equal(later.code, 0, later.stdout + later.stderr);
  assert.deepEqual([later.json.verified, later.json.outcome, later.json.appExitCode], [true, 'exit', 0]);
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), JSON.parse(plain.stdout));
  const byFile = await ferry(['receipt', 'verify', bundle], env);
  assert.equal(byFile.code, 0, byFile.stdout);

  // The executor (the attacker here) serves another ciphertext than the receipt's: refused, nothing written.
  const stored = join(home, 'nodes', 'executor-1', 'results', `${id}-${later.json.attempt}.age`);
  const good = readFileSync(stored);
  const bad = Buffer.from(good);
  bad[bad.length - 1] ^= 1;
  writeFileSync(stored, bad);
  try {
    const tampered = join(work, 'tampered-result.json');
    const refused = await ferry(['task', 'result', id, '--out', tampered, '--profile', 'carol'], env);
    assert.equal(refused.code, 3, refused.stdout);
    assert.equal(refused.json.verified, false);
    assert.equal(refused.json.error.code, 'RECEIPT_INVALID');
    assert.equal(refused.json.checks.find((c: J) => c.name === 'result-ciphertext').ok, false);
    assert.equal(existsSync(tampered), false, 'nothing written');
  } finally {
    writeFileSync(stored, good);
  }
  const stranger = await ferry(['task', 'result', id, '--profile', 'alice'], env);
  assert.equal(stranger.code, 3, stranger.stdout);
  assert.equal(stranger.json.error.code, 'AGE_NO_MATCH');
});

test('errors a person can act on: unfunded profile, misspelt profile, missing file, --out into a missing folder', async () => {
  const { appId } = await csvStats();
  const { datasetId } = await citiesDataset();
  const dave = await ferry(['profile', 'create', 'dave'], env);
  assert.equal(dave.code, 0, dave.stdout);
  const poor = await ferry(['task', 'run', '--app', appId, '--dataset', datasetId, '--profile', 'dave'], env);
  assert.equal(poor.code, 2, poor.stdout);
  assert.equal(poor.json.error.code, 'CHAIN_INSUFFICIENT_FUNDS');
  assert.match(poor.json.error.message, /^profile dave cannot pay for this task: its balance is 0 ETH/);
  assert.ok(poor.json.error.hints.includes(`address: ${dave.json.address}`), poor.stdout);
  assert.ok(
    poor.json.error.hints.some((h: string) => h.includes('anvil_setBalance')),
    poor.stdout,
  );

  const typo = await ferry(
    [
      'dataset',
      'add',
      join(work, 'cities.csv'),
      '--region',
      'DE',
      '--allow-app',
      measurement,
      '--profile',
      'alicee',
    ],
    env,
  );
  assert.equal(typo.code, 2, typo.stdout);
  assert.equal(typo.json.error.code, 'PROFILE_NOT_FOUND');
  assert.match(typo.json.error.hints[0], /^known profiles: .*\balice\b.*\bbob\b.*\bcarol\b/);

  const missing = join(work, 'nope.csv');
  const noFile = await ferry(['dataset', 'add', missing, '--region', 'DE', '--profile', 'alice'], env);
  assert.equal(noFile.json.error.code, 'IO_READ_FAILED');
  assert.ok(noFile.json.error.hints.includes(`path: ${missing}`), noFile.stdout);
  const noApp = await ferry(['app', 'publish', join(work, 'nope.wasm'), '--profile', 'bob'], env);
  assert.equal(noApp.json.error.code, 'IO_READ_FAILED');
  assert.ok(noApp.json.error.hints.includes(`path: ${join(work, 'nope.wasm')}`), noApp.stdout);

  // --out into a folder that does not exist: refused before anything is created or spent.
  const secrets = loadProfileSecrets(home, 'carol');
  const chain = await connect({ rpcUrl: devnet!.info.rpcUrl });
  const balance = await chain.public.getBalance({ address: secrets.profile.address as `0x${string}` });
  const before = (await ferry(['task', 'ls'], env)).json.tasks.length;
  const noDir = await ferry(
    [
      'task',
      'run',
      '--app',
      appId,
      '--dataset',
      datasetId,
      '--wait',
      '--out',
      join(work, 'no-such-folder', 'r.json'),
      '--profile',
      'carol',
    ],
    env,
  );
  assert.equal(noDir.code, 2, noDir.stdout);
  assert.equal(noDir.json.error.code, 'USAGE_INVALID_ARGUMENT');
  assert.match(noDir.json.error.message, /^--out: cannot write to /);
  assert.equal((await ferry(['task', 'ls'], env)).json.tasks.length, before, 'no task created');
  assert.equal(
    await chain.public.getBalance({ address: secrets.profile.address as `0x${string}` }),
    balance,
    'nothing spent',
  );
});

// On a devnet of its own: it gets the only executor excluded (a rejection no longer slashes or jails, §11.5).
test('task run: evidence rejected by the verifiers (sim under the production policy) fails in words', {
  timeout: 180_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 3 }, async (net: Net) => {
    const app = await ferry(['app', 'publish', examplePath('csv-stats'), '--profile', 'bob'], net.env);
    assert.equal(app.code, 0, app.stdout + app.stderr);
    const prod = await ferry(
      [
        'dataset',
        'add',
        join(work, 'cities.csv'),
        '--region',
        'DE',
        '--allow-app',
        measurement,
        '--tee',
        'sim',
        '--policy',
        'production',
        '--committee',
        '3000',
        '--threshold',
        '2000',
        '--profile',
        'alice',
      ],
      net.env,
    );
    assert.equal(prod.code, 0, prod.stdout);
    assert.equal(prod.json.appraisalPolicy, 'production');
    const r = await ferry(
      [
        'task',
        'run',
        '--app',
        app.json.appId,
        '--dataset',
        prod.json.datasetId,
        '--wait',
        '--profile',
        'carol',
      ],
      net.env,
    );
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.json.status, 'failed');
    assert.equal(r.json.verified, false);
    assert.equal(r.json.error.code, 'TASK_FAILED');
    assert.match(
      r.json.error.message,
      /^evidence rejected by [0-9] of [0-9] verifiers: .*ATTESTATION_SIMULATION_NOT_ALLOWED/,
    );
    assert.equal(r.json.error.hints[0], 'attempt 1: evidence-rejected');
    const show = await ferry(['task', 'show', r.json.taskId], net.env);
    assert.equal(show.json.status, 'failed');
    assert.equal(show.json.error.message, r.json.error.message);
  });
});
