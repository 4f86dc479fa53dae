/**
 * The generated ABIs, re-exported, plus the union of every custom error so a revert from a
 * nested call (e.g. Assets inside Tasks) still decodes.
 */
import type { Abi } from 'viem';
import { assetsAbi, assetsBytecode } from './generated/Assets.ts';
import { fraudVerifierAbi, fraudVerifierBytecode } from './generated/FraudVerifier.ts';
import { nodeRegistryAbi, nodeRegistryBytecode } from './generated/NodeRegistry.ts';
import { tasksAbi, tasksBytecode } from './generated/Tasks.ts';

export {
  assetsAbi,
  assetsBytecode,
  fraudVerifierAbi,
  fraudVerifierBytecode,
  nodeRegistryAbi,
  nodeRegistryBytecode,
  tasksAbi,
  tasksBytecode,
};

function errorsOf(...abis: Abi[]): Abi {
  const seen = new Set<string>();
  const out: Abi[number][] = [];
  for (const abi of abis) {
    for (const item of abi) {
      if (item.type !== 'error' || seen.has(item.name)) continue;
      seen.add(item.name);
      out.push(item);
    }
  }
  return out;
}

/** Every custom error any Ferry contract can revert with. */
export const ferryErrorsAbi: Abi = errorsOf(nodeRegistryAbi, assetsAbi, tasksAbi);

/** All events of all Ferry contracts (for log decoding). */
export const ferryEventsAbi = [...nodeRegistryAbi, ...assetsAbi, ...tasksAbi].filter(
  (i) => i.type === 'event',
);
