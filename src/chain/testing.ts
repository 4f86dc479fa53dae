/**
 * Helpers for tests and benchmarks against a real local anvil: a deployed Ferry, funded
 * throw-away accounts, and time/block control. Not for production use.
 */
import { afterEach, beforeEach } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { Address, Hex } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { claimAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { createApp, createDataset } from './assets.ts';
import { connect, writer } from './client.ts';
import { type DeployOptions, deployFerry } from './deploy.ts';
import { type LocalChain, type LocalChainOptions, startLocalChain } from './local.ts';
import { registerNode } from './nodes.ts';
import { claimTask, commitEvidence, createTask, seedTask, vote } from './tasks.ts';
import type { ChainWriter, FerryContracts } from './types.ts';

export type TestChain = {
  chain: LocalChain;
  contracts: FerryContracts;
  /** A writer for the deployer (first dev account). */
  deployer: ChainWriter;
  /** A new funded account (10000 ether). */
  account(): Promise<ChainWriter>;
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  /** Moves time forward by `seconds` and mines one block. */
  advance(seconds: number): Promise<void>;
  mine(blocks?: number): Promise<void>;
  snapshot(): Promise<string>;
  revert(id: string): Promise<void>;
  stop(): Promise<void>;
};

/** Starts anvil, deploys Ferry, and returns helpers. Always call stop(). */
export async function startTestChain(
  options: { deploy?: DeployOptions; local?: LocalChainOptions } = {},
): Promise<TestChain> {
  const chain = await startLocalChain(options.local);
  try {
    const rpc = async (method: string, params: unknown[] = []) => {
      const res = await fetch(chain.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      });
      const body = (await res.json()) as { result?: unknown; error?: { message: string } };
      if (body.error) throw new Error(`${method}: ${body.error.message}`);
      return body.result;
    };
    const clients = await connect({
      rpcUrl: chain.rpcUrl,
      privateKey: chain.accounts[0].privateKey,
      chainId: chain.chainId,
    });
    const deployed = await deployFerry(clients.wallet!, clients.public, options.deploy);
    const deployer = writer(clients, deployed.contracts);
    const account = async (): Promise<ChainWriter> => {
      const key = generatePrivateKey();
      const c = await connect({ rpcUrl: chain.rpcUrl, privateKey: key, chainId: chain.chainId });
      await rpc('anvil_setBalance', [c.wallet!.account.address, '0x21e19e0c9bab2400000']);
      return writer(c, deployed.contracts);
    };
    return {
      chain,
      contracts: deployed.contracts,
      deployer,
      account,
      rpc,
      advance: async (seconds) => {
        await rpc('evm_increaseTime', [seconds]);
        await rpc('evm_mine');
      },
      mine: async (blocks = 1) => {
        await rpc('anvil_mine', [`0x${blocks.toString(16)}`]);
      },
      snapshot: async () => (await rpc('evm_snapshot')) as string,
      revert: async (id) => {
        await rpc('evm_revert', [id]);
      },
      stop: () => chain.stop(),
    };
  } catch (e) {
    await chain.stop();
    throw e;
  }
}

/** Random bytes as 0x-hex. */
export function randomHex(n: number): Hex {
  return `0x${randomBytes(n).toString('hex')}`;
}

/** A 64-byte VRF-output-shaped value whose first byte is `first` (to order claims in tests). */
export function outputWithPrefix(first: number): Hex {
  const b = randomBytes(64);
  b[0] = first;
  return `0x${b.toString('hex')}`;
}

/**
 * Runs each test of a file on the chain as `before` left it: an EVM snapshot before each test,
 * reverted after it, so tests do not depend on each other's order. `chain` is read at each hook
 * (the chain is started in `before`).
 */
export function isolateEachTest(chain: () => TestChain): void {
  let snap = '';
  beforeEach(async () => {
    snap = await chain().snapshot();
  });
  afterEach(async () => {
    await chain().revert(snap);
  });
}

/** A test node with a real VRF key (claims and votes whose proofs verify). */
export type VrfActor = { w: ChainWriter; vrfKey: Uint8Array; addr: Address; stake: bigint };

/**
 * A chain for fraud-proof tests (protocol.md 11.5): two executors (10 ether), four honest
 * verifiers and a liar verifier (2 ether each), all with real VRF keys, and an app and a dataset
 * (tau 5, threshold 4: two fail seats reject) owned by `requester`.
 */
export async function startFraudWorld(): Promise<{
  tc: TestChain;
  requester: ChainWriter;
  executors: VrfActor[];
  verifiers: VrfActor[];
  liar: VrfActor;
  appId: bigint;
  datasetId: bigint;
}> {
  const ETH = 10n ** 18n;
  const tc = await startTestChain({
    deploy: {
      minStake: ETH,
      unbondingDelay: 100n,
      heartbeatTtl: 10_000n,
      slashBps: 1000n,
      jailDuration: 100n,
    },
  });
  try {
    const requester = await tc.account();
    const actor = async (roles: ('executor' | 'verifier')[], stake: bigint): Promise<VrfActor> => {
      const w = await tc.account();
      const { sk, pk } = vrfKeygen();
      await registerNode(w, {
        roles,
        region: 'DE',
        teeKinds: ['tpm2'],
        vrfPublicKey: pk,
        signingKey: randomHex(32),
        endpoint: 'http://127.0.0.1:1/node',
        stake,
      });
      return { w, vrfKey: sk, addr: w.wallet.account.address, stake };
    };
    const executors = [await actor(['executor'], 10n * ETH), await actor(['executor'], 10n * ETH)];
    const verifiers: VrfActor[] = [];
    for (let i = 0; i < 4; i++) verifiers.push(await actor(['verifier'], 2n * ETH));
    const liar = await actor(['verifier'], 2n * ETH);
    const measurement = randomHex(32);
    const { appId } = await createApp(requester, {
      measurement,
      ciphertextHash: randomHex(32),
      endpoint: 'http://a',
      price: 0n,
      teeKinds: ['tpm2'],
      appraisalPolicyDocument: randomHex(64),
    });
    const { datasetId } = await createDataset(requester, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 0n,
      policy: {
        allowedApps: [measurement],
        allowedRegions: [],
        teeKinds: ['tpm2'],
        tau: 5,
        threshold: 4,
        maxUses: 0,
        expiresAt: 0,
        requesters: [],
        appraisalPolicyDocument: randomHex(64),
      },
    });
    await tc.mine(1);
    return { tc, requester, executors, verifiers, liar, appId, datasetId };
  } catch (e) {
    await tc.stop();
    throw e;
  }
}

/** A VRF proof by `sk` over `alpha` and its output. */
export function proveVrf(sk: Uint8Array, alpha: Uint8Array): { proof: Uint8Array; output: Uint8Array } {
  const proof = vrfProve(sk, alpha);
  return { proof, output: vrfProofToHash(proof) };
}

/** What startFraudWorld returns. */
export type FraudWorld = Awaited<ReturnType<typeof startFraudWorld>>;

/** A task of the fraud world (its app and dataset, short windows), created and seeded: attempt 1. */
export async function seededFraudTask(w: FraudWorld): Promise<{ taskId: bigint; seed: Hex }> {
  const now = Number((await w.tc.deployer.public.getBlock()).timestamp);
  const { taskId } = await createTask(w.requester, {
    appId: w.appId,
    datasetIds: [w.datasetId],
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: '',
    fee: 10n ** 18n,
    expiresAt: now + 3600,
    claimWindow: 12,
    evidenceWindow: 10,
    voteWindow: 10,
    runWindow: 20,
  });
  await w.tc.mine(1);
  const { seed } = await seedTask(w.requester, taskId);
  return { taskId, seed: seed as Hex };
}

/** `a` claims attempt 1 of the task with a VRF proof that verifies. */
export async function honestClaim(w: FraudWorld, a: VrfActor, taskId: bigint, seed: Hex): Promise<void> {
  const alpha = claimAlpha({
    chainId: BigInt(w.tc.chain.chainId),
    taskId,
    attempt: 1,
    seed: Buffer.from(seed.slice(2), 'hex'),
  });
  const { proof, output } = proveVrf(a.vrfKey, alpha);
  await claimTask(a.w, { taskId, attempt: 1, vrfOutput: output, vrfProof: proof });
}

/**
 * A task whose attempt 1 a lie rejected: executors[0] claims honestly and commits evidence;
 * the liar votes fail with 2 invented seats (its proof is random bytes), which rejects it.
 */
export async function rejectedByALie(w: FraudWorld): Promise<bigint> {
  const { taskId, seed } = await seededFraudTask(w);
  await honestClaim(w, w.executors[0], taskId, seed);
  await w.tc.advance(13);
  await commitEvidence(w.executors[0].w, {
    taskId,
    attempt: 1,
    evidenceHash: randomHex(32),
    location: 'http://e',
  });
  const r = await vote(w.liar.w, {
    taskId,
    attempt: 1,
    pass: false,
    resultHash: randomHex(32),
    seats: 2,
    vrfOutput: randomHex(64),
    vrfProof: randomHex(80),
  });
  if (r.status !== 'rejected') throw new Error(`the lie did not reject the attempt: ${r.status}`);
  return taskId;
}
