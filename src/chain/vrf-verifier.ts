/**
 * The on-chain RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI verifier (`contracts/VrfVerifier.sol`,
 * docs/protocol.md section 3.1): deploy it, and ask it about a proof. The contract returns
 * (true, beta) exactly when `vrfVerify` accepts and (false, empty) otherwise; it never reverts.
 */
import { type Address, bytesToHex, type Hex, hexToBytes, isHex, type PublicClient } from 'viem';
import { describe, FerryError } from '../kernel/index.ts';
import { toChainError } from './errors.ts';
import { vrfVerifierAbi, vrfVerifierBytecode } from './generated/VrfVerifier.ts';
import type { ChainWriter } from './types.ts';

export { vrfVerifierAbi, vrfVerifierBytecode };

export type VrfVerifierDeployment = { address: Address; blockNumber: bigint; gasUsed: bigint };

/** Deploys VrfVerifier (no constructor arguments, no state) from the wallet's account. */
export async function deployVrfVerifier(
  wallet: ChainWriter['wallet'],
  publicClient: PublicClient,
): Promise<VrfVerifierDeployment> {
  try {
    const hash = await wallet.deployContract({
      account: wallet.account,
      chain: wallet.chain,
      abi: vrfVerifierAbi,
      bytecode: vrfVerifierBytecode as Hex,
    });
    const r = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (r.status !== 'success' || !r.contractAddress) {
      throw new FerryError('CHAIN_REVERTED', 'the VrfVerifier deployment reverted', {
        hints: [`transaction: ${r.transactionHash}`],
      });
    }
    return { address: r.contractAddress, blockNumber: r.blockNumber, gasUsed: r.gasUsed };
  } catch (e) {
    throw toChainError(e, 'deploy VrfVerifier');
  }
}

export type VrfOnChainInput = {
  /** The 32-byte VRF public key. */
  publicKey: Uint8Array | Hex;
  /** The VRF input (any length). */
  alpha: Uint8Array | Hex;
  /** The proof pi; any length is accepted (the contract refuses all but 80 bytes). */
  proof: Uint8Array | Hex;
};

export type VrfOnChainResult = { valid: true; beta: Uint8Array } | { valid: false; beta: null };

function toHexArg(value: unknown, what: string): Hex {
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (typeof value === 'string' && isHex(value) && value.length % 2 === 0) return value;
  throw new FerryError('INVALID_ARGUMENT', `${what}: expected a Uint8Array or 0x-hex bytes`, {
    hints: ['expected: Uint8Array or an even-length 0x-prefixed hex string', `got: ${describe(value)}`],
  });
}

/**
 * Asks the VrfVerifier at `address` (eth_call, no gas paid) whether `proof` is a valid VRF
 * proof of `alpha` under `publicKey`. Returns { valid: true, beta } or { valid: false, beta:
 * null }. A public key that is not 32 bytes cannot be passed (VRF_INVALID_PUBLIC_KEY, as
 * vrfVerify); other bad arguments are INVALID_ARGUMENT; RPC failures are chain errors.
 */
export async function verifyVrfOnChain(
  client: PublicClient,
  address: Address,
  input: VrfOnChainInput,
): Promise<VrfOnChainResult> {
  if (typeof input !== 'object' || input === null) {
    throw new FerryError('INVALID_ARGUMENT', 'input: expected { publicKey, alpha, proof }', {
      hints: [`got: ${describe(input)}`],
    });
  }
  const publicKey = toHexArg(input.publicKey, 'publicKey');
  if (publicKey.length !== 66) {
    throw new FerryError('VRF_INVALID_PUBLIC_KEY', 'publicKey: expected a 32-byte VRF public key', {
      hints: ['expected: 32 bytes', `got: ${(publicKey.length - 2) / 2} bytes`],
    });
  }
  const alpha = toHexArg(input.alpha, 'alpha');
  const proof = toHexArg(input.proof, 'proof');
  let out: readonly [boolean, Hex];
  try {
    out = await client.readContract({
      address,
      abi: vrfVerifierAbi,
      functionName: 'verify',
      args: [publicKey, alpha, proof],
    });
  } catch (e) {
    throw toChainError(e, 'VrfVerifier.verify');
  }
  const [valid, beta] = out;
  if (!valid) return { valid: false, beta: null };
  const b = hexToBytes(beta);
  if (b.length !== 64) {
    throw new FerryError('CHAIN_REVERTED', 'VrfVerifier returned a malformed beta', {
      hints: ['expected: 64 bytes', `got: ${b.length} bytes`, 'is this address a VrfVerifier?'],
    });
  }
  return { valid: true, beta: b };
}
