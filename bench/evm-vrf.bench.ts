/**
 * Gas of the on-chain RFC 9381 ECVRF verifier (contracts/VrfVerifier.sol, docs/protocol.md
 * section 3.1) on a local anvil, for Ferry's two alphas (claimAlpha 91 bytes, verifierAlpha
 * 104 bytes), next to baselines measured in the same run through contracts/test/VrfGasHarness:
 * one SHA-512 block and one double scalar multiplication (the verifier's two building
 * blocks), and the EIP-7825 per-transaction cap. "execution" figures are gasleft() deltas
 * inside the call; "transaction" figures are eth_estimateGas of a transaction calling
 * VrfVerifier.verify (21,000 base and calldata included). encode_to_curve takes a varying
 * number of tries, so each figure is the mean over several keys (min and max in the note).
 * Budget (issue #12): at most 2.5 million gas per verification.
 */
import { randomBytes } from 'node:crypto';
import { bytesToHex, encodeFunctionData, type Hex } from 'viem';
import { connect, deployVrfVerifier, startLocalChain, vrfVerifierAbi } from '../src/chain/index.ts';
import { vrfGasHarnessAbi, vrfGasHarnessBytecode } from '../src/chain/generated/VrfGasHarness.ts';
import { claimAlpha, verifierAlpha, vrfKeygen, vrfProve, vrfVerify } from '../src/crypto/vrf/index.ts';
import type { Bench, BenchRow } from './harness.ts';

const TX_GAS_CAP = 16_777_216;
const GAS_BUDGET = 2_500_000;

const bench: Bench = async ({ quick, log }) => {
  const chain = await startLocalChain();
  const rows: BenchRow[] = [];
  const row = (name: string, value: number, baseline?: string, note?: string) => {
    log(`${name}: ${value.toFixed(0)} gas${note ? ` (${note})` : ''}`);
    rows.push({ group: 'evm-vrf', name, value, unit: 'gas', baseline, note });
  };
  try {
    const c = await connect({
      rpcUrl: chain.rpcUrl,
      privateKey: chain.accounts[0].privateKey,
      chainId: chain.chainId,
    });
    const wallet = c.wallet!;
    const verifier = (await deployVrfVerifier(wallet, c.public)).address;
    const h = await wallet.deployContract({
      account: wallet.account,
      chain: wallet.chain,
      abi: vrfGasHarnessAbi,
      bytecode: vrfGasHarnessBytecode as Hex,
    });
    const harness = (await c.public.waitForTransactionReceipt({ hash: h, pollingInterval: 50 }))
      .contractAddress!;

    // Baselines.
    const [shaGas] = await c.public.readContract({
      address: harness,
      abi: vrfGasHarnessAbi,
      functionName: 'sha512Gas',
      args: [bytesToHex(randomBytes(100))],
    });
    const base = vrfKeygen().pk;
    const other = vrfKeygen().pk;
    const s = BigInt(bytesToHex(randomBytes(32))) >> 4n; // 252 bits, like s < q
    const cc = BigInt(bytesToHex(randomBytes(16))); // 128 bits, like c
    const [dsmGas, dsmOk] = await c.public.readContract({
      address: harness,
      abi: vrfGasHarnessAbi,
      functionName: 'mulAddGas',
      args: [bytesToHex(base), s, bytesToHex(other), cc],
    });
    if (!dsmOk) throw new Error('bench: the double scalar multiplication failed');

    const n = quick ? 8 : 32;
    const results: { name: string; exec: number[]; tx: number[]; alphaLen: number }[] = [];
    for (const [name, make] of [
      ['claimAlpha', claimAlpha],
      ['verifierAlpha', verifierAlpha],
    ] as const) {
      const exec: number[] = [];
      const tx: number[] = [];
      let alphaLen = 0;
      for (let i = 0; i < n; i++) {
        const { sk, pk } = vrfKeygen();
        const alpha = make({
          chainId: 31337n,
          taskId: BigInt(bytesToHex(randomBytes(32))),
          attempt: 1,
          seed: new Uint8Array(randomBytes(32)),
        });
        alphaLen = alpha.length;
        const pi = vrfProve(sk, alpha);
        const want = bytesToHex(vrfVerify(pk, alpha, pi));
        const args = [bytesToHex(pk), bytesToHex(alpha), bytesToHex(pi)] as const;
        const [g, valid, beta] = await c.public.readContract({
          address: harness,
          abi: vrfGasHarnessAbi,
          functionName: 'verifyGas',
          args,
        });
        if (!valid || beta !== want) throw new Error('bench: the contract disagrees with vrfVerify');
        exec.push(Number(g));
        const data = encodeFunctionData({ abi: vrfVerifierAbi, functionName: 'verify', args });
        tx.push(Number(await c.public.estimateGas({ account: wallet.account, to: verifier, data })));
      }
      results.push({ name, exec, tx, alphaLen });
    }

    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const spread = (a: number[]) => `min ${Math.min(...a)}, max ${Math.max(...a)}, ${a.length} keys`;
    for (const r of results) {
      row(
        `verify, ${r.name} (${r.alphaLen} B), execution`,
        mean(r.exec),
        'SHA-512, one block',
        spread(r.exec),
      );
    }
    for (const r of results) {
      row(
        `verify, ${r.name} (${r.alphaLen} B), transaction`,
        mean(r.tx),
        'EIP-7825 per-transaction cap',
        `${spread(r.tx)}; budget ${GAS_BUDGET}: ${Math.max(...r.tx) <= GAS_BUDGET ? 'met' : 'EXCEEDED'}`,
      );
    }
    for (const r of results) {
      row(`verify, ${r.name} (${r.alphaLen} B), in DSMs`, mean(r.exec), 'double scalar multiplication');
    }
    row('SHA-512, one block', Number(shaGas), undefined, '100-byte input, VrfGasHarness.sha512Gas');
    row('double scalar multiplication', Number(dsmGas), undefined, 'a*P + b*Q, 252-bit a, 128-bit b');
    row('EIP-7825 per-transaction cap', TX_GAS_CAP);
  } finally {
    await chain.stop();
  }
  return rows;
};

export default bench;
