/**
 * Chain benchmark on a local anvil: gas and transactions of one whole task lifecycle with
 * tau = 5 (threshold 4, every verifier votes pass, two executors claim; the executor is paid
 * in submitReceipt, owners withdraw, voters claim their rewards), the sequential
 * transactions on its critical path, and how many tasks per second the local chain accepts
 * when many are created at once (baseline: plain ether transfers sent the same way).
 * Budget (issue "The ledger"): at most 1.5 million gas for the lifecycle.
 * Fraud proofs (protocol.md 11.5): the gas of proving a false vote (VRF and seats) and a false
 * claim, each with a real VRF key and a well-formed proof for another alpha (the verification
 * runs to the end), against an ordinary vote measured in the same run.
 */
import type { Hex } from 'viem';
import { vrfKeygen, vrfProofToHash, vrfProve } from '../src/crypto/vrf/index.ts';
import { claimCase, voteCase } from '../src/protocol/fraud.ts';
import {
  type ChainWriter,
  challengeClaim,
  challengeVote,
  claimTask,
  claimVoteReward,
  commitEvidence,
  createApp,
  createDataset,
  createTask,
  recordKeyRelease,
  registerNode,
  seedTask,
  submitReceipt,
  tasksAbi,
  type TxResult,
  vote,
  withdraw,
} from '../src/chain/index.ts';
import { outputWithPrefix, randomHex, startTestChain } from '../src/chain/testing.ts';
import type { Bench, BenchRow } from './harness.ts';

const ETH = 10n ** 18n;

function randomBytesOf(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(Math.random() * 256));
}
const GAS_BUDGET = 1_500_000;

const bench: Bench = async ({ quick, log }) => {
  const tc = await startTestChain();
  const rows: BenchRow[] = [];
  try {
    const acct = () => tc.account();
    const [requester, appOwner, dataOwner] = await Promise.all([acct(), acct(), acct()]);
    const executors = await Promise.all([acct(), acct()]);
    const verifiers = await Promise.all(Array.from({ length: 5 }, acct));
    const node = (region: string, roles: ('executor' | 'verifier')[]) => ({
      roles,
      region,
      teeKinds: ['tpm2' as const],
      vrfPublicKey: randomHex(32),
      signingKey: randomHex(32),
      endpoint: 'http://127.0.0.1:1/node',
      stake: 2n * ETH,
    });
    for (const e of executors) await registerNode(e, node('DE', ['executor']));
    for (const v of verifiers) await registerNode(v, node('FR', ['verifier']));
    const measurement = randomHex(32);
    const { appId } = await createApp(appOwner, {
      measurement,
      ciphertextHash: randomHex(32),
      endpoint: 'http://a',
      price: ETH / 10n,
      teeKinds: ['tpm2', 'tdx', 'sev-snp'],
      appraisalPolicyDocument: randomHex(64),
    });
    const { datasetId } = await createDataset(dataOwner, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: ETH / 5n,
      policy: {
        allowedApps: [measurement],
        allowedRegions: ['DE', 'FR', 'NL'],
        teeKinds: ['tpm2', 'tdx', 'sev-snp'],
        tau: 5,
        threshold: 4,
        maxUses: 1000,
        expiresAt: 0,
        requesters: [],
        appraisalPolicyDocument: randomHex(64),
      },
    });
    await tc.mine(1);

    // --- one lifecycle ---------------------------------------------------------------------
    const steps: { name: string; r: TxResult; critical: boolean }[] = [];
    const add = (name: string, r: TxResult, critical: boolean) => steps.push({ name, r, critical });
    const now = Number((await tc.deployer.public.getBlock()).timestamp);
    const created = await createTask(requester, {
      appId,
      datasetIds: [datasetId],
      inputHash: randomHex(32),
      resultRecipient: randomHex(32),
      inputLocation: 'http://127.0.0.1:1/input/abc',
      fee: ETH,
      expiresAt: now + 3600,
      claimWindow: 5,
      evidenceWindow: 30,
      voteWindow: 30,
      runWindow: 60,
    });
    add('createTask', created, true);
    const taskId = created.taskId;
    await tc.mine(1);
    add('seed', await seedTask(requester, taskId), true);
    add(
      'claim (best)',
      await claimTask(executors[0], {
        taskId,
        attempt: 1,
        vrfOutput: outputWithPrefix(1),
        vrfProof: randomHex(80),
      }),
      true,
    );
    add(
      'claim (other)',
      await claimTask(executors[1], {
        taskId,
        attempt: 1,
        vrfOutput: outputWithPrefix(9),
        vrfProof: randomHex(80),
      }),
      false,
    );
    await tc.advance(6);
    add(
      'commitEvidence',
      await commitEvidence(executors[0], {
        taskId,
        attempt: 1,
        evidenceHash: randomHex(32),
        location: 'http://127.0.0.1:1/evidence/abc',
      }),
      true,
    );
    for (const [i, v] of verifiers.entries()) {
      const r = await vote(v, {
        taskId,
        attempt: 1,
        pass: true,
        resultHash: randomHex(32),
        seats: 1,
        vrfOutput: randomHex(64),
        vrfProof: randomHex(80),
      });
      add(i === 3 ? 'vote (reaches threshold)' : `vote ${i + 1}`, r, i === 3);
    }
    add(
      'recordKeyRelease (dataset)',
      await recordKeyRelease(dataOwner, { taskId, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) }),
      true,
    );
    add(
      'recordKeyRelease (app)',
      await recordKeyRelease(appOwner, { taskId, attempt: 1, assetIndex: 0, releaseHash: randomHex(32) }),
      false,
    );
    add(
      'submitReceipt',
      await submitReceipt(executors[0], {
        taskId,
        attempt: 1,
        receipt: randomHex(420),
        signature: randomHex(64),
        resultHash: randomHex(32),
        resultLocation: 'http://127.0.0.1:1/result/abc',
      }),
      true,
    );
    for (const [name, w] of [
      ['app owner', appOwner],
      ['data owner', dataOwner],
    ] as [string, ChainWriter][]) {
      add(`withdraw (${name})`, await withdraw(w), false);
    }
    for (const [i, v] of verifiers.entries()) {
      add(`claimVoteReward (verifier ${i + 1})`, await claimVoteReward(v, taskId), false);
    }
    const total = steps.reduce((s, x) => s + Number(x.r.gasUsed), 0);
    for (const s of steps) {
      rows.push({
        group: 'chain lifecycle gas (tau=5)',
        name: s.name,
        value: Number(s.r.gasUsed),
        unit: 'gas',
      });
    }
    rows.push({
      group: 'chain lifecycle',
      name: 'total gas, tau=5',
      value: total,
      unit: 'gas',
      note: `${((100 * total) / GAS_BUDGET).toFixed(0)} % of the 1.5M budget${total > GAS_BUDGET ? ' (OVER BUDGET)' : ''}`,
    });
    rows.push({ group: 'chain lifecycle', name: 'transactions', value: steps.length, unit: 'tx' });
    rows.push({
      group: 'chain lifecycle',
      name: 'critical path',
      value: steps.filter((s) => s.critical).length,
      unit: 'sequential tx',
      note: steps
        .filter((s) => s.critical)
        .map((s) => s.name)
        .join(' > '),
    });
    log(`lifecycle: ${steps.length} transactions, ${total} gas`);

    // --- fraud proofs --------------------------------------------------------------------------
    {
      const liars = await Promise.all([acct(), acct()]);
      const keys = [vrfKeygen(), vrfKeygen()];
      await registerNode(liars[0], { ...node('DE', ['executor']), vrfPublicKey: keys[0].pk });
      await registerNode(liars[1], { ...node('FR', ['verifier']), vrfPublicKey: keys[1].pk });
      await tc.mine(1);
      // A well-formed proof by the node's own key, over another alpha: verification runs in full.
      const wrong = (sk: Uint8Array) => {
        const proof = vrfProve(sk, randomBytesOf(104));
        return { proof, output: vrfProofToHash(proof) };
      };
      const t0 = Number((await tc.deployer.public.getBlock()).timestamp);
      const { taskId: fid } = await createTask(requester, {
        appId,
        datasetIds: [datasetId],
        inputHash: randomHex(32),
        resultRecipient: randomHex(32),
        inputLocation: '',
        fee: ETH,
        expiresAt: t0 + 3600,
        claimWindow: 5,
        evidenceWindow: 30,
        voteWindow: 30,
        runWindow: 60,
      });
      await tc.mine(1);
      await seedTask(requester, fid);
      const fc = wrong(keys[0].sk);
      const out = new Uint8Array(fc.output);
      out.fill(0, 0, 8); // the smallest x: eligible in round 0, the best claim
      await claimTask(liars[0], { taskId: fid, attempt: 1, vrfOutput: out, vrfProof: fc.proof });
      await tc.advance(6);
      await commitEvidence(liars[0], {
        taskId: fid,
        attempt: 1,
        evidenceHash: randomHex(32),
        location: 'http://e',
      });
      const fv = wrong(keys[1].sk);
      await vote(liars[1], {
        taskId: fid,
        attempt: 1,
        pass: true,
        resultHash: randomHex(32),
        seats: 1,
        vrfOutput: fv.output,
        vrfProof: fv.proof,
      });
      const chainId = tc.chain.chainId;
      const vc = await voteCase(tc.deployer, chainId, {
        taskId: fid,
        attempt: 1,
        voter: liars[1].wallet.account.address,
      });
      const cc = await claimCase(tc.deployer, chainId, { taskId: fid, attempt: 1 });
      const rv = await challengeVote(requester, { taskId: fid, attempt: 1, voter: vc.node, proof: vc.proof });
      const rc = await challengeClaim(requester, {
        taskId: fid,
        attempt: 1,
        claimant: cc.node,
        proof: cc.proof,
      });
      const baseline = steps.find((x) => x.name === 'vote 1')!;
      rows.push({
        group: 'fraud proofs (gas)',
        name: 'vote (baseline)',
        value: Number(baseline.r.gasUsed),
        unit: 'gas',
      });
      rows.push({
        group: 'fraud proofs (gas)',
        name: `challengeVote (${rv.fraud})`,
        value: Number(rv.gasUsed),
        unit: 'gas',
        baseline: 'vote (baseline)',
        note: `${((100 * Number(rv.gasUsed)) / 16_777_216).toFixed(0)} % of the EIP-7825 transaction cap`,
      });
      rows.push({
        group: 'fraud proofs (gas)',
        name: `challengeClaim (${rc.fraud})`,
        value: Number(rc.gasUsed),
        unit: 'gas',
        baseline: 'vote (baseline)',
        note: 'ends the attempt (reason fraud) and slashes',
      });
      log(`fraud proofs: vote ${rv.gasUsed} gas, claim ${rc.gasUsed} gas`);
    }

    // --- throughput: many tasks created at once ------------------------------------------------
    const n = quick ? 60 : 300;
    const senders = await Promise.all(Array.from({ length: 10 }, acct));
    const expiresAt = Number((await tc.deployer.public.getBlock()).timestamp) + 36_000;
    const fire = async (kind: 'task' | 'transfer'): Promise<number> => {
      const nonces = await Promise.all(
        senders.map((s) =>
          s.public.getTransactionCount({ address: s.wallet.account.address, blockTag: 'pending' }),
        ),
      );
      const start = performance.now();
      const hashes: Promise<Hex>[] = [];
      for (let i = 0; i < n; i++) {
        const k = i % senders.length;
        const s = senders[k];
        const nonce = nonces[k]++;
        hashes.push(
          kind === 'task'
            ? s.wallet.writeContract({
                address: tc.contracts.Tasks,
                abi: tasksAbi,
                functionName: 'createTask',
                args: [
                  {
                    appId,
                    datasetIds: [datasetId],
                    inputHash: randomHex(32),
                    resultRecipient: randomHex(32),
                    inputLocation: '',
                    expiresAt,
                    claimWindow: 5,
                    evidenceWindow: 30,
                    voteWindow: 30,
                    runWindow: 60,
                    claimTarget: 0,
                  },
                ],
                value: ETH / 2n,
                nonce,
                gas: 400_000n,
              })
            : s.wallet.sendTransaction({
                to: tc.deployer.wallet.account.address,
                value: 1n,
                nonce,
                gas: 21_000n,
              }),
        );
      }
      const all = await Promise.all(hashes);
      const receipts = await Promise.all(
        all.map((hash) => tc.deployer.public.waitForTransactionReceipt({ hash, pollingInterval: 20 })),
      );
      const elapsed = (performance.now() - start) / 1000;
      const failed = receipts.filter((r) => r.status !== 'success').length;
      if (failed) throw new Error(`${failed} of ${n} ${kind} transactions reverted`);
      return n / elapsed;
    };
    const transfers = await fire('transfer');
    const tasks = await fire('task');
    rows.push({
      group: 'chain throughput (anvil, automine)',
      name: 'ether transfers',
      value: transfers,
      unit: 'tx/s',
    });
    rows.push({
      group: 'chain throughput (anvil, automine)',
      name: 'createTask',
      value: tasks,
      unit: 'tasks/s',
      baseline: 'ether transfers',
      note: `${n} sent at once from 10 accounts`,
    });
    log(`throughput: ${tasks.toFixed(0)} tasks/s, ${transfers.toFixed(0)} transfers/s`);
  } finally {
    await tc.stop();
  }
  return rows;
};

export default bench;
