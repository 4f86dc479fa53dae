// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

// Custom errors shared by Ferry's contracts. src/chain/errors.ts maps each one to a stable
// FerryError code; keep the two in step (the build test fails if an error is unmapped).

/// The caller is not the owner of the asset (or node) it tries to change.
error NotOwner(address caller, address owner);
/// The caller is not the Tasks contract (registry penalties, asset use accounting).
error OnlyTasks(address caller);
error UnknownNode(address node);
error UnknownDataset(uint256 datasetId);
error UnknownApp(uint256 appId);
error UnknownTask(uint256 taskId);
/// A parameter is out of its documented range; `name` is the parameter's name.
error InvalidParameter(string name);
error AlreadyRegistered(address node);
error InsufficientStake(uint256 required, uint256 got);
/// kind 1 = dataset, 2 = app.
error AssetRevoked(uint8 kind, uint256 id);
error AssetExpired(uint256 datasetId, uint256 expiresAt);
error UsesExhausted(uint256 datasetId, uint256 maxUses);
error AppNotAllowed(uint256 datasetId, bytes32 measurement);
error RequesterNotAllowed(uint256 datasetId, address requester);
error NoCommonTeeKind();
error InsufficientFee(uint256 required, uint256 got);
/// The task is not in a status that allows this call (status: the enum value, see Tasks).
error WrongState(uint256 taskId, uint8 status);
error WrongAttempt(uint256 taskId, uint256 expected, uint256 got);
error TooEarly(uint256 notBefore, uint256 nowValue);
error DeadlinePassed(uint256 deadline, uint256 nowValue);
/// reason: 1 unregistered, 2 missing role, 3 not active, 4 changed after the task was created,
/// 5 region not allowed, 6 TEE kind not allowed, 7 excluded from the task, 8 is the executor,
/// 9 has the executor's operator (NodeRegistry.sameOperator), 10 claim VRF output not below the
/// node's claim threshold in the current round (protocol.md section 11.3: claim in a later round).
error NotEligible(address node, uint8 reason);
error NotExecutor(uint256 taskId, address caller);
error AlreadyVoted(uint256 taskId, uint256 attempt, address verifier);
/// One claim per node per attempt.
error AlreadyClaimed(uint256 taskId, uint256 attempt, address node);
/// A vote's seats exceed the bound the voter's stake share allows (protocol.md section 11.3).
error TooManySeats(uint256 seats, uint256 maxSeats);
/// The node executes open attempts: its stake cannot be added to, unbonded or withdrawn now.
error StakeLocked(address node, uint256 openAttempts);
/// unjail: the node is not jailed.
error NotJailed(address node);
error AlreadyReleased(uint256 taskId, uint256 assetIndex);
error NothingToWithdraw(address account);
error TransferFailed(address to, uint256 amount);
error Reentrancy();
/// challengeVote / challengeClaim: what the challenger supplied is not what the contract
/// recorded for that vote or claim (or nothing challengeable is recorded).
error ChallengeMismatch(uint256 taskId, uint256 attempt, address node);
/// challengeVote / challengeClaim: the vote or claim is true (its VRF proof verifies and gives
/// its output, and a vote's seats are not provably too many): nothing changes.
error NoFraud(uint256 taskId, uint256 attempt, address node);
