/**
 * The verifier registry of a node or agent from its trust configuration (docs/protocol.md
 * §13.8): sim with the trusted simulation roots; tpm2 when CA files are given (EK/AK
 * certificate anchors, PEM or DER, several certificates per PEM file allowed) with the trusted
 * credential activators' Ed25519 public keys. tdx, sgx and sev-snp are always registered.
 */
import { readFileSync } from 'node:fs';
import { defaultVerifiers, parseCertificates, type VerifierRegistry } from '../attestation/index.ts';
import { FerryError, fromHex } from '../kernel/index.ts';

export type TrustConfig = {
  simRoots: readonly string[];
  tpm2Cas: readonly string[];
  tpm2Activators: readonly string[];
};

/** Builds the registry; throws CONFIG_INVALID for an unreadable CA file, ATTESTATION_MALFORMED for a bad one. */
export function trustRegistry(c: TrustConfig): VerifierRegistry {
  const trustedCas = c.tpm2Cas.flatMap((f) => {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(f));
    } catch (e) {
      throw new FerryError('CONFIG_INVALID', 'cannot read a tpm2 CA file', {
        hints: [`file: ${f}`, (e as NodeJS.ErrnoException).code ?? String(e)],
        cause: e,
      });
    }
    return parseCertificates(bytes, f);
  });
  return defaultVerifiers({
    sim: c.simRoots.length > 0 ? { roots: c.simRoots.map((h) => fromHex(h, 'simRoots', 32)) } : undefined,
    tpm2:
      trustedCas.length > 0
        ? {
            trustedCas,
            trustedActivators: c.tpm2Activators.map((h) => fromHex(h, 'tpm2Activators', 32)),
          }
        : undefined,
  });
}
