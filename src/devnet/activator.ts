/**
 * The devnet's tpm2 credential activator (docs/protocol.md §13.7): proves that an executor's AK
 * lives in the same TPM as an EK whose certificate chains to a trusted CA, then signs an
 * activation record binding the AK name to that EK certificate.
 *
 * The order matters: the EK certificate is checked first, with the same chain check the tpm2
 * appraisal makes (checkChain: EK certificate -> intermediates -> a trusted CA, each valid at
 * `now`); only an EK the verifiers would accept is used to make the credential. An EK that does
 * not chain is refused with ATTESTATION_CHAIN_INVALID and no record is signed.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ActivationRecord,
  checkChain,
  makeCredential,
  signActivationRecord,
  type Tpm2Backend,
} from '../attestation/tpm2/index.ts';
import { equalBytes, FerryError, toHex } from '../kernel/index.ts';

/**
 * The devnet's credential activator: a fresh Ed25519 key, written to `HOME/devnet/tpm2-activator`
 * (PKCS#8 PEM, mode 0600), and its public key as hex (what nodes are given with --tpm2-activators).
 */
export function createDevnetActivator(home: string): { privateKey: KeyObject; publicKeyHex: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(home, 'devnet', 'tpm2-activator'), privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x as string;
  return { privateKey, publicKeyHex: toHex(new Uint8Array(Buffer.from(x, 'base64url'))) };
}

export type ActivateAkParams = {
  /** The executor's TPM, with its AK loaded (Tpm2Backend.open). */
  backend: Pick<Tpm2Backend, 'readEkCertificate' | 'activateCredential' | 'akName'>;
  /** CA certificates trusted for EK certificates (the same the nodes and agents trust). */
  trustedCas: readonly X509Certificate[];
  /** Intermediate CA certificates between the EK certificate and a trusted CA. */
  intermediates?: readonly X509Certificate[];
  /** The activator's Ed25519 private key. */
  activatorKey: KeyObject;
  /** Time at which the certificates are judged and the record is dated (default: now). */
  now?: Date;
  /** Names the TPM in error hints (e.g. the node's name). */
  label?: string;
  signal?: AbortSignal;
};

/**
 * Reads the EK certificate from the TPM, checks its chain to `trustedCas`, performs credential
 * activation for the AK (a fresh 32-byte secret made to the EK public key and the AK name, which
 * the TPM releases only when both keys are its own), and returns the signed activation record.
 *
 * Throws ATTESTATION_CHAIN_INVALID when the EK certificate does not chain to a trusted CA (or no
 * CA is given), ATTESTATION_AK_NOT_PROVEN when the TPM returns another secret, and whatever the
 * backend throws for a failing TPM command.
 */
export async function activateAk(p: ActivateAkParams): Promise<ActivationRecord> {
  const now = p.now ?? new Date();
  const where = p.label ? [`TPM: ${p.label}`] : [];
  const ek = new X509Certificate(Buffer.from(await p.backend.readEkCertificate(p.signal)));
  const err = checkChain(ek, p.intermediates ?? [], p.trustedCas, now);
  if (err) {
    throw new FerryError('ATTESTATION_CHAIN_INVALID', `EK certificate refused before activation: ${err}`, {
      hints: [
        ...where,
        `EK certificate: subject "${ek.subject}", issuer "${ek.issuer}"`,
        `trusted CAs: ${p.trustedCas.map((c) => `"${c.subject}"`).join(', ') || 'none'}`,
        'the activator only vouches for an AK whose EK chains to a CA the verifiers trust',
      ],
    });
  }
  const secret = new Uint8Array(randomBytes(32));
  const got = await p.backend.activateCredential(
    makeCredential(ek.publicKey, p.backend.akName, secret),
    p.signal,
  );
  if (!equalBytes(got, secret)) {
    throw new FerryError('ATTESTATION_AK_NOT_PROVEN', 'credential activation returned another secret', {
      hints: where,
    });
  }
  return signActivationRecord(p.activatorKey, {
    akName: p.backend.akName,
    ekCert: ek,
    activatedAt: Math.floor(now.getTime() / 1000),
  });
}
