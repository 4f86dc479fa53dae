/**
 * `ferry task challenge` as a user meets it (the CLI's main, --json): usage errors before any
 * network is located, an unknown task, nothing to challenge, a true record (nothing sent), and a false
 * vote judged (--dry-run) and proven. Stable codes and exit codes (docs/protocol.md §11.5).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  type FraudWorld,
  isolateEachTest,
  rejectedByALie,
  seededFraudTask,
  startFraudWorld,
  type TestChain,
  type VrfActor,
} from '../../chain/testing.ts';
import { createProfile } from '../../profile/index.ts';
import { main } from '../main.ts';

type Run = { exit: number; out: { error?: { code: string; message: string } } & Record<string, unknown> };

/**
 * Runs the CLI's `main` (what bin/ferry runs; its result is the exit code) with --json and
 * FERRY_HOME `home`, in this process: the exit code and the JSON it printed.
 */
async function ferry(home: string, args: string[]): Promise<Run> {
  const saved = { ...process.env };
  Object.assign(process.env, { FERRY_HOME: home, FERRY_PROFILE: '', FERRY_RPC: '', FERRY_CONTRACTS: '' });
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  let exit: number;
  try {
    exit = await main([...args, '--json']);
  } finally {
    process.stdout.write = write;
    for (const k of ['FERRY_HOME', 'FERRY_PROFILE', 'FERRY_RPC', 'FERRY_CONTRACTS']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
  const text = lines.join('').trim().split('\n').at(-1) ?? '{}';
  return { exit, out: JSON.parse(text) };
}

let world: FraudWorld;
let tc: TestChain;
let verifiers: VrfActor[];
let liar: VrfActor;
let home: string;
let net: string[];

before(async () => {
  world = await startFraudWorld();
  ({ tc, verifiers, liar } = world);
  home = mkdtempSync(join(tmpdir(), 'ferry-challenge-'));
  createProfile(home, 'carol', { evmPrivateKey: tc.chain.accounts[1].privateKey });
  net = ['--profile', 'carol', '--rpc', tc.chain.rpcUrl, '--contracts', JSON.stringify(tc.contracts)];
});
after(async () => {
  await tc?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});
isolateEachTest(() => tc);

test('usage errors are refused before any network is located (exit 2, stable codes)', async () => {
  // No devnet.json and no --rpc: reaching the network would fail otherwise (DEVNET_NOT_RUNNING).
  const empty = mkdtempSync(join(tmpdir(), 'ferry-challenge-empty-'));
  try {
    const voter = liar.addr;
    const cases: [string, string[], string][] = [
      ['no task id', ['task', 'challenge', '--claim'], 'USAGE_INVALID_ARGUMENT'],
      ['two task ids', ['task', 'challenge', '1', '2', '--claim'], 'USAGE_INVALID_ARGUMENT'],
      ['a task id that is not a number', ['task', 'challenge', 'abc', '--claim'], 'USAGE_INVALID_ARGUMENT'],
      ['task id 0', ['task', 'challenge', '0', '--claim'], 'USAGE_INVALID_ARGUMENT'],
      ['a negative task id', ['task', 'challenge', '-1', '--claim'], 'USAGE_UNKNOWN_OPTION'],
      ['neither --voter nor --claim', ['task', 'challenge', '1'], 'USAGE'],
      ['both --voter and --claim', ['task', 'challenge', '1', '--claim', '--voter', voter], 'USAGE'],
      ['--voter not an address', ['task', 'challenge', '1', '--voter', '0x1234'], 'USAGE'],
      ['--attempt 0', ['task', 'challenge', '1', '--claim', '--attempt', '0'], 'USAGE_INVALID_ARGUMENT'],
      [
        '--attempt not a number',
        ['task', 'challenge', '1', '--claim', '--attempt', 'x'],
        'USAGE_INVALID_ARGUMENT',
      ],
    ];
    for (const [name, args, code] of cases) {
      const r = await ferry(empty, args);
      assert.equal(r.out.error?.code, code, name);
      assert.equal(r.exit, 2, name);
    }
    // A well-formed command does reach for the network.
    const r = await ferry(empty, ['task', 'challenge', '1', '--claim']);
    assert.equal(r.out.error?.code, 'DEVNET_NOT_RUNNING');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('an unknown task, and a task with nothing to challenge: exit 2, nothing sent', async () => {
  const unknown = await ferry(home, ['task', 'challenge', '999', '--claim', ...net]);
  assert.deepEqual([unknown.exit, unknown.out.error?.code], [2, 'TASK_NOT_FOUND']);
  const { taskId } = await seededFraudTask(world);
  const noClaim = await ferry(home, ['task', 'challenge', String(taskId), '--claim', ...net]);
  assert.deepEqual([noClaim.exit, noClaim.out.error?.code], [2, 'CHAIN_NOT_FOUND']);
  const noVote = await ferry(home, [
    'task',
    'challenge',
    String(taskId),
    '--voter',
    verifiers[0].addr,
    ...net,
  ]);
  assert.deepEqual([noVote.exit, noVote.out.error?.code], [2, 'CHAIN_NOT_FOUND']);
  // An attempt that does not exist: nothing recorded for it either.
  const noAttempt = await ferry(home, [
    'task',
    'challenge',
    String(taskId),
    '--claim',
    '--attempt',
    '7',
    ...net,
  ]);
  assert.deepEqual([noAttempt.exit, noAttempt.out.error?.code], [2, 'CHAIN_NOT_FOUND']);
});

test('a true claim is not challenged (exit 1, CHAIN_NO_FRAUD); a false vote is judged, then proven', async () => {
  const taskId = await rejectedByALie(world);
  const honest = await ferry(home, ['task', 'challenge', String(taskId), '--claim', ...net]);
  assert.deepEqual([honest.exit, honest.out.error?.code], [1, 'CHAIN_NO_FRAUD']);

  const dry = await ferry(home, [
    'task',
    'challenge',
    String(taskId),
    '--voter',
    liar.addr,
    '--dry-run',
    ...net,
  ]);
  assert.equal(dry.exit, 0);
  assert.deepEqual(
    [dry.out.taskId, dry.out.attempt, dry.out.kind, dry.out.fraud, dry.out.sent],
    [String(taskId), 1, 'vote', 'vote-vrf', false],
  );

  const sent = await ferry(home, [
    'task',
    'challenge',
    String(taskId),
    '--voter',
    liar.addr,
    '--attempt',
    '1',
    ...net,
  ]);
  assert.equal(sent.exit, 0, JSON.stringify(sent.out));
  assert.deepEqual([sent.out.kind, sent.out.sent, sent.out.restored], ['vote', true, true]);
  assert.ok(BigInt(String(sent.out.slashed)) > 0n);
  // Proven once: a second proof of the same lie is refused by the contract (exit 1).
  const again = await ferry(home, ['task', 'challenge', String(taskId), '--voter', liar.addr, ...net]);
  assert.equal(again.exit, 1);
  assert.ok(['CHAIN_CHALLENGE_MISMATCH', 'CHAIN_NO_FRAUD'].includes(String(again.out.error?.code)));
});
