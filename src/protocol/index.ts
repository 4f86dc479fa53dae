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
} from './checks.ts';
export {
  type ClaimJudgement,
  type ClaimReason,
  type JudgedClaim,
  judgeClaimEvent,
  judgeVoteEvent,
  judgeWinningClaim,
  type VoteJudgement,
  type VoteReason,
  type WinnerReason,
} from './judge.ts';
export { type PolicyAsset, PolicyBook } from './policies.ts';
export { eligibleAtCreation, nodeAtCreation, stakeAt } from './snapshot.ts';
export { type TrustConfig, trustRegistry } from './trust.ts';
export {
  type AttemptResource,
  attemptLocation,
  attemptPath,
  EnclaveKeysSchema,
  executorBaseUrl,
  fetchServedEvidence,
  MAX_EVIDENCE_BYTES,
  type ServedEvidence,
} from './wire.ts';
export {
  KEY_RELEASE_TAG,
  type KeyReleaseStatement,
  keyReleaseDigest,
  type MessageSigner,
  recoverKeyReleaseSigner,
  releaseHashOf,
  signKeyRelease,
} from './key-release.ts';
export {
  COMMITMENTS_TAG,
  checkCommitments,
  commitmentsDiff,
  commitmentsHash,
  commitmentsValue,
  encodeCommitments,
  MAX_TASK_DATASETS,
  type TaskCommitments,
} from './commitments.ts';
export { readTaskCommitments, type TaskCreation, taskCreation } from './commitments-chain.ts';
export { BINDING_DOMAIN, type BindingParams, reportDataFor } from './binding.ts';
export {
  type AssetKind,
  KEY_RELEASE_INFO_TAG,
  type KeyReleaseInfoParams,
  keyReleaseInfo,
} from './release-info.ts';
export {
  type ApplicablePolicy,
  type AppraiseAttemptParams,
  type AttemptAppraisal,
  appraiseAttempt,
  decodeEvidence,
  EVIDENCE_TAG,
  type PolicyEntry,
  type PolicySubject,
  refusalCode,
  refusalsOf,
} from './appraisal.ts';
export {
  ATTEMPT_RESULT_TAG,
  type AttemptResult,
  attemptResultHash,
  buildAttemptResult,
  decodeSignedAttemptResult,
  encodeSignedAttemptResult,
  type SignedAttemptResult,
  signAttemptResult,
} from './attempt-result.ts';
export {
  type AttemptFacts,
  attemptFacts,
  attemptPolicies,
  type PolicyResolver,
  taskSubjects,
} from './facts.ts';
export {
  CLAIM_ROUNDS,
  CLAIM_TARGET_DEFAULT,
  claimEligibility,
  claimRound,
  claimThreshold,
  claimValue,
  compareClaims,
  firstClaimRound,
} from './claim.ts';
export {
  SEAT_PROOF_MAX_SEATS,
  SEAT_PROOF_MAX_TAU,
  type SeatProofParams,
  seatProofLimit,
  seatsProvablyTooMany,
} from './seat-proof.ts';
export {
  type AttemptRecord,
  attemptRecord,
  type ClaimCase,
  claimCase,
  judgeClaim,
  judgeVote,
  type VoteCase,
  voteCase,
} from './fraud.ts';
export {
  assertDevelopmentChain,
  checkAllowSim,
  declaredDevelopmentChains,
  isDevelopmentChain,
  LOCAL_DEVELOPMENT_CHAIN_ID,
} from './development.ts';
export {
  attemptEndReason,
  type DeadlineKind,
  describeTaskEvent,
  FINAL_STATES,
  fraudKind,
  isFinal,
  PROGRESS_STAGES,
  type ProgressEvent,
  type ProgressStage,
  ProgressTimeline,
  progressOfEvent,
  type StageDeadline,
  type StageEventInput,
  stageDeadline,
  stageDue,
  stageOfEvent,
  TASK_STAGES,
  type TaskClock,
  type TaskStage,
  timeoutDue,
} from './stages.ts';
export {
  activeVerifierStakes,
  type CommitteeFigures,
  type CommitteeSeating,
  committeeFigures,
  committeeSeating,
  currentVerifierStake,
} from './committee.ts';
