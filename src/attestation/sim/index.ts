/** The `sim` evidence kind: simulation root, attester, TeeBackend and Verifier. Development only. */
export { SIM_QUOTE_TAG, SIM_TCB_STATUS, SimBackend } from './backend.ts';
export {
  ed25519KeyPair,
  ed25519PublicKeyOf,
  signBytesEd25519,
  signTaggedEd25519,
  verifyBytesEd25519,
} from './ed25519.ts';
export {
  createSimRoot,
  decodeSimAttester,
  decodeSimCert,
  decodeSimRoot,
  encodeSimAttester,
  encodeSimRoot,
  issueSimAttester,
  SIM_ATTESTER_TAG,
  SIM_CERT_TAG,
  SIM_ROOT_TAG,
  type SimAttester,
  type SimCert,
  type SimRoot,
} from './root.ts';
export { SimVerifier } from './verifier.ts';
