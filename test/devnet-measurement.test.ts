/**
 * An operator runs a modified enclave runtime: a copy of this checkout with one byte of a
 * comment changed in src/enclave/main.ts, so the runtime measurement reported by its `sim`
 * evidence (docs/protocol.md §10.8) is not this checkout's. It joins the devnet as the only
 * executor in region FR. A dataset allowed only in FR whose appraisal policy pins the sim
 * measurement to the honest runtime (`--policy pinned`) must not be processed by it: every
 * verifier votes fail (measurement), the attempt is rejected, no key is released, the task
 * fails and the escrow is refunded. A positive control first: a DE dataset under the same
 * pinned policy completes on the devnet's honest executor.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
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
import { decodeSignedResult } from '../src/attestation/index.ts';
import { decodeSimRoot, encodeSimAttester, issueSimAttester } from '../src/attestation/sim/index.ts';
import { getCredits, getTask } from '../src/chain/index.ts';
import { loadProfileSecrets } from '../src/cli/profile/store.ts';
import { runtimeMeasurement } from '../src/enclave/index.ts';
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

/** The runtime measurement of an enclave folder, as src/enclave/measure.ts defines it. */
function measureDir(dir: string): Uint8Array {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort();
  const h = createHash('sha256');
  for (const name of names) {
    h.update(`${name}\0`);
    h.update(
      createHash('sha256')
        .update(readFileSync(join(dir, name)))
        .digest(),
    );
  }
  return new Uint8Array(h.digest());
}

/** A copy of the checkout's runtime (src, bin, package.json; node_modules and examples linked). */
function modifiedCheckout(): { dir: string; changedAt: number } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-modified-'));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(ROOT, 'examples'), join(dir, 'examples'));
  const file = join(dir, 'src', 'enclave', 'main.ts');
  const text = readFileSync(file);
  // One byte of the first comment: a lower-case letter after "* " becomes upper case.
  const at = text.toString('latin1').search(/\* [a-z]/) + 2;
  assert.ok(at > 1, 'main.ts has a comment to change');
  const changed = Buffer.from(text);
  changed[at] = changed[at] - 0x20;
  writeFileSync(file, changed);
  return { dir, changedAt: at };
}

type Extra = { proc: ChildProcess; ready: Record<string, string>; log: string };

/** Starts `ferry node start` from `checkout` as executor `name` in `region`, joining the devnet. */
async function startExecutor(net: Net, checkout: string, name: string, region: string): Promise<Extra> {
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
      'sim',
      '--region',
      region,
      '--rpc',
      info.rpcUrl,
      '--contracts',
      JSON.stringify(info.contracts),
      '--sim-roots',
      info.simRoot!,
      '--allow-sim',
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

test('a modified enclave runtime (one byte of a comment) is rejected by the verifiers under a pinned policy; no key is released, the task fails, the escrow is refunded', {
  timeout: 360_000,
}, async () => {
  const honest = await runtimeMeasurement();
  assert.equal(toHex(measureDir(join(ROOT, 'src', 'enclave'))), toHex(honest), 'the measurement as defined');
  const copy = modifiedCheckout();
  let extra: Extra | null = null;
  try {
    const modified = measureDir(join(copy.dir, 'src', 'enclave'));
    assert.notEqual(toHex(modified), toHex(honest), 'the modified runtime measures differently');

    await withDevnet({ executors: 1, verifiers: 3 }, async (net) => {
      try {
        extra = await startExecutor(net, copy.dir, 'executor-fr', 'FR');
        const app = await ferry(['app', 'publish', examplePath('csv-stats'), '--profile', 'bob'], net.env);
        assert.equal(app.code, 0, app.stdout + app.stderr);
        const tau = (await verifierUnits(net)).reduce((s, v) => s + v.units, 0n);
        const file = join(net.home, 'cities.csv');
        writeFileSync(file, 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n');
        const add = (region: string) =>
          ferry(
            [
              'dataset',
              'add',
              file,
              '--region',
              region,
              '--allow-app',
              app.json.measurement,
              '--tee',
              'sim',
              '--policy',
              'pinned',
              '--committee',
              String(tau),
              '--threshold',
              '2/3',
              '--profile',
              'alice',
            ],
            net.env,
          );
        const run = async (datasetId: string) => {
          const r = await ferry(
            ['task', 'run', '--app', app.json.appId, '--dataset', datasetId, '--profile', 'carol'],
            net.env,
          );
          assert.equal(r.code, 0, r.stdout + r.stderr);
          return BigInt(r.json.taskId);
        };

        // Positive control: the honest runtime passes the pinned policy.
        const de = await add('DE');
        assert.equal(de.code, 0, de.stdout + de.stderr);
        const control = await waitFinal(net, await run(de.json.datasetId));
        assert.equal(control.status, 'completed', `the control task ended as ${control.status}`);

        const fr = await add('FR');
        assert.equal(fr.code, 0, fr.stdout + fr.stderr);
        assert.equal(fr.json.appraisalPolicyHash, de.json.appraisalPolicyHash);
        const taskId = await run(fr.json.datasetId);
        const final = await waitFinal(net, taskId);
        const c = await chainFor(net, 'carol');
        const evs = await taskEvents(c, taskId);
        const of = (name: string, attempt?: number) =>
          evs.filter(
            (e) => e.eventName === name && (attempt === undefined || Number(e.args.attempt) === attempt),
          );
        const claimed = of('EvidenceCommitted', 1);
        assert.equal(claimed.length, 1, 'the modified executor committed evidence');
        assert.equal(String(claimed[0].args.executor).toLowerCase(), extra.ready.address.toLowerCase());
        const votes = of('VoteCast', 1);
        assert.ok(votes.length >= 1);
        assert.ok(
          votes.every((v) => v.args.pass === false),
          'every verifier voted fail',
        );
        assert.deepEqual(
          of('AttemptEnded', 1).map((e) => Number(e.args.reason)),
          [3],
          'attempt 1: evidence rejected',
        );
        assert.equal(of('TaskAttested').length, 0);
        assert.equal(of('KeyReleased').length, 0, 'no key released');
        assert.equal(final.status, 'failed', `task ended as ${final.status}`);
        const fee = of('TaskCreated')[0].args.fee as bigint;
        assert.equal(of('TaskFailed')[0]?.args.refund, fee, 'the escrow is refunded');
        assert.equal((await getTask(c, taskId))!.fee, 0n);
        const carol = loadProfileSecrets(net.home, 'carol').profile.address as Hex;
        assert.ok((await getCredits(c, carol)) >= fee);

        // Each verifier's signed attestation result names the measurement it saw and why it failed.
        for (const v of votes) {
          const n = net.devnet.info.nodes.find(
            (x) => x.address.toLowerCase() === String(v.args.verifier).toLowerCase(),
          )!;
          const bytes = await createPeerClient({ baseUrl: n.endpoint }).bytes(
            'GET',
            `/v1/tasks/${taskId}/attempts/1/attestation-result`,
          );
          const { result } = decodeSignedResult(bytes, fromHex(n.keyId, 'keyId', 32));
          assert.equal(result.accepted, false);
          assert.equal(result.measurement.replace(/^0x/, ''), toHex(modified));
          assert.ok(
            result.reasons.some((r) => r.code === 'ATTESTATION_MEASUREMENT_MISMATCH'),
            `${n.name}: ${result.reasons.map((r) => r.code).join(', ')}`,
          );
        }
        const show = await ferry(['task', 'show', String(taskId)], net.env);
        assert.equal(show.json.status, 'failed');
        assert.match(
          show.json.error.message,
          new RegExp(
            `^evidence rejected by ${votes.length} of ${votes.length} verifiers: .*measurement`,
            'i',
          ),
        );
      } catch (e) {
        if (extra) process.stderr.write(`--- executor-fr\n${readFileSync(extra.log, 'utf8').slice(-4000)}\n`);
        throw e;
      } finally {
        if (extra) await stopExecutor(extra);
      }
    });
  } finally {
    rmSync(copy.dir, { recursive: true, force: true });
  }
});
