/**
 * Which appraisal policy applies to a dataset or an app (docs/protocol.md §9): the asset names
 * it by `appraisalPolicyHash`; the built-in production and development policies are known by
 * heart, every other one is read from the chain, where the asset published the policy document
 * in its registration or policy-update event (DatasetRegistered / DatasetPolicyUpdated,
 * AppRegistered / AppPolicyUpdated; the contract checked that the document's SHA-256 is the
 * hash). Shared by verifiers, owner agents and the auditor.
 */
import { createHash } from 'node:crypto';
import {
  decodePolicyDocument,
  developmentPolicy,
  PRODUCTION_POLICY,
  policyHash,
} from '../attestation/index.ts';
import type { AppraisalPolicy } from '../attestation/index.ts';
import { type ChainReader, getPolicyDocuments } from '../chain/index.ts';
import { FerryError, isFerryError, toHex } from '../kernel/index.ts';

/** The asset whose published documents are searched: a dataset or an app, by on-chain id. */
export type PolicyAsset = { kind: 'dataset' | 'app'; id: bigint };

function toAsset(a: bigint | PolicyAsset): PolicyAsset {
  if (typeof a === 'bigint') return { kind: 'dataset', id: a };
  if (
    a === null ||
    typeof a !== 'object' ||
    (a.kind !== 'dataset' && a.kind !== 'app') ||
    typeof a.id !== 'bigint'
  ) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      'asset: expected a dataset id or { kind: "dataset" | "app", id }',
      {
        hints: [
          `got: ${typeof a === 'object' ? JSON.stringify(a, (_, v) => (typeof v === 'bigint' ? `${v}` : v))?.slice(0, 80) : typeof a}`,
        ],
      },
    );
  }
  return a;
}

const normHash = (h: string): string => {
  const s = String(h).toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{64}$/.test(s)) {
    throw new FerryError('INVALID_ARGUMENT', 'appraisalPolicyHash: expected 32 bytes of hex', {
      hints: [`got: ${String(h).slice(0, 80)}`],
    });
  }
  return s;
};

/**
 * Resolves appraisal policies by their hash, caching each decoded document by hash (a hash
 * names one document forever).
 *
 * `resolve(chain, asset, hash)` returns the policy, or null when this party must not apply it:
 * a party without `allowSim` never applies a policy that allows evidence kind `sim` (it
 * abstains, as it does for the built-in development policy). `asset` is a dataset id (bigint,
 * as before) or `{ kind: 'dataset' | 'app', id }`. It throws ATTESTATION_POLICY_NOT_FOUND when
 * neither a built-in policy nor a document published by that asset has that hash,
 * ATTESTATION_POLICY_DOCUMENT_INVALID when the published document does not decode to a valid
 * policy in normalized form, and CHAIN_UNAVAILABLE when the chain cannot be read.
 */
export class PolicyBook {
  readonly allowSim: boolean;
  readonly #cache = new Map<string, AppraisalPolicy | FerryError>();

  constructor(opts: { allowSim: boolean; extra?: readonly AppraisalPolicy[] }) {
    this.allowSim = opts.allowSim === true;
    for (const p of [PRODUCTION_POLICY, developmentPolicy(), ...(opts.extra ?? [])]) {
      this.#cache.set(toHex(policyHash(p)), p);
    }
  }

  /** The policy with this hash if it is already known (built in, extra, or resolved before). */
  known(appraisalPolicyHashHex: string): AppraisalPolicy | undefined {
    const p = this.#cache.get(normHash(appraisalPolicyHashHex));
    return p instanceof FerryError ? undefined : p;
  }

  async resolve(
    chain: ChainReader,
    asset: bigint | PolicyAsset,
    appraisalPolicyHashHex: string,
  ): Promise<AppraisalPolicy | null> {
    const a = toAsset(asset);
    const hash = normHash(appraisalPolicyHashHex);
    let p = this.#cache.get(hash);
    if (p === undefined) p = await this.#fetch(chain, a, hash);
    if (p instanceof FerryError) throw p;
    if (!this.allowSim && p.allowedKinds.includes('sim')) return null;
    return p;
  }

  async #fetch(chain: ChainReader, asset: PolicyAsset, hash: string): Promise<AppraisalPolicy | FerryError> {
    const docs = await getPolicyDocuments(chain, asset.id, { assetKind: asset.kind });
    const doc = docs.find(
      (d) =>
        d.appraisalPolicyHash.slice(2).toLowerCase() === hash &&
        createHash('sha256').update(d.document).digest('hex') === hash,
    );
    if (!doc) {
      // Not cached: the document may be in a block this endpoint has not seen yet.
      throw new FerryError(
        'ATTESTATION_POLICY_NOT_FOUND',
        `no appraisal policy document with hash ${hash.slice(0, 16)}… for ${asset.kind} ${asset.id}`,
        {
          hints: [
            `${asset.kind} ${asset.id} published ${docs.length} policy document(s) on this chain`,
            asset.kind === 'app'
              ? 'the policy must be published with the app (registerApp / updateAppPolicy)'
              : 'the policy must be published with the dataset (registerDataset / updateDatasetPolicy)',
          ],
        },
      );
    }
    let out: AppraisalPolicy | FerryError;
    try {
      out = decodePolicyDocument(doc.document);
    } catch (e) {
      out = isFerryError(e)
        ? e
        : new FerryError('ATTESTATION_POLICY_DOCUMENT_INVALID', 'policy document: invalid', { cause: e });
    }
    this.#cache.set(hash, out);
    return out;
  }
}
