/**
 * What every party checks about a task attempt before trusting it — the claimant's VRF proof,
 * the committee's votes and seats, the evidence and its binding, the task input — shared by
 * the verifier role of the node daemon, the owner agents (relying parties) and the auditor.
 */
export {
  type ClaimEvent,
  STAKE_UNIT,
  stakeUnits,
  hexBytes,
  vrfProofMatches,
  seatsFor,
  type VoteEvent,
  attemptEvents,
  decodeTaskInput,
  checkClaim,
  checkVotes,
  decodeEvidence,
  appraiseAttempt,
  knownPolicies,
} from './checks.ts';
export { PINNED_POLICY_NAME, type PolicyAsset, PolicyBook, pinnedDevelopmentPolicy } from './policies.ts';
export { eligibleAtCreation, nodeAtCreation, stakeAt } from './snapshot.ts';
export { type TrustConfig, trustRegistry } from './trust.ts';
export { EnclaveKeysSchema } from './wire.ts';
export {
  KEY_RELEASE_TAG,
  type KeyReleaseStatement,
  keyReleaseDigest,
  type MessageSigner,
  recoverKeyReleaseSigner,
  releaseHashOf,
  signKeyRelease,
} from './key-release.ts';
