/**
 * The appraisal dispatcher: one `Verifier` per evidence kind in a registry, and
 * `appraiseEvidence`, which checks the evidence envelope and hands it to the verifier of
 * its kind. Like every verifier it never throws for bad evidence: it returns an appraisal
 * whose reasons say what was wrong (docs/protocol.md §9).
 */
import { FerryError, isFerryError } from '../kernel/index.ts';
import { type DcapVerifierOptions, SgxVerifier, TdxVerifier } from './dcap/verify.ts';
import { checkSoftwareIdentified, invalidAppraisal } from './policy.ts';
import { SevSnpVerifier } from './sev-snp/verify.ts';
import { SimVerifier } from './sim/verifier.ts';
import { Tpm2Verifier, type Tpm2VerifierOptions } from './tpm2/verifier.ts';
import {
  type Appraisal,
  type AppraisalContext,
  EVIDENCE_KINDS,
  type Evidence,
  type EvidenceKind,
  type Verifier,
} from './types.ts';

/** A set of verifiers, at most one per kind. */
export class VerifierRegistry {
  readonly #byKind = new Map<EvidenceKind, Verifier>();

  constructor(verifiers: Iterable<Verifier> = []) {
    for (const v of verifiers) this.register(v);
  }

  /** Adds or replaces the verifier of `verifier.kind`. Returns this. */
  register(verifier: Verifier): this {
    if (!verifier || !EVIDENCE_KINDS.includes(verifier.kind) || typeof verifier.appraise !== 'function') {
      throw new FerryError('INVALID_ARGUMENT', 'verifier: expected a Verifier with a known kind', {
        hints: [`kinds: ${EVIDENCE_KINDS.join(', ')}`],
      });
    }
    this.#byKind.set(verifier.kind, verifier);
    return this;
  }

  /** The verifier of a kind, or undefined. */
  get(kind: EvidenceKind): Verifier | undefined {
    return this.#byKind.get(kind);
  }

  /** The kinds this registry can appraise. */
  kinds(): EvidenceKind[] {
    return [...this.#byKind.keys()];
  }
}

export type DefaultVerifiersOptions = {
  dcap?: DcapVerifierOptions;
  /** TPM trust configuration; without it tpm2 evidence has no verifier. */
  tpm2?: Tpm2VerifierOptions;
  /** Trusted simulation roots (Ed25519 public keys); without it sim evidence has no verifier. */
  sim?: { roots: Uint8Array[] };
  /** Extra verifiers (e.g. the `sim` verifier in development); they replace defaults of their kind. */
  extra?: readonly Verifier[];
};

/**
 * A registry with the tdx, sgx and sev-snp verifiers, tpm2 and sim when configured, and
 * `extra`. Registering sim does not allow it: the policy's `allowedKinds` still decides.
 */
export function defaultVerifiers(opts: DefaultVerifiersOptions = {}): VerifierRegistry {
  const r = new VerifierRegistry([
    new TdxVerifier(opts.dcap),
    new SgxVerifier(opts.dcap),
    new SevSnpVerifier(),
  ]);
  if (opts.tpm2) r.register(new Tpm2Verifier(opts.tpm2));
  if (opts.sim) r.register(new SimVerifier(opts.sim));
  for (const v of opts.extra ?? []) r.register(v);
  return r;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Appraises evidence with the verifier of its kind. The envelope must be
 * `{kind, reportData: 64 bytes, body: map}`; a malformed envelope, a kind without a verifier,
 * or a verifier that throws a FerryError yields an invalid appraisal with that reason. A
 * non-Ferry exception from a verifier is a bug and propagates. Evidence of a kind whose
 * software the policy's reference values do not identify is never accepted
 * (ATTESTATION_NO_REFERENCE_VALUES, checkSoftwareIdentified).
 */
export async function appraiseEvidence(
  evidence: Evidence,
  ctx: AppraisalContext,
  registry: VerifierRegistry = defaultVerifiers(),
): Promise<Appraisal> {
  if (!ctx || !(ctx.now instanceof Date) || Number.isNaN(ctx.now.getTime()) || !ctx.policy) {
    throw new FerryError('INVALID_ARGUMENT', 'ctx: expected {policy, now: Date, expectedReportData?}');
  }
  const kind = isPlainObject(evidence) ? evidence.kind : undefined;
  if (typeof kind !== 'string' || !EVIDENCE_KINDS.includes(kind as EvidenceKind)) {
    // Not a kind we know: report it under the most neutral kind the types allow.
    return invalidAppraisal('sim', {
      code: 'ATTESTATION_MALFORMED',
      message: `unknown evidence kind ${JSON.stringify(String(kind))}`,
    });
  }
  const k = kind as EvidenceKind;
  if (!(evidence.reportData instanceof Uint8Array) || evidence.reportData.length !== 64) {
    return invalidAppraisal(k, {
      code: 'ATTESTATION_MALFORMED',
      message: 'evidence reportData must be 64 bytes',
    });
  }
  if (!isPlainObject(evidence.body)) {
    return invalidAppraisal(k, { code: 'ATTESTATION_MALFORMED', message: 'evidence body must be a map' });
  }
  const verifier = registry.get(k);
  if (!verifier) {
    return invalidAppraisal(k, {
      code:
        k === 'sim' && !ctx.policy.allowedKinds.includes('sim')
          ? 'ATTESTATION_SIMULATION_NOT_ALLOWED'
          : 'ATTESTATION_KIND_NOT_ALLOWED',
      message: `no verifier for ${k} evidence is configured`,
    });
  }
  let a: Appraisal;
  try {
    a = await verifier.appraise(evidence, ctx);
  } catch (e) {
    if (!isFerryError(e)) throw e;
    return invalidAppraisal(k, { code: e.code, message: e.message });
  }
  // The built-in verifiers apply this rule themselves; a registered one may not, and no
  // verifier may accept software the policy does not identify (docs/protocol.md §9).
  const sw = checkSoftwareIdentified(ctx.policy, k);
  if (sw && !a.reasons.some((r) => r.code === sw.code)) {
    return { ...a, accepted: false, status: 'contraindicated', reasons: [...a.reasons, sw] };
  }
  return a;
}
