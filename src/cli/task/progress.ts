/**
 * What `task run` tells a person while it works: the stages as they happen, and a refusal in
 * words before a task is created that the profile cannot pay for.
 */
import { formatEther } from 'viem';
import type { ChainWriter } from '../../chain/index.ts';
import { FerryError } from '../../kernel/index.ts';
import type { CommandContext } from '../command.ts';
import type { Network } from '../journey/network.ts';
import type { StageEvent } from '../journey/ops.ts';
import { formatStage } from '../journey/timeline.ts';

/**
 * Stage lines on stderr. On a terminal: the stage view (a header naming the task, then one
 * aligned line per stage). Elsewhere (a log, CI), without --json: one line per stage as it
 * happens, each starting with `task ID`, so a line read on its own says which task it is
 * about. With --json nothing (stdout holds the one JSON object; STYLE.md).
 */
export function stageReporter(
  ctx: CommandContext,
  taskId: bigint,
): { created(): void; stage(s: StageEvent): void } {
  if (ctx.interactive) {
    return {
      created: () => ctx.progress(`task ${taskId} created; waiting (Ctrl-C stops waiting, not the task):`),
      stage: (s) => ctx.progress(formatStage(s)),
    };
  }
  if (ctx.json) return { created: () => {}, stage: () => {} };
  return {
    created: () => ctx.stderr.write(`task ${taskId} created\n`),
    stage: (s) => ctx.stderr.write(`task ${taskId} ${formatStage(s).trim()}\n`),
  };
}

/**
 * CHAIN_INSUFFICIENT_FUNDS (exit 2) when the profile's balance does not cover the fee it is
 * about to escrow: the balance, the address, and how to fund it (on a devnet, with anvil's
 * anvil_setBalance).
 */
export async function checkFunds(
  chain: ChainWriter,
  profile: string,
  address: `0x${string}`,
  fee: bigint,
  net: Network,
): Promise<void> {
  const balance = await chain.public.getBalance({ address });
  if (balance > fee) return;
  const oneEther = `0x${(10n ** 18n).toString(16)}`;
  throw new FerryError(
    'CHAIN_INSUFFICIENT_FUNDS',
    `profile ${profile} cannot pay for this task: its balance is ${formatEther(balance)} ETH, the fee is ${formatEther(fee)} ETH plus gas`,
    {
      hints: [
        `address: ${address}`,
        `balance: ${balance} wei; fee: ${fee} wei`,
        net.devnet
          ? `on this devnet, give it 1 ETH with: curl -s ${net.rpcUrl} -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"anvil_setBalance","params":["${address}","${oneEther}"]}'`
          : 'send it ether from a funded account, or act from a funded profile with --profile NAME',
      ],
    },
  );
}
