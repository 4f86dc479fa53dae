/**
 * The executor's check of a key delivery (docs/protocol.md §13.4). The transport is untrusted:
 * a delivery is accepted only when the EIP-191 signature it carries over the key-release
 * statement (src/protocol/key-release.ts) recovers to the asset's on-chain owner, for the task's
 * current attempt, executed by this node, while the task is `attested` or `running`.
 */
import type { Address, Hex } from 'viem';
import type { TaskInfo } from '../chain/index.ts';
import { FerryError, fromHex } from '../kernel/index.ts';
import { recoverKeyReleaseSigner, releaseHashOf } from '../protocol/index.ts';
import type { KeyDeliveryBody } from './server.ts';

export type DeliveryContext = {
  chainId: bigint;
  /** The Tasks contract address. */
  tasks: Hex;
  /** This node's EVM address. */
  executor: string;
  /** The task as on chain now (null: no such task). */
  task: TaskInfo | null;
  /** The on-chain owner of an asset, or null when it is not registered. */
  ownerOf: (kind: 'app' | 'dataset', id: bigint) => Promise<string | null>;
};

/**
 * Returns the signer's address (lowercase) of an acceptable delivery; throws
 * KEY_DELIVERY_REFUSED, naming the failed check, otherwise.
 */
export async function verifyKeyDelivery(
  ctx: DeliveryContext,
  attempt: number,
  body: KeyDeliveryBody,
): Promise<Address> {
  const t = ctx.task;
  const refuse = (message: string, hints: string[] = []): never => {
    throw new FerryError('KEY_DELIVERY_REFUSED', message, {
      hints: [
        `${t ? `task ${t.taskId} ` : ''}attempt ${attempt}, ${body.assetKind} ${body.assetId}`,
        ...hints,
      ],
    });
  };
  if (!body.signature) return refuse('the delivery carries no owner signature');
  if (!t) return refuse('no such task');
  if (t.attempt !== attempt) return refuse('not the task’s current attempt', [`current: ${t.attempt}`]);
  if (t.executor?.toLowerCase() !== ctx.executor.toLowerCase())
    return refuse('this node is not the attempt’s executor');
  if (t.status !== 'attested' && t.status !== 'running')
    return refuse('the attempt is not attested', [`status: ${t.status}`]);
  const id = BigInt(body.assetId);
  const belongs = body.assetKind === 'app' ? id === t.appId : t.datasetIds.includes(id);
  const owner = belongs ? await ctx.ownerOf(body.assetKind, id) : null;
  if (!owner) return refuse('the asset is not one of the task’s');
  const signer = await recoverKeyReleaseSigner(
    {
      chainId: ctx.chainId,
      tasks: ctx.tasks,
      taskId: t.taskId,
      attempt,
      assetKind: body.assetKind,
      assetId: id,
      releaseHash: releaseHashOf(fromHex(body.enc, 'enc', 32), fromHex(body.ciphertext, 'ciphertext', 32)),
    },
    body.signature,
  );
  if (signer.toLowerCase() !== owner.toLowerCase()) {
    return refuse('the delivery is not signed by the asset’s owner', [
      `signer: ${signer}`,
      `owner: ${owner}`,
    ]);
  }
  return signer.toLowerCase() as Address;
}
