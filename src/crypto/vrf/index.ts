/**
 * RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI and Ferry's VRF inputs. See docs/protocol.md section 3.
 */
export {
  type AlphaParams,
  betaFraction,
  betaScore,
  CLAIM_DST,
  claimAlpha,
  VERIFIER_SELECTION_DST,
  verifierAlpha,
} from './alpha.ts';
export {
  useVrfBackend,
  VRF_OUTPUT_LENGTH,
  type VrfBackendName,
  type VrfProofDetails,
  vrfBackend,
  vrfKeygen,
  vrfProofToHash,
  vrfProve,
  vrfProveDetailed,
  vrfPublicKey,
  vrfValidatePublicKey,
  vrfVerify,
} from './ecvrf.ts';
