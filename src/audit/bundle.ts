/**
 * The receipt bundle (`ferry/receipt-bundle/v1`): a JSON file that `ferry task run --receipt
 * FILE` saves beside a result and `ferry receipt verify FILE` checks. It carries what an
 * auditor cannot get from the chain alone once the executor is gone: the evidence and the
 * enclave's X25519 key. Everything else is re-read from the chain, and the bundle's receipt
 * must be the one on chain. docs/protocol.md section 15.
 */
import { z } from 'zod';
import { FerryError, fromHex, toHex } from '../kernel/index.ts';

export const BUNDLE_FORMAT = 'ferry/receipt-bundle/v1';

const hex = (len?: number) =>
  z.string().regex(len === undefined ? /^(?:[0-9a-f]{2})*$/ : new RegExp(`^[0-9a-f]{${len * 2}}$`));
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);

export const ReceiptBundleSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    chainId: z.number().int().min(0),
    contracts: z.object({ NodeRegistry: address, Assets: address, Tasks: address }).strict(),
    taskId: z.string().regex(/^[0-9]{1,78}$/),
    attempt: z.number().int().min(1),
    receipt: hex(),
    signature: hex(64),
    evidence: hex(),
    enclave: z.object({ x25519Pub: hex(32), ed25519Pub: hex(32) }).strict(),
    resultHash: hex(32),
    resultLocation: z.string(),
  })
  .strict();

export type ReceiptBundleJson = z.infer<typeof ReceiptBundleSchema>;

/** A parsed bundle with its byte fields decoded. */
export type ReceiptBundle = {
  chainId: number;
  contracts: ReceiptBundleJson['contracts'];
  taskId: bigint;
  attempt: number;
  receipt: Uint8Array;
  signature: Uint8Array;
  evidence: Uint8Array;
  x25519Pub: Uint8Array;
  ed25519Pub: Uint8Array;
  resultHash: Uint8Array;
  resultLocation: string;
};

export function bundleToJson(b: ReceiptBundle): ReceiptBundleJson {
  return {
    format: BUNDLE_FORMAT,
    chainId: b.chainId,
    contracts: b.contracts,
    taskId: b.taskId.toString(),
    attempt: b.attempt,
    receipt: toHex(b.receipt),
    signature: toHex(b.signature),
    evidence: toHex(b.evidence),
    enclave: { x25519Pub: toHex(b.x25519Pub), ed25519Pub: toHex(b.ed25519Pub) },
    resultHash: toHex(b.resultHash),
    resultLocation: b.resultLocation,
  };
}

/** Parses bundle text; RECEIPT_INVALID naming the offending fields. */
export function parseBundle(text: string): ReceiptBundle {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FerryError('RECEIPT_INVALID', 'the receipt bundle is not JSON', { cause: e });
  }
  const r = ReceiptBundleSchema.safeParse(value);
  if (!r.success) {
    throw new FerryError('RECEIPT_INVALID', `the receipt bundle is not a valid ${BUNDLE_FORMAT}`, {
      hints: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    });
  }
  const j = r.data;
  return {
    chainId: j.chainId,
    contracts: j.contracts,
    taskId: BigInt(j.taskId),
    attempt: j.attempt,
    receipt: fromHex(j.receipt, 'receipt'),
    signature: fromHex(j.signature, 'signature', 64),
    evidence: fromHex(j.evidence, 'evidence'),
    x25519Pub: fromHex(j.enclave.x25519Pub, 'x25519Pub', 32),
    ed25519Pub: fromHex(j.enclave.ed25519Pub, 'ed25519Pub', 32),
    resultHash: fromHex(j.resultHash, 'resultHash', 32),
    resultLocation: j.resultLocation,
  };
}
