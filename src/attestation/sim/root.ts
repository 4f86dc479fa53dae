/**
 * The simulation root of a local network and the attester keys it certifies.
 *
 * A root is an Ed25519 key created once per local network (`createSimRoot`). An attester
 * (one per executor node) is an Ed25519 key certified by the root with the tagged object
 * `ferry/sim-cert/v1` `{attesterKey, notAfter, notBefore, rootKey, simulation: true}`
 * (times in unix seconds), signed by the root. The attester key signs sim evidence.
 * None of this is hardware-backed: whoever runs the host holds these keys.
 */
import { type CanonicalValue, decodeTagged, describe, encodeTagged, FerryError } from '../../kernel/index.ts';
import { ed25519KeyPair, signBytesEd25519 } from './ed25519.ts';

export const SIM_CERT_TAG = 'ferry/sim-cert/v1';
export const SIM_ROOT_TAG = 'ferry/sim-root/v1';
export const SIM_ATTESTER_TAG = 'ferry/sim-attester/v1';

export type SimRoot = { secretKey: Uint8Array; publicKey: Uint8Array };

export type SimCert = {
  attesterKey: Uint8Array;
  rootKey: Uint8Array;
  notBefore: number;
  notAfter: number;
  simulation: true;
};

export type SimAttester = {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  /** The encoded `ferry/sim-cert/v1` object. */
  cert: Uint8Array;
  /** The root's signature over `cert`. */
  certSignature: Uint8Array;
};

/** A fresh simulation root key. */
export function createSimRoot(): SimRoot {
  return ed25519KeyPair();
}

/**
 * Certifies a fresh attester key under `root`, valid from `now` (default: the current time)
 * for `validitySeconds` (default one year).
 */
export function issueSimAttester(
  root: SimRoot,
  opts: { now?: Date; validitySeconds?: number } = {},
): SimAttester {
  if (!(root?.secretKey instanceof Uint8Array) || !(root.publicKey instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'root must be {secretKey, publicKey}', {
      hints: [`got: ${describe(root)}`],
    });
  }
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const validity = opts.validitySeconds ?? 365 * 86400;
  const kp = ed25519KeyPair();
  const cert = Uint8Array.from(
    encodeTagged(SIM_CERT_TAG, {
      attesterKey: kp.publicKey,
      rootKey: root.publicKey,
      notBefore: now - 60,
      notAfter: now + validity,
      simulation: true,
    }),
  );
  return { ...kp, cert, certSignature: signBytesEd25519(root.secretKey, cert) };
}

/** Decodes a `ferry/sim-cert/v1` object; throws ATTESTATION_MALFORMED. */
export function decodeSimCert(bytes: Uint8Array): SimCert {
  let v: CanonicalValue;
  try {
    v = decodeTagged(SIM_CERT_TAG, bytes);
  } catch (e) {
    throw new FerryError('ATTESTATION_MALFORMED', 'sim certificate does not decode', { cause: e });
  }
  const o = v as Record<string, CanonicalValue>;
  const ok =
    o !== null &&
    typeof o === 'object' &&
    o.attesterKey instanceof Uint8Array &&
    o.attesterKey.length === 32 &&
    o.rootKey instanceof Uint8Array &&
    o.rootKey.length === 32 &&
    typeof o.notBefore === 'number' &&
    typeof o.notAfter === 'number' &&
    o.simulation === true &&
    Object.keys(o).length === 5;
  if (!ok) throw new FerryError('ATTESTATION_MALFORMED', 'sim certificate has the wrong shape');
  return o as unknown as SimCert;
}

/** Encodes a root for storage (`ferry/sim-root/v1`); the file must be kept private. */
export function encodeSimRoot(root: SimRoot): Uint8Array {
  return encodeTagged(SIM_ROOT_TAG, { publicKey: root.publicKey, secretKey: root.secretKey });
}

export function decodeSimRoot(bytes: Uint8Array): SimRoot {
  const o = decodeTagged(SIM_ROOT_TAG, bytes) as Record<string, CanonicalValue>;
  if (!(o?.secretKey instanceof Uint8Array) || !(o.publicKey instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'not a sim root');
  }
  return { secretKey: o.secretKey, publicKey: o.publicKey };
}

/** Encodes an attester for storage (`ferry/sim-attester/v1`); the file must be kept private. */
export function encodeSimAttester(a: SimAttester): Uint8Array {
  return encodeTagged(SIM_ATTESTER_TAG, {
    cert: a.cert,
    certSignature: a.certSignature,
    publicKey: a.publicKey,
    secretKey: a.secretKey,
  });
}

export function decodeSimAttester(bytes: Uint8Array): SimAttester {
  const o = decodeTagged(SIM_ATTESTER_TAG, bytes) as Record<string, CanonicalValue>;
  for (const k of ['cert', 'certSignature', 'publicKey', 'secretKey']) {
    if (!(o?.[k] instanceof Uint8Array))
      throw new FerryError('INVALID_ARGUMENT', `sim attester: ${k} missing`);
  }
  return {
    cert: o.cert as Uint8Array,
    certSignature: o.certSignature as Uint8Array,
    publicKey: o.publicKey as Uint8Array,
    secretKey: o.secretKey as Uint8Array,
  };
}
