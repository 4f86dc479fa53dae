/**
 * Hostile executors on a live devnet (several OS processes, a real anvil), each running a copy
 * of this checkout that its operator changed:
 *
 * - `executor-fr` and `executor-it` run a modified enclave runtime (one byte of a comment in
 *   src/enclave/main.ts), so its `sim` evidence reports another runtime measurement (§9.2,
 *   §10.8). A dataset allowed only in FR whose policy pins the honest runtime (`--policy
 *   pinned`) is not processed: every verifier votes fail (measurement), no key is released, the
 *   task fails and the escrow is refunded. And a dataset (IT) whose own policy pins nothing
 *   (`--policy development`) still does not give bob's app away: bob published the app with his
 *   own appraisal policy (pinned), which verifiers and his agent apply too (§9.5) — the attack of
 *   the security review's finding 2.
 * - `executor-es` runs the honest enclave runtime but registered as a `tpm2` executor while its
 *   node hands the enclave a `sim` backend: its evidence is genuine sim evidence of the honest
 *   runtime, which the pinned policy would accept — but the dataset allows only tpm2, so every
 *   verifier refuses it (ATTESTATION_KIND_NOT_ALLOWED, finding 5).
 * A positive control first: a DE dataset under the pinned policy completes on the honest executor.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Hex } from 'viem';
import { examplePath } from '../examples/index.ts';
import { decodeSimRoot, encodeSimAttester, issueSimAttester } from '../src/attestation/sim/index.ts';
import { getCredits, getTask } from '../src/chain/index.ts';
import { loadProfileSecrets } from '../src/profile/index.ts';
import { runtimeMeasurement } from '../src/enclave/index.ts';
import { computeRuntimeManifest } from '../src/enclave/measure.ts';
import { type AttemptResult, decodeSignedAttemptResult } from '../src/protocol/index.ts';
import { fromHex, toHex } from '../src/kernel/index.ts';
import { createPeerClient } from '../src/net/index.ts';
import {
  chainFor,
  ferry,
  type Net,
  signal,
  taskEvents,
  verifierUnits,
  waitFinal,
  withDevnet,
} from './helpers/devnet.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A copy of the checkout (src, bin, package files; node_modules and examples linked). */
function checkoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-modified-'));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(ROOT, 'examples'), join(dir, 'examples'));
  return dir;
}

/** A copy whose enclave runtime differs by one byte of a comment in src/enclave/main.ts. */
function modifiedRuntime(): string {
  const dir = checkoutCopy();
  const file = join(dir, 'src', 'enclave', 'main.ts');
  const text = readFileSync(file);
  // One byte of the first comment: a lower-case letter after "* " becomes upper case.
  const at = text.toString('latin1').search(/\* [a-z]/) + 2;
  assert.ok(at > 1, 'main.ts has a comment to change');
  const changed = Buffer.from(text);
  changed[at] = changed[at] - 0x20;
  writeFileSync(file, changed);
  return dir;
}

/** A copy whose node gives its enclave the sim backend whatever TEE kind it registered. */
function simBehindTpm2(): string {
  const dir = checkoutCopy();
  const file = join(dir, 'src', 'node', 'decisions.ts');
  const text = readFileSync(file, 'utf8');
  const from = "if (c.tee === 'sim' && c.simAttester) return { kind: 'sim', attesterFile: c.simAttester };";
  assert.ok(text.includes(from), 'the node chooses its enclave backend where this test expects');
  writeFileSync(
    file,
    text.replace(from, "if (c.simAttester) return { kind: 'sim', attesterFile: c.simAttester };"),
  );
  return dir;
}

type Extra = { proc: ChildProcess; ready: Record<string, string>; log: string };

/** Starts `ferry node start` from `checkout` as executor `name` in `region`, joining the devnet. */
async function startExecutor(
  net: Net,
  checkout: string,
  name: string,
  region: string,
  tee: 'sim' | 'tpm2' = 'sim',
): Promise<Extra> {
  const { info } = net.devnet;
  const created = await ferry(['profile', 'create', name], net.env);
  assert.equal(created.code, 0, created.stdout + created.stderr);
  const c = await chainFor(net, 'carol');
  await c.public.request({
    method: 'anvil_setBalance' as never,
    params: [loadProfileSecrets(net.home, name).profile.address, `0x${(10n ** 21n).toString(16)}`] as never,
  });
  const dir = join(net.home, 'nodes', name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const root = decodeSimRoot(readFileSync(join(net.home, 'devnet', 'sim-root')));
  const attester = join(dir, 'sim-attester');
  writeFileSync(attester, encodeSimAttester(issueSimAttester(root)), { mode: 0o600 });
  root.secretKey.fill(0);
  const log = join(net.home, 'logs', `${name}.log`);
  const out = createWriteStream(log, { flags: 'a' });
  const proc = spawn(
    join(checkout, 'bin', 'ferry'),
    [
      'node',
      'start',
      '--profile',
      name,
      '--roles',
      'executor',
      '--tee',
      tee,
      '--region',
      region,
      '--rpc',
      info.rpcUrl,
      '--contracts',
      JSON.stringify(info.contracts),
      '--sim-roots',
      info.simRoot!,
      '--allow-sim',
      '--local-network',
      '--sim-attester',
      attester,
      '--json',
    ],
    { env: net.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stderr!.pipe(out);
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready in 60 s`)), 60_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready; see ${log}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      out.write(`${line}\n`);
      try {
        const v = JSON.parse(line);
        if (v.ready === true) {
          clearTimeout(timer);
          resolve(v);
        }
      } catch {
        // not the readiness line
      }
    });
  });
  return { proc, ready, log };
}

async function stopExecutor(x: Extra): Promise<void> {
  if (x.proc.exitCode !== null || x.proc.signalCode !== null) return;
  const exited = new Promise((r) => x.proc.once('exit', r));
  signal(x.proc.pid!, 'SIGTERM');
  const t = setTimeout(() => signal(x.proc.pid!, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** The task's events of one attempt (or all) by name. */
async function eventsOf(net: Net, taskId: bigint) {
  const evs = await taskEvents(await chainFor(net, 'carol'), taskId);
  return (name: string, attempt?: number) =>
    evs.filter((e) => e.eventName === name && (attempt === undefined || Number(e.args.attempt) === attempt));
}

/** Each voter's signed attempt result (§9.6), fetched from the verifier and checked under its key. */
async function attemptResults(net: Net, taskId: bigint, votes: { args: Record<string, unknown> }[]) {
  const out: { name: string; result: AttemptResult }[] = [];
  for (const v of votes) {
    const n = net.devnet.info.nodes.find(
      (x) => x.address.toLowerCase() === String(v.args.verifier).toLowerCase(),
    )!;
    const bytes = await createPeerClient({ baseUrl: n.endpoint }).bytes(
      'GET',
      `/v1/tasks/${taskId}/attempts/1/attestation-result`,
    );
    out.push({
      name: n.name,
      result: decodeSignedAttemptResult(bytes, fromHex(n.keyId, 'keyId', 32)).result,
    });
  }
  return out;
}

/** The attempt was rejected by every verifier, nothing was released, the task failed and carol was refunded. */
async function assertFailedClosed(net: Net, taskId: bigint, executor: string) {
  const final = await waitFinal(net, taskId);
  const of = await eventsOf(net, taskId);
  const committed = of('EvidenceCommitted', 1);
  assert.equal(committed.length, 1, 'the hostile executor committed evidence');
  assert.equal(String(committed[0].args.executor).toLowerCase(), executor.toLowerCase());
  const votes = of('VoteCast', 1);
  assert.ok(votes.length >= 1);
  assert.ok(
    votes.every((v) => v.args.pass === false),
    'every verifier voted fail',
  );
  assert.equal(of('TaskAttested').length, 0);
  assert.equal(of('KeyReleased').length, 0, 'no key released');
  assert.equal(final.status, 'failed', `task ended as ${final.status}`);
  const fee = of('TaskCreated')[0].args.fee as bigint;
  assert.equal(of('TaskFailed')[0]?.args.refund, fee, 'the escrow is refunded');
  const c = await chainFor(net, 'carol');
  assert.equal((await getTask(c, taskId))!.fee, 0n);
  const carol = loadProfileSecrets(net.home, 'carol').profile.address as Hex;
  assert.ok((await getCredits(c, carol)) >= fee);
  return { votes, results: await attemptResults(net, taskId, votes) };
}

test("hostile executors: a modified runtime is rejected under the pinned dataset policy and under the app owner's policy when the dataset pins nothing; sim evidence from an executor registered as tpm2 is refused by kind; nothing is released, tasks fail and are refunded", {
  timeout: 600_000,
}, async () => {
  const honest = await runtimeMeasurement();
  const modifiedDir = modifiedRuntime();
  const simDir = simBehindTpm2();
  const extras: Extra[] = [];
  try {
    const modified = (await computeRuntimeManifest(modifiedDir)).measurement;
    assert.notEqual(toHex(modified), toHex(honest), 'the modified runtime measures differently');
    assert.equal(
      toHex((await computeRuntimeManifest(simDir)).measurement),
      toHex(honest),
      'a node-side change does not change the enclave runtime measurement',
    );

    await withDevnet({ executors: 1, verifiers: 3 }, async (net) => {
      try {
        const fr = await startExecutor(net, modifiedDir, 'executor-fr', 'FR');
        extras.push(fr);
        // A second one in IT: a rejected executor is excluded (and, while rejection slashes, jailed).
        const it = await startExecutor(net, modifiedDir, 'executor-it', 'IT');
        extras.push(it);
        const es = await startExecutor(net, simDir, 'executor-es', 'ES', 'tpm2');
        extras.push(es);
        // bob's app: its own appraisal policy (the devnet default: pinned to the honest runtime),
        // runnable on sim and tpm2.
        const app = await ferry(
          ['app', 'publish', examplePath('csv-stats'), '--tee', 'sim,tpm2', '--profile', 'bob'],
          net.env,
        );
        assert.equal(app.code, 0, app.stdout + app.stderr);
        assert.equal(app.json.appraisalPolicy, 'pinned');
        assert.deepEqual(app.json.teeKinds, ['sim', 'tpm2']);
        const tau = (await verifierUnits(net)).reduce((s, v) => s + v.units, 0n);
        const file = join(net.home, 'cities.csv');
        writeFileSync(file, 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n');
        const add = async (region: string, policy: string, tee: string) => {
          const r = await ferry(
            [
              'dataset',
              'add',
              file,
              '--region',
              region,
              '--allow-app',
              app.json.measurement,
              '--tee',
              tee,
              '--policy',
              policy,
              '--committee',
              String(tau),
              '--threshold',
              '2/3',
              '--profile',
              'alice',
            ],
            net.env,
          );
          assert.equal(r.code, 0, r.stdout + r.stderr);
          return r.json.datasetId as string;
        };
        const run = async (datasetId: string) => {
          const r = await ferry(
            ['task', 'run', '--app', app.json.appId, '--dataset', datasetId, '--profile', 'carol'],
            net.env,
          );
          assert.equal(r.code, 0, r.stdout + r.stderr);
          return BigInt(r.json.taskId);
        };

        // Positive control: the honest runtime passes the pinned policies (app and dataset).
        const control = await waitFinal(net, await run(await add('DE', 'pinned', 'sim')));
        assert.equal(control.status, 'completed', `the control task ended as ${control.status}`);

        // 1. Modified runtime, dataset pinned: both policies refuse the measurement.
        const t1 = await run(await add('FR', 'pinned', 'sim'));
        const r1 = await assertFailedClosed(net, t1, fr.ready.address);
        for (const { name, result } of r1.results) {
          assert.equal(result.accepted, false);
          assert.deepEqual(
            result.policies.map((p) => p.assetKind),
            ['app', 'dataset'],
            `${name}: one entry per policy applied`,
          );
          for (const p of result.policies) {
            assert.equal(p.result.measurement.replace(/^0x/, ''), toHex(modified));
            assert.ok(
              p.result.reasons.some((r) => r.code === 'ATTESTATION_MEASUREMENT_MISMATCH'),
              `${name} ${p.assetKind}: ${p.result.reasons.map((r) => r.code).join(', ')}`,
            );
          }
        }
        const show = await ferry(['task', 'show', String(t1)], net.env);
        assert.equal(show.json.status, 'failed');
        assert.match(show.json.error.message, /^evidence rejected by \d+ of \d+ verifiers: .*measurement/i);

        // 2. Modified runtime, dataset policy pins nothing (development): the app owner's pinned
        // policy still refuses it, so neither the data nor bob's app key is released.
        const t2 = await run(await add('IT', 'development', 'sim'));
        const r2 = await assertFailedClosed(net, t2, it.ready.address);
        for (const { name, result } of r2.results) {
          const [appEntry, dsEntry] = result.policies;
          assert.equal(appEntry.assetKind, 'app');
          assert.equal(appEntry.result.accepted, false, `${name}: the app's policy refuses`);
          assert.ok(appEntry.result.reasons.some((r) => r.code === 'ATTESTATION_MEASUREMENT_MISMATCH'));
          assert.equal(dsEntry.assetKind, 'dataset');
          assert.equal(
            dsEntry.result.accepted,
            true,
            `${name}: the dataset's own policy would have accepted`,
          );
        }

        // 3. Honest runtime, sim evidence from an executor registered as tpm2, dataset allows tpm2
        // only: refused by kind before any policy.
        const t3 = await run(await add('ES', 'pinned', 'tpm2'));
        const r3 = await assertFailedClosed(net, t3, es.ready.address);
        for (const { name, result } of r3.results) {
          assert.equal(result.policies.length, 0, `${name}: no policy applied`);
          assert.deepEqual(
            result.reasons.map((r) => r.code),
            ['ATTESTATION_KIND_NOT_ALLOWED'],
            name,
          );
        }
      } catch (e) {
        for (const x of extras)
          process.stderr.write(`--- ${x.log}\n${readFileSync(x.log, 'utf8').slice(-4000)}\n`);
        throw e;
      } finally {
        for (const x of extras) await stopExecutor(x);
      }
    });
  } finally {
    rmSync(modifiedDir, { recursive: true, force: true });
    rmSync(simDir, { recursive: true, force: true });
  }
});
