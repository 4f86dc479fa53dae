// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import "./Errors.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Assets} from "./Assets.sol";

/// The checks of a fraud proof (contracts/FraudVerifier.sol), in their own contract to keep
/// Tasks under the code-size limit. `verify`: ECVRF-EDWARDS25519-SHA512-TAI, (true, beta) iff the
/// proof verifies under the key for alpha, never reverts. `tooManySeats`: protocol.md 4.1.
interface IFraudVerifier {
    function verify(bytes32 publicKey, bytes calldata alpha, bytes calldata proof)
        external
        view
        returns (bool valid, bytes memory beta);

    function tooManySeats(uint64 x, uint256 w, uint256 totalW, uint256 tau, uint256 seats)
        external
        pure
        returns (bool);
}

/// @title Ferry tasks: escrow, seeds, claims, evidence, votes, key releases, receipts
/// @notice The task state machine of docs/protocol.md section 12. VRF outputs and proofs are
/// recorded but not verified when they arrive: ed25519 VRF verification costs about 0.8 M gas
/// on the EVM. The contract uses a claimed output for the claim threshold and ordering, and
/// counts claimed seats up to a stake-based bound; every relying party verifies every proof and
/// seat count off chain and refuses to act on a wrong one. A commitment to each vote and to the
/// best claim is stored, so anyone can later prove a false one on chain (challengeVote,
/// challengeClaim: a fraud proof, verified by FraudVerifier); the liar is slashed and
/// an executor its lie excluded is restored. Nothing unverified slashes: only an executor's own
/// provable fault (evidence or receipt missed) and a proven lie do, and slashed stake is burnt.
/// Payments are credited and withdrawn by their owners (pull payments) behind a re-entrancy
/// guard.
contract Tasks {
    // Task status, in this order; the lowercase names are the protocol's state names.
    uint8 internal constant CREATED = 0;
    uint8 internal constant SEEDED = 1;
    uint8 internal constant CLAIMED = 2;
    uint8 internal constant ATTESTING = 3;
    uint8 internal constant ATTESTED = 4;
    uint8 internal constant RUNNING = 5;
    uint8 internal constant COMPLETED = 6;
    uint8 internal constant REJECTED = 7;
    uint8 internal constant FAILED = 8;
    uint8 internal constant EXPIRED = 9;

    // Why an attempt ended (AttemptEnded.reason).
    uint8 internal constant END_NO_CLAIM = 1;
    uint8 internal constant END_EVIDENCE_MISSED = 2;
    uint8 internal constant END_EVIDENCE_REJECTED = 3;
    uint8 internal constant END_VOTES_MISSED = 4;
    uint8 internal constant END_RECEIPT_MISSED = 5;
    uint8 internal constant END_KEYS_MISSED = 6;
    uint8 internal constant END_ABANDONED = 7;
    uint8 internal constant END_FRAUD = 8;
    uint256 internal constant MAX_ABANDON_CAUSE = 256;

    uint8 internal constant ROLE_EXECUTOR = 1;
    uint8 internal constant ROLE_VERIFIER = 2;
    uint8 internal constant NODE_ACTIVE = 1;
    uint256 internal constant MAX_DATASETS = 7;
    uint8 internal constant VOTE_FAIL = 1;
    uint8 internal constant VOTE_PASS = 2;
    uint8 internal constant VOTE_PASS_PAID = 3;
    uint8 internal constant VOTE_DISCARDED = 4;
    uint256 internal constant VOTE_KIND_MASK = 7;

    // What a fraud proof proved (FraudProven.fraud).
    uint8 internal constant FRAUD_CLAIM_VRF = 1;
    uint8 internal constant FRAUD_VOTE_VRF = 2;
    uint8 internal constant FRAUD_VOTE_SEATS = 3;

    // Window bounds, seconds (protocol.md section 11.3, "Window bounds").
    uint256 public constant MIN_CLAIM_WINDOW = 3;
    uint256 public constant MAX_CLAIM_WINDOW = 3600;
    uint256 public constant MIN_EVIDENCE_WINDOW = 10;
    uint256 public constant MAX_EVIDENCE_WINDOW = 3600;
    uint256 public constant MIN_VOTE_WINDOW = 5;
    uint256 public constant MAX_VOTE_WINDOW = 3600;
    uint256 public constant MIN_RUN_WINDOW = 5;
    uint256 public constant MAX_RUN_WINDOW = 86_400;
    /// The executor always has at least this long after the last key release (running).
    uint256 public constant MIN_RUN_TIME = 60;
    uint256 public constant MIN_TASK_TTL = 10;
    uint256 public constant MAX_TASK_TTL = 30 days;

    // Claim eligibility (protocol.md section 11.3, src/protocol/claim.ts).
    uint8 internal constant CLAIM_TARGET_DEFAULT = 3;
    uint256 internal constant CLAIM_ROUNDS = 6;

    // Seat bound (protocol.md section 11.3): seats <= min(w, m + isqrt(64 m) + 8), m = ceil(tau w / W),
    // w and W the voter's and the task's verifier stake in units of STAKE_UNIT wei.
    uint256 internal constant STAKE_UNIT = 1e15;
    uint256 internal constant SEAT_SIGMAS_SQUARED = 64;
    uint256 internal constant SEAT_SLACK = 8;

    struct CreateParams {
        uint256 appId;
        uint256[] datasetIds; // 1..7 datasets
        bytes32 inputHash; // SHA-256 of the task input
        bytes32 resultRecipient; // requester's X25519 (age) public key
        string inputLocation; // where the executor fetches the input
        uint40 expiresAt; // the task expires (refund) if not completed by then
        uint32 claimWindow; // seconds, from the seed
        uint32 evidenceWindow; // seconds, after the claim window
        uint32 voteWindow; // seconds, after the evidence commitment
        uint32 runWindow; // seconds, after attestation: key releases; and after the last one: receipt (>= MIN_RUN_TIME)
        uint8 claimTarget; // expected claimants per round-0 (k, protocol.md 11.3); 0: the default 3
    }

    struct Task {
        address requester;
        uint8 status;
        uint8 attempt;
        uint8 assetCount; // 1 + number of datasets
        uint8 releasedMask; // bit 0 app, bit i dataset i-1
        uint16 tau;
        uint16 threshold;
        bool keysEverReleased;
        uint16 teeKinds; // TEE kinds allowed by every dataset
        uint8 graceAttempts; // attempts given back by fraud proofs (on top of maxAttempts)
        address executor; // best claimant while claiming, then the attempt's executor
        uint40 deadline; // the current stage's deadline (see protocol.md section 12)
        uint16 passSeats;
        uint16 failSeats;
        uint16 passVoters;
        uint64 appId;
        uint64 anchorBlock; // seed source: blockhash(anchorBlock + 1)
        uint128 fee;
        uint40 expiresAt;
        uint32 claimWindow;
        uint32 evidenceWindow;
        uint32 voteWindow;
        uint32 runWindow;
        uint64 createdBlock;
        uint8 claimTarget; // k
        uint128 totalVerifierStake;
        uint128 voterReward; // set at completion: what each pass voter of the final attempt may claim
        bytes32 seed;
        bytes32 bestOutput; // the best claim: its output's first 8 bytes || 24 bytes of its record (claimRecord)
        bytes32 evidenceHash;
        bytes32 receiptHash;
        uint128 totalExecutorStake; // snapshot at creation: W of the claim threshold
        uint64[7] datasetIds; // the first assetCount - 1 are the task's datasets
    }

    NodeRegistry public immutable registry;
    Assets public immutable assets;
    IFraudVerifier public immutable fraudVerifier;
    uint256 public immutable maxAttempts;
    uint256 public immutable verifierShareBps;
    /// Seats every eligible voter may claim without its stake being read: min(1 + isqrt(64) +
    /// SEAT_SLACK, registry.minStake() / STAKE_UNIT), a lower bound of seatBound for any active
    /// voter counted in the task's verifier stake.
    uint256 internal immutable fastSeats;

    uint256 public taskCount;
    mapping(uint256 => Task) internal tasks;
    /// keccak256(taskId, attempt, verifier) => the vote's record (voteRecord, protocol.md 11.5)
    /// with its low 3 bits replaced by VOTE_FAIL / VOTE_PASS / VOTE_PASS_PAID / VOTE_DISCARDED
    mapping(bytes32 => bytes32) internal votes;
    /// keccak256(taskId, node) => bit 0: excluded from later attempts; bits 8..15: the last
    /// attempt the node claimed (one claim per node per attempt); bits 16..23 and 24..31: why
    /// and in which attempt it was excluded (AttemptEnded reason), for a fraud proof's restore
    mapping(bytes32 => uint256) internal nodeTask;
    mapping(address => uint256) public credits;
    uint256 internal transient locked;

    event TaskCreated(
        uint256 indexed taskId,
        address indexed requester,
        uint256 indexed appId,
        uint256[] datasetIds,
        bytes32 inputHash,
        bytes32 resultRecipient,
        string inputLocation,
        uint256 fee,
        uint16 tau,
        uint16 threshold,
        uint16 teeKinds,
        uint256 totalVerifierStake,
        uint256 totalExecutorStake,
        uint256 expiresAt
    );
    event StatusChanged(uint256 indexed taskId, uint256 indexed attempt, uint8 status);
    event TaskSeeded(uint256 indexed taskId, uint256 indexed attempt, bytes32 seed, uint256 claimDeadline);
    event SeedReanchored(uint256 indexed taskId, uint256 indexed attempt, uint256 anchorBlock);
    event TaskClaimed(
        uint256 indexed taskId, uint256 indexed attempt, address indexed executor, bytes vrfOutput, bytes vrfProof, bool best
    );
    event EvidenceCommitted(
        uint256 indexed taskId,
        uint256 indexed attempt,
        address indexed executor,
        bytes32 evidenceHash,
        string evidenceLocation,
        uint256 voteDeadline
    );
    event VoteCast(
        uint256 indexed taskId,
        uint256 indexed attempt,
        address indexed verifier,
        bool pass,
        bytes32 resultHash,
        uint16 seats,
        bytes vrfOutput,
        bytes vrfProof
    );
    event TaskAttested(
        uint256 indexed taskId, uint256 indexed attempt, uint16 passSeats, uint16 failSeats, uint256 runDeadline
    );
    event AttemptEnded(
        uint256 indexed taskId, uint256 indexed attempt, address indexed executor, uint8 reason, uint256 slashed
    );
    event AttemptAbandoned(uint256 indexed taskId, uint256 indexed attempt, address indexed executor, string cause);
    event KeyReleased(
        uint256 indexed taskId, uint256 indexed attempt, uint256 assetIndex, address owner, bytes32 releaseHash
    );
    event TaskCompleted(
        uint256 indexed taskId,
        uint256 indexed attempt,
        address indexed executor,
        bytes32 receiptHash,
        bytes receipt,
        bytes signature,
        bytes32 resultHash,
        string resultLocation
    );
    event TaskFailed(uint256 indexed taskId, uint256 attempts, uint256 refund);
    /// A fraud proof succeeded: `liar`'s vote or claim in `attempt` was false (fraud 1: a claim
    /// whose VRF proof does not verify or gives another output; 2: the same for a vote; 3: a
    /// vote's seats provably more than sortition gives). `slashed` was burnt; `restored`: the
    /// attempt's executor, excluded by the lie, may claim again and the task got an attempt back.
    event FraudProven(
        uint256 indexed taskId,
        uint256 indexed attempt,
        address indexed liar,
        address challenger,
        uint8 fraud,
        uint256 slashed,
        bool restored
    );
    event TaskExpired(uint256 indexed taskId, uint256 attempt, uint256 refund);
    event Credited(address indexed account, uint256 indexed taskId, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    /// A direct payment: the executor's share at completion, a voter's reward on claim.
    event Paid(address indexed account, uint256 indexed taskId, uint256 amount);

    constructor(
        NodeRegistry registry_,
        Assets assets_,
        IFraudVerifier fraudVerifier_,
        uint256 maxAttempts_,
        uint256 verifierShareBps_
    ) {
        if (address(registry_) == address(0)) revert InvalidParameter("registry");
        if (address(assets_) == address(0)) revert InvalidParameter("assets");
        if (address(fraudVerifier_).code.length == 0) revert InvalidParameter("fraudVerifier");
        if (maxAttempts_ == 0 || maxAttempts_ > 255) revert InvalidParameter("maxAttempts");
        if (verifierShareBps_ > 10_000) revert InvalidParameter("verifierShareBps");
        registry = registry_;
        assets = assets_;
        fraudVerifier = fraudVerifier_;
        maxAttempts = maxAttempts_;
        verifierShareBps = verifierShareBps_;
        uint256 minUnits = registry_.minStake() / STAKE_UNIT;
        uint256 least = 1 + 8 + SEAT_SLACK; // seatBound's m + isqrt(64 m) + 8 at m = 1
        fastSeats = minUnits < least ? minUnits : least;
    }

    modifier nonReentrant() {
        if (locked != 0) revert Reentrancy();
        locked = 1;
        _;
        locked = 0;
    }

    // ------------------------------------------------------------------ create and seed

    /// Creates a task with msg.value as escrow (>= app price + dataset prices). Refuses what a
    /// policy forbids (see Assets.useForTask) and windows or an expiry outside their bounds
    /// (InvalidParameter naming it). Snapshots the active executor and verifier stake.
    function createTask(CreateParams calldata p) external payable nonReentrant returns (uint256 taskId) {
        uint256 nd = p.datasetIds.length;
        if (nd == 0 || nd > MAX_DATASETS) revert InvalidParameter("datasetIds");
        if (p.appId == 0 || p.appId > type(uint64).max) revert InvalidParameter("appId");
        if (p.expiresAt < block.timestamp + MIN_TASK_TTL || p.expiresAt > block.timestamp + MAX_TASK_TTL) {
            revert InvalidParameter("expiresAt");
        }
        if (p.claimWindow < MIN_CLAIM_WINDOW || p.claimWindow > MAX_CLAIM_WINDOW) {
            revert InvalidParameter("claimWindow");
        }
        if (p.evidenceWindow < MIN_EVIDENCE_WINDOW || p.evidenceWindow > MAX_EVIDENCE_WINDOW) {
            revert InvalidParameter("evidenceWindow");
        }
        if (p.voteWindow < MIN_VOTE_WINDOW || p.voteWindow > MAX_VOTE_WINDOW) revert InvalidParameter("voteWindow");
        if (p.runWindow < MIN_RUN_WINDOW || p.runWindow > MAX_RUN_WINDOW) revert InvalidParameter("runWindow");
        if (p.resultRecipient == bytes32(0)) revert InvalidParameter("resultRecipient");
        if (msg.value > type(uint128).max) revert InvalidParameter("value");
        if (p.datasetIds[0] > type(uint64).max) revert InvalidParameter("datasetIds");
        for (uint256 i = 1; i < nd; i++) {
            if (p.datasetIds[i] <= p.datasetIds[i - 1] || p.datasetIds[i] > type(uint64).max) {
                revert InvalidParameter("datasetIds");
            }
        }
        taskId = ++taskCount;
        Assets.Use memory u = assets.useForTask(taskId, p.appId, p.datasetIds, msg.sender);
        uint256 required = u.appPrice + u.datasetsPrice;
        if (msg.value < required) revert InsufficientFee(required, msg.value);
        (uint256 execStake, uint256 verStake) = registry.totals();
        Task storage t = tasks[taskId];
        t.requester = msg.sender;
        t.attempt = 1;
        t.assetCount = uint8(nd + 1);
        t.tau = u.tau;
        t.threshold = u.threshold;
        t.appId = uint64(p.appId);
        t.anchorBlock = uint64(block.number);
        t.fee = uint128(msg.value);
        t.expiresAt = p.expiresAt;
        t.claimWindow = p.claimWindow;
        t.evidenceWindow = p.evidenceWindow;
        t.voteWindow = p.voteWindow;
        t.runWindow = p.runWindow;
        t.createdBlock = uint64(block.number);
        t.claimTarget = p.claimTarget == 0 ? CLAIM_TARGET_DEFAULT : p.claimTarget;
        t.totalVerifierStake = uint128(verStake);
        t.totalExecutorStake = uint128(execStake);
        for (uint256 i = 0; i < nd; i++) {
            t.datasetIds[i] = uint64(p.datasetIds[i]);
        }
        t.teeKinds = u.teeKinds;
        emit TaskCreated(
            taskId,
            msg.sender,
            p.appId,
            p.datasetIds,
            p.inputHash,
            p.resultRecipient,
            p.inputLocation,
            msg.value,
            u.tau,
            u.threshold,
            u.teeKinds,
            verStake,
            execStake,
            p.expiresAt
        );
        emit StatusChanged(taskId, 1, CREATED);
    }

    /// Fixes the current attempt's seed: keccak256(abi.encode(blockhash(anchorBlock + 1),
    /// chainid, taskId, attempt)). Callable by anyone once block anchorBlock + 1 exists, in
    /// status created or rejected. If that block hash is no longer available (256 blocks),
    /// re-anchors at the current block instead (SeedReanchored) and returns bytes32(0).
    function seed(uint256 taskId) external returns (bytes32 s) {
        Task storage t = _task(taskId);
        uint8 st = t.status;
        if (st != CREATED && st != REJECTED) revert WrongState(taskId, st);
        if (_expireIfDue(taskId, t)) return bytes32(0);
        uint256 source = uint256(t.anchorBlock) + 1;
        if (block.number <= source) revert TooEarly(source + 1, block.number);
        bytes32 h = blockhash(source);
        if (h == bytes32(0)) {
            t.anchorBlock = uint64(block.number);
            emit SeedReanchored(taskId, t.attempt, block.number);
            return bytes32(0);
        }
        s = keccak256(abi.encode(h, block.chainid, taskId, uint256(t.attempt)));
        t.seed = s;
        uint256 claimDeadline = block.timestamp + t.claimWindow;
        t.deadline = uint40(claimDeadline);
        _setStatus(taskId, t, SEEDED);
        emit TaskSeeded(taskId, t.attempt, s, claimDeadline);
    }

    // ------------------------------------------------------------------ claims

    /// An eligible executor claims the current attempt with its VRF output (64 bytes) and
    /// proof (80 bytes) over the claim alpha (protocol.md section 3), once per attempt
    /// (AlreadyClaimed). Accepted until the claim deadline when the output's first 8 bytes x
    /// are below the node's threshold in the current round (protocol.md section 11.3, claim
    /// eligibility; NotEligible 10 otherwise). The claim with the smallest x / stake is the
    /// best (ties: the first); the best claimant's stake is locked in the registry.
    function claim(uint256 taskId, uint256 attempt, bytes calldata vrfOutput, bytes calldata vrfProof) external {
        Task storage t = _task(taskId);
        uint8 st = t.status;
        if (st != SEEDED && st != CLAIMED) revert WrongState(taskId, st);
        if (attempt != t.attempt) revert WrongAttempt(taskId, t.attempt, attempt);
        uint256 deadline = t.deadline;
        if (block.timestamp > deadline) revert DeadlinePassed(deadline, block.timestamp);
        if (vrfOutput.length != 64) revert InvalidParameter("vrfOutput");
        if (vrfProof.length != 80) revert InvalidParameter("vrfProof");
        (uint8 roles, uint8 nst, uint16 tee, bytes2 region, uint64 changed, uint128 stake) =
            registry.nodeCore(msg.sender);
        if (nst == 0) revert NotEligible(msg.sender, 1);
        if (roles & ROLE_EXECUTOR == 0) revert NotEligible(msg.sender, 2);
        if (nst != NODE_ACTIVE) revert NotEligible(msg.sender, 3);
        if (changed >= t.createdBlock) revert NotEligible(msg.sender, 4);
        if (!assets.regionAllowed(_datasetIds(t), region)) revert NotEligible(msg.sender, 5);
        if (tee & t.teeKinds == 0) revert NotEligible(msg.sender, 6);
        bytes32 nk = keccak256(abi.encode(taskId, msg.sender));
        uint256 nt = nodeTask[nk];
        if (nt & 1 != 0) revert NotEligible(msg.sender, 7);
        // The best claimant is t.executor; every other claimant of the attempt is marked in
        // nodeTask (a claim that is not best, or the best one once displaced).
        if ((nt >> 8) & 0xff == attempt || (st == CLAIMED && t.executor == msg.sender)) {
            revert AlreadyClaimed(taskId, attempt, msg.sender);
        }
        uint256 x = uint64(bytes8(vrfOutput[0:8]));
        uint256 w = stake;
        {
            uint256 window = t.claimWindow;
            uint256 round = ((block.timestamp + window - deadline) * CLAIM_ROUNDS) / window;
            if (round < CLAIM_ROUNDS - 1) {
                uint256 threshold = ((uint256(t.claimTarget) * w) << (64 + 2 * round)) / t.totalExecutorStake;
                if (x >= threshold) revert NotEligible(msg.sender, 10);
            }
        }
        bool best = st == SEEDED;
        if (!best) {
            address prev = t.executor;
            uint256 bestX = uint64(bytes8(t.bestOutput));
            best = x * registry.stakeOf(prev) < bestX * w;
            if (best) {
                registry.unlock(prev);
                bytes32 pk = keccak256(abi.encode(taskId, prev));
                nodeTask[pk] = (nodeTask[pk] & 1) | (attempt << 8);
            } else {
                nodeTask[nk] = (nt & 1) | (attempt << 8);
            }
        }
        if (best) {
            t.bestOutput = claimRecord(attempt, msg.sender, t.seed, vrfOutput, vrfProof);
            t.executor = msg.sender;
            registry.lock(msg.sender);
            if (st == SEEDED) _setStatus(taskId, t, CLAIMED);
        }
        emit TaskClaimed(taskId, attempt, msg.sender, vrfOutput, vrfProof, best);
    }

    // ------------------------------------------------------------------ evidence and votes

    /// The winning claimant commits the SHA-256 of its `ferry/evidence/v1` evidence and where
    /// to fetch it, after the claim deadline and within evidenceWindow of it. Opens the vote.
    function commitEvidence(uint256 taskId, uint256 attempt, bytes32 evidenceHash, string calldata location)
        external
    {
        Task storage t = _task(taskId);
        if (t.status != CLAIMED) revert WrongState(taskId, t.status);
        if (attempt != t.attempt) revert WrongAttempt(taskId, t.attempt, attempt);
        if (msg.sender != t.executor) revert NotExecutor(taskId, msg.sender);
        if (block.timestamp <= t.deadline) revert TooEarly(uint256(t.deadline) + 1, block.timestamp);
        uint256 evDeadline = uint256(t.deadline) + t.evidenceWindow;
        if (block.timestamp > evDeadline) revert DeadlinePassed(evDeadline, block.timestamp);
        if (evidenceHash == bytes32(0)) revert InvalidParameter("evidenceHash");
        t.evidenceHash = evidenceHash;
        uint256 voteDeadline = block.timestamp + t.voteWindow;
        t.deadline = uint40(voteDeadline);
        _setStatus(taskId, t, ATTESTING);
        emit EvidenceCommitted(taskId, attempt, msg.sender, evidenceHash, location, voteDeadline);
    }

    /// A verifier's vote: verdict, SHA-256 of its `ferry/attestation-result/v1`, its seat count
    /// and VRF output/proof over the verifier-selection alpha. One vote per verifier per
    /// attempt, from active verifiers (frozen before the task) other than the executor and not
    /// of the executor's operator (NodeRegistry.sameOperator), while
    /// the task is attesting (until the vote deadline) or attested (until the run deadline;
    /// late votes are recorded and paid but change nothing). `seats` may not exceed the bound
    /// of the voter's stake share (seatBound, TooManySeats). While attesting: attested when
    /// pass seats >= threshold; the attempt is rejected (the executor excluded, not slashed:
    /// the contract cannot check a fail vote) when fail seats >= tau - threshold + 1.
    function vote(
        uint256 taskId,
        uint256 attempt,
        bool pass,
        bytes32 resultHash,
        uint16 seats,
        bytes calldata vrfOutput,
        bytes calldata vrfProof
    ) external {
        Task storage t = _task(taskId);
        uint8 st = t.status;
        if (st != ATTESTING && st != ATTESTED) revert WrongState(taskId, st);
        if (attempt != t.attempt) revert WrongAttempt(taskId, t.attempt, attempt);
        if (block.timestamp > t.deadline) revert DeadlinePassed(t.deadline, block.timestamp);
        if (seats == 0) revert InvalidParameter("seats");
        if (resultHash == bytes32(0)) revert InvalidParameter("resultHash");
        if (vrfOutput.length != 64) revert InvalidParameter("vrfOutput");
        if (vrfProof.length != 80) revert InvalidParameter("vrfProof");
        (uint8 roles, uint8 nst,,, uint64 changed, uint128 stake) = registry.nodeCore(msg.sender);
        if (nst == 0) revert NotEligible(msg.sender, 1);
        if (roles & ROLE_VERIFIER == 0) revert NotEligible(msg.sender, 2);
        if (nst != NODE_ACTIVE) revert NotEligible(msg.sender, 3);
        if (changed >= t.createdBlock) revert NotEligible(msg.sender, 4);
        // An eligible voter holds at least minStake (active) and was counted in
        // totalVerifierStake, so its bound is at least min(17, minStake units): below that the
        // bound need not be computed.
        if (seats > fastSeats) {
            uint256 maxSeats = seatBound(stake, t.totalVerifierStake, t.tau);
            if (seats > maxSeats) revert TooManySeats(seats, maxSeats);
        }
        address executor = t.executor;
        if (msg.sender == executor) revert NotEligible(msg.sender, 8);
        if (registry.sameOperator(msg.sender, executor)) revert NotEligible(msg.sender, 9);
        bytes32 key = keccak256(abi.encode(taskId, attempt, msg.sender));
        if (votes[key] != 0) revert AlreadyVoted(taskId, attempt, msg.sender);
        votes[key] = voteRecord(pass, seats, stake, t.seed, executor, vrfOutput, vrfProof)
            | bytes32(uint256(pass ? VOTE_PASS : VOTE_FAIL));
        emit VoteCast(taskId, attempt, msg.sender, pass, resultHash, seats, vrfOutput, vrfProof);
        if (pass) {
            t.passSeats = _addSeats(t.passSeats, seats);
            t.passVoters += 1;
            if (st == ATTESTING && t.passSeats >= t.threshold) {
                uint256 runDeadline = block.timestamp + t.runWindow;
                t.deadline = uint40(runDeadline);
                _setStatus(taskId, t, ATTESTED);
                emit TaskAttested(taskId, attempt, t.passSeats, t.failSeats, runDeadline);
            }
        } else {
            t.failSeats = _addSeats(t.failSeats, seats);
            if (st == ATTESTING && uint256(t.failSeats) + t.threshold > t.tau) {
                _endAttempt(taskId, t, END_EVIDENCE_REJECTED, true, false);
            }
        }
    }

    // ------------------------------------------------------------------ key releases and receipt

    /// The owner of asset `assetIndex` (0: the app, i: dataset i-1) records that it released
    /// its key for this attempt; `releaseHash` identifies the sealed key it delivered. The task
    /// is running once every asset's key is recorded: the run deadline then restarts at
    /// now + max(runWindow, MIN_RUN_TIME), so a late release never leaves the executor less
    /// than MIN_RUN_TIME (it abandons, unslashed, when a key never arrives or does not open).
    function recordKeyRelease(uint256 taskId, uint256 attempt, uint256 assetIndex, bytes32 releaseHash) external {
        Task storage t = _task(taskId);
        if (t.status != ATTESTED) revert WrongState(taskId, t.status);
        if (attempt != t.attempt) revert WrongAttempt(taskId, t.attempt, attempt);
        if (block.timestamp > t.deadline) revert DeadlinePassed(t.deadline, block.timestamp);
        if (assetIndex >= t.assetCount) revert InvalidParameter("assetIndex");
        if (releaseHash == bytes32(0)) revert InvalidParameter("releaseHash");
        address owner =
            assetIndex == 0 ? assets.appOwner(t.appId) : assets.datasetOwner(t.datasetIds[assetIndex - 1]);
        if (msg.sender != owner) revert NotOwner(msg.sender, owner);
        uint256 mask = t.releasedMask;
        uint256 bit = uint256(1) << assetIndex;
        if (mask & bit != 0) revert AlreadyReleased(taskId, assetIndex);
        mask |= bit;
        t.releasedMask = uint8(mask);
        t.keysEverReleased = true;
        emit KeyReleased(taskId, attempt, assetIndex, msg.sender, releaseHash);
        if (mask == (uint256(1) << t.assetCount) - 1) {
            uint256 run = t.runWindow;
            t.deadline = uint40(block.timestamp + (run > MIN_RUN_TIME ? run : MIN_RUN_TIME));
            _setStatus(taskId, t, RUNNING);
        }
    }

    /// The executor posts the enclave's receipt (tagged canonical `ferry/receipt/v1` bytes)
    /// and its 64-byte Ed25519 signature, with the result ciphertext hash and location.
    /// Stores SHA-256(receipt), completes the task and settles the escrow: the app price is
    /// credited to the app owner and each dataset's price to its owner (withdraw); of the rest,
    /// verifierShareBps is split equally among the attempt's pass voters (claimVoteReward) and
    /// the remainder is paid to the executor (msg.sender) at once.
    function submitReceipt(
        uint256 taskId,
        uint256 attempt,
        bytes calldata receipt,
        bytes calldata signature,
        bytes32 resultHash,
        string calldata resultLocation
    ) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.status != RUNNING) revert WrongState(taskId, t.status);
        if (attempt != t.attempt) revert WrongAttempt(taskId, t.attempt, attempt);
        if (msg.sender != t.executor) revert NotExecutor(taskId, msg.sender);
        if (block.timestamp > t.deadline) revert DeadlinePassed(t.deadline, block.timestamp);
        if (receipt.length == 0) revert InvalidParameter("receipt");
        if (signature.length != 64) revert InvalidParameter("signature");
        if (resultHash == bytes32(0)) revert InvalidParameter("resultHash");
        bytes32 rh = sha256(receipt);
        t.receiptHash = rh;
        _setStatus(taskId, t, COMPLETED);
        registry.unlock(msg.sender);
        emit TaskCompleted(taskId, attempt, msg.sender, rh, receipt, signature, resultHash, resultLocation);
        uint256 toExecutor = _settle(taskId, t);
        if (toExecutor != 0) {
            emit Paid(msg.sender, taskId, toExecutor);
            (bool ok,) = msg.sender.call{value: toExecutor}("");
            if (!ok) revert TransferFailed(msg.sender, toExecutor);
        }
    }

    /// The executor of an attested or running attempt gives it up before the run deadline,
    /// saying why in `cause` (1..256 bytes, "CODE: message", e.g. its enclave could not read
    /// an input, a recorded key never arrived or does not open, or it was lost in a restart). The attempt ends (reason abandoned): the executor is
    /// excluded from the task, earns nothing and is not slashed (a silent executor is, at the
    /// run deadline); the task goes on with a new attempt or fails and is refunded.
    function abandon(uint256 taskId, uint256 attempt, string calldata cause) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.status != ATTESTED && t.status != RUNNING) revert WrongState(taskId, t.status);
        if (attempt != t.attempt) revert WrongAttempt(taskId, t.attempt, attempt);
        if (msg.sender != t.executor) revert NotExecutor(taskId, msg.sender);
        if (block.timestamp > t.deadline) revert DeadlinePassed(t.deadline, block.timestamp);
        uint256 n = bytes(cause).length;
        if (n == 0 || n > MAX_ABANDON_CAUSE) revert InvalidParameter("cause");
        emit AttemptAbandoned(taskId, attempt, msg.sender, cause);
        _endAttempt(taskId, t, END_ABANDONED, true, false);
    }

    /// A pass voter of a completed task's final attempt collects its share, paid at once.
    /// Once per voter and task; NothingToWithdraw for anyone else.
    function claimVoteReward(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.status != COMPLETED) revert WrongState(taskId, t.status);
        bytes32 key = keccak256(abi.encode(taskId, uint256(t.attempt), msg.sender));
        bytes32 v = votes[key];
        if (uint256(v) & VOTE_KIND_MASK != VOTE_PASS) revert NothingToWithdraw(msg.sender);
        votes[key] = v ^ bytes32(uint256(VOTE_PASS ^ VOTE_PASS_PAID));
        uint256 amount = t.voterReward;
        emit Paid(msg.sender, taskId, amount);
        if (amount != 0) {
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert TransferFailed(msg.sender, amount);
        }
    }

    // ------------------------------------------------------------------ fraud proofs

    /// What a vote recorded, as a challenger resupplies it (protocol.md section 11.5): the
    /// VoteCast event's pass, seats, vrfOutput and vrfProof; the voter's stake (wei) as the
    /// registry held it before the task was created; the attempt's seed (TaskSeeded); the
    /// attempt's executor when the vote was cast (EvidenceCommitted). The VRF key is the
    /// registry's (fixed at registration).
    struct VoteProof {
        bool pass;
        uint16 seats;
        uint128 stake;
        bytes32 seed;
        address executor;
        bytes vrfOutput;
        bytes vrfProof;
    }

    /// Anyone proves a recorded vote false: its VRF proof does not verify under the voter's key
    /// for the verifier alpha of (chain, task, attempt, seed), or gives another output, or its
    /// seats are provably more than sortition gives for its stake (SeatProof). Then the vote is
    /// discarded (its seats leave the tally of a current attempt; no reward), the voter is
    /// slashed and jailed (burnt), and an executor the attempt excluded for a reason the lie can
    /// cause (evidence rejected, votes missed, keys missed) is restored: it may claim again and
    /// the task gets an attempt back. ChallengeMismatch when `v` is not what was recorded;
    /// NoFraud when the vote is true. Costs about 1 M gas (the VRF verification and the seat proof).
    function challengeVote(uint256 taskId, uint256 attempt, address voter, VoteProof calldata v)
        external
        nonReentrant
    {
        Task storage t = _task(taskId);
        if (v.vrfOutput.length != 64) revert InvalidParameter("vrfOutput");
        if (v.vrfProof.length != 80) revert InvalidParameter("vrfProof");
        bytes32 key = keccak256(abi.encode(taskId, attempt, voter));
        bytes32 stored = votes[key];
        uint256 kind = uint256(stored) & VOTE_KIND_MASK;
        bytes32 record = voteRecord(v.pass, v.seats, v.stake, v.seed, v.executor, v.vrfOutput, v.vrfProof);
        if (kind == 0 || kind == VOTE_DISCARDED || stored ^ bytes32(kind) != record) {
            revert ChallengeMismatch(taskId, attempt, voter);
        }
        uint8 fraud;
        if (!_vrfHolds(VERIFIER_DST, taskId, attempt, v.seed, voter, v.vrfOutput, v.vrfProof)) {
            fraud = FRAUD_VOTE_VRF;
        } else {
            uint256 bigW = uint256(t.totalVerifierStake) / STAKE_UNIT;
            uint256 w = uint256(v.stake) / STAKE_UNIT;
            if (w > bigW) w = bigW;
            if (fraudVerifier.tooManySeats(uint64(bytes8(v.vrfOutput[0:8])), w, bigW, t.tau, v.seats)) {
                fraud = FRAUD_VOTE_SEATS;
            } else {
                revert NoFraud(taskId, attempt, voter);
            }
        }
        votes[key] = record | bytes32(uint256(VOTE_DISCARDED));
        uint8 st = t.status;
        if (attempt == t.attempt && st >= ATTESTING && st <= RUNNING) {
            if (v.pass) {
                t.passSeats = _subSeats(t.passSeats, v.seats);
                t.passVoters -= 1;
            } else {
                t.failSeats = _subSeats(t.failSeats, v.seats);
            }
        }
        uint256 slashed = registry.slash(voter, taskId);
        bool restored = _restore(taskId, t, attempt, v.executor);
        emit FraudProven(taskId, attempt, voter, msg.sender, fraud, slashed, restored);
    }

    /// What the best claim recorded, as a challenger resupplies it: the TaskClaimed event's
    /// vrfOutput and vrfProof and the attempt's seed.
    struct ClaimProof {
        bytes32 seed;
        bytes vrfOutput;
        bytes vrfProof;
    }

    /// Anyone proves the recorded best claim false (its VRF proof does not verify under the
    /// claimant's key for the claim alpha, or gives another output). The claimant is slashed and
    /// jailed; while its attempt is open (claimed to running) the attempt ends (reason 8, fraud:
    /// the claimant excluded and slashed) and the task gets that attempt back. Only the best
    /// claim is recorded: another claim decides nothing. ChallengeMismatch / NoFraud as for votes.
    function challengeClaim(uint256 taskId, uint256 attempt, address claimant, ClaimProof calldata c)
        external
        nonReentrant
    {
        Task storage t = _task(taskId);
        if (c.vrfOutput.length != 64) revert InvalidParameter("vrfOutput");
        if (c.vrfProof.length != 80) revert InvalidParameter("vrfProof");
        bytes32 best = t.bestOutput;
        if (best == 0 || best != claimRecord(attempt, claimant, c.seed, c.vrfOutput, c.vrfProof)) {
            revert ChallengeMismatch(taskId, attempt, claimant);
        }
        if (_vrfHolds(CLAIM_DST, taskId, attempt, c.seed, claimant, c.vrfOutput, c.vrfProof)) {
            revert NoFraud(taskId, attempt, claimant);
        }
        t.bestOutput = 0;
        uint8 st = t.status;
        uint256 slashed;
        bool open = attempt == t.attempt && st >= CLAIMED && st <= RUNNING && t.executor == claimant;
        if (open) {
            if (t.graceAttempts < type(uint8).max) t.graceAttempts += 1;
            uint256 before = registry.burned();
            _endAttempt(taskId, t, END_FRAUD, true, true);
            slashed = registry.burned() - before;
        } else {
            slashed = registry.slash(claimant, taskId);
        }
        emit FraudProven(taskId, attempt, claimant, msg.sender, FRAUD_CLAIM_VRF, slashed, open);
    }

    /// The record of a vote (protocol.md section 11.5), stored with the vote: keccak256 of the
    /// packed (pass, seats, stake, seed, executor, vrfOutput, vrfProof), its low 3 bits cleared
    /// (they hold the vote's kind).
    function voteRecord(
        bool pass,
        uint16 seats,
        uint128 stake,
        bytes32 seed,
        address executor,
        bytes calldata vrfOutput,
        bytes calldata vrfProof
    ) internal pure returns (bytes32) {
        bytes32 h = keccak256(abi.encodePacked(pass, seats, stake, seed, executor, vrfOutput, vrfProof));
        return h & ~bytes32(VOTE_KIND_MASK);
    }

    /// The record of the best claim (protocol.md section 11.5), stored as the task's bestOutput:
    /// the output's first 8 bytes (the claim's x), then the last 24 bytes of keccak256 of the
    /// packed (uint8 attempt, claimant, seed, vrfOutput, vrfProof).
    function claimRecord(
        uint256 attempt,
        address claimant,
        bytes32 seed,
        bytes calldata vrfOutput,
        bytes calldata vrfProof
    ) internal pure returns (bytes32) {
        bytes32 h = keccak256(abi.encodePacked(uint8(attempt), claimant, seed, vrfOutput, vrfProof));
        return bytes32(bytes8(vrfOutput[0:8])) | (h & bytes32(uint256(type(uint192).max)));
    }

    // ------------------------------------------------------------------ deadlines

    /// Anyone may call once the current stage's deadline (or the task's expiry) has passed.
    /// Expiry: status expired, escrow refunded. Otherwise the attempt ends: no claim (no
    /// penalty); evidence not committed (executor excluded and slashed); vote deadline passed
    /// (executor excluded, not slashed: seats are not verified on chain); keys not all released by
    /// the run deadline (attested: executor excluded, not slashed — an owner agent refused or
    /// was away, which the executor cannot cause or prevent, e.g. after a lying voter made the
    /// attempt attested); receipt not posted by the run deadline once running (executor
    /// excluded and slashed). The next attempt waits in `rejected` for its seed, or the task
    /// fails and is refunded after maxAttempts.
    function timeout(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        uint8 st = t.status;
        if (st == COMPLETED || st == FAILED || st == EXPIRED) revert WrongState(taskId, st);
        if (_expireIfDue(taskId, t)) return;
        if (st == CREATED || st == REJECTED) revert TooEarly(uint256(t.expiresAt) + 1, block.timestamp);
        uint256 due = t.deadline;
        if (st == CLAIMED) due += t.evidenceWindow;
        if (block.timestamp <= due) revert TooEarly(due + 1, block.timestamp);
        if (st == SEEDED) _endAttempt(taskId, t, END_NO_CLAIM, false, false);
        else if (st == CLAIMED) _endAttempt(taskId, t, END_EVIDENCE_MISSED, true, true);
        else if (st == ATTESTING) _endAttempt(taskId, t, END_VOTES_MISSED, true, false);
        else if (st == ATTESTED) _endAttempt(taskId, t, END_KEYS_MISSED, true, false);
        else _endAttempt(taskId, t, END_RECEIPT_MISSED, true, true);
    }

    // ------------------------------------------------------------------ payments

    /// Pays msg.sender everything credited to it.
    function withdraw() external nonReentrant {
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ------------------------------------------------------------------ readers

    function getTask(uint256 taskId) external view returns (Task memory) {
        return tasks[taskId];
    }

    /// 0: no vote, 1: fail, 2: pass, 3: pass and reward claimed, 4: discarded by a fraud proof.
    function voteOf(uint256 taskId, uint256 attempt, address verifier) external view returns (uint8) {
        return uint8(uint256(votes[keccak256(abi.encode(taskId, attempt, verifier))]) & VOTE_KIND_MASK);
    }

    function isExcluded(uint256 taskId, address node) external view returns (bool) {
        return nodeTask[keccak256(abi.encode(taskId, node))] & 1 != 0;
    }

    /// True when `node` claimed the task's current attempt `attempt` (the best claimant, or
    /// marked as another claimant). Earlier attempts are answered for claimants other than
    /// their final executor only; read TaskClaimed events for history.
    function hasClaimed(uint256 taskId, uint256 attempt, address node) external view returns (bool) {
        Task storage t = tasks[taskId];
        if (attempt == t.attempt && t.status >= CLAIMED && t.status <= RUNNING && t.executor == node) return true;
        return (nodeTask[keccak256(abi.encode(taskId, node))] >> 8) & 0xff == attempt;
    }

    /// The most seats a vote may claim (protocol.md section 11.3, "Seat bound"): with w and W the
    /// voter's and the total verifier stake in whole units of 10^15 wei (w capped at W) and
    /// m = ceil(tau * w / W), min(w, m + isqrt(64 m) + 8); 0 when w or W is 0. An honest voter
    /// exceeds it with probability below 1e-14 (src/chain/stake.test.ts).
    function seatBound(uint256 stakeWei, uint256 totalStakeWei, uint256 tau) public pure returns (uint256) {
        uint256 bigW = totalStakeWei / STAKE_UNIT;
        uint256 w = stakeWei / STAKE_UNIT;
        if (w > bigW) w = bigW;
        if (w == 0) return 0;
        uint256 m = (tau * w + bigW - 1) / bigW;
        uint256 b = m + _isqrt(SEAT_SIGMAS_SQUARED * m) + SEAT_SLACK;
        return b < w ? b : w;
    }

    // ------------------------------------------------------------------ internals

    function _task(uint256 taskId) internal view returns (Task storage t) {
        t = tasks[taskId];
        if (t.requester == address(0)) revert UnknownTask(taskId);
    }

    function _setStatus(uint256 taskId, Task storage t, uint8 st) internal {
        t.status = st;
        emit StatusChanged(taskId, t.attempt, st);
    }

    bytes internal constant CLAIM_DST = "ferry/claim/v1\x00";
    bytes internal constant VERIFIER_DST = "ferry/verifier-selection/v1\x00";

    /// True when `proof` verifies under `node`'s VRF key (fixed at registration) for the alpha
    /// DST || u64(chainid) || b32(taskId) || u32(attempt) || seed (protocol.md section 3) and
    /// gives `output`.
    function _vrfHolds(
        bytes memory dst,
        uint256 taskId,
        uint256 attempt,
        bytes32 seed_,
        address node,
        bytes calldata output,
        bytes calldata proof
    ) internal view returns (bool) {
        bytes memory alpha = abi.encodePacked(dst, uint64(block.chainid), taskId, uint32(attempt), seed_);
        (bool valid, bytes memory beta) = fraudVerifier.verify(registry.vrfKeyOf(node), alpha, proof);
        return valid && beta.length == 64 && keccak256(beta) == keccak256(output);
    }

    /// Gives back what a proven lie took from attempt `attempt`'s executor: its exclusion, when
    /// it was excluded in that attempt for a reason a lie can cause (evidence rejected, votes
    /// missed, keys missed), and the attempt (graceAttempts) while the task is open.
    function _restore(uint256 taskId, Task storage t, uint256 attempt, address executor) internal returns (bool) {
        if (executor == address(0)) return false;
        bytes32 k = keccak256(abi.encode(taskId, executor));
        uint256 nt = nodeTask[k];
        if (nt & 1 == 0 || (nt >> 24) & 0xff != attempt) return false;
        uint256 reason = (nt >> 16) & 0xff;
        if (reason != END_EVIDENCE_REJECTED && reason != END_VOTES_MISSED && reason != END_KEYS_MISSED) return false;
        nodeTask[k] = nt & 0xff00;
        uint8 st = t.status;
        if (st != COMPLETED && st != FAILED && st != EXPIRED && t.graceAttempts < type(uint8).max) {
            t.graceAttempts += 1;
        }
        return true;
    }

    function _subSeats(uint16 a, uint16 b) internal pure returns (uint16) {
        return a > b ? a - b : 0;
    }

    function _addSeats(uint16 a, uint16 b) internal pure returns (uint16) {
        uint256 s = uint256(a) + b;
        return s > type(uint16).max ? type(uint16).max : uint16(s);
    }

    function _expireIfDue(uint256 taskId, Task storage t) internal returns (bool) {
        if (block.timestamp <= t.expiresAt) return false;
        uint8 st = t.status;
        if (st >= CLAIMED && st <= RUNNING) registry.unlock(t.executor);
        _setStatus(taskId, t, EXPIRED);
        uint256 refund = _refund(taskId, t);
        emit TaskExpired(taskId, t.attempt, refund);
        return true;
    }

    function _endAttempt(uint256 taskId, Task storage t, uint8 reason, bool exclude, bool penalize) internal {
        address ex = t.executor;
        uint256 slashed = 0;
        if (ex != address(0)) {
            registry.unlock(ex);
            if (exclude) {
                bytes32 k = keccak256(abi.encode(taskId, ex));
                nodeTask[k] = (nodeTask[k] & 0xff00) | (uint256(t.attempt) << 24) | (uint256(reason) << 16) | 1;
            }
            // Burnt by the registry: credited to nobody, so no account profits from a slash.
            if (penalize) slashed = registry.slash(ex, taskId);
        }
        emit AttemptEnded(taskId, t.attempt, ex, reason, slashed);
        if (t.attempt >= maxAttempts + t.graceAttempts || t.attempt == type(uint8).max) {
            _setStatus(taskId, t, FAILED);
            uint256 refund = _refund(taskId, t);
            emit TaskFailed(taskId, t.attempt, refund);
            return;
        }
        t.executor = address(0);
        t.passSeats = 0;
        t.failSeats = 0;
        t.passVoters = 0;
        t.releasedMask = 0;
        t.anchorBlock = uint64(block.number);
        _setStatus(taskId, t, REJECTED);
        t.attempt += 1;
    }

    function _refund(uint256 taskId, Task storage t) internal returns (uint256 fee) {
        fee = t.fee;
        t.fee = 0;
        if (fee != 0) _credit(t.requester, taskId, fee);
        if (!t.keysEverReleased) assets.returnUses(taskId, _datasetIds(t));
    }

    /// The task's dataset ids as the Assets contract takes them.
    function _datasetIds(Task storage t) internal view returns (uint256[] memory ids) {
        uint256 n = t.assetCount - 1;
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; i++) {
            ids[i] = t.datasetIds[i];
        }
    }

    function _isqrt(uint256 a) internal pure returns (uint256 r) {
        if (a == 0) return 0;
        r = a;
        uint256 y = (a + 1) / 2;
        while (y < r) {
            r = y;
            y = (a / y + y) / 2;
        }
    }

    /// Credits the owners, records the per-voter reward; returns the executor's amount.
    function _settle(uint256 taskId, Task storage t) internal returns (uint256 toExecutor) {
        uint256 rest = t.fee;
        t.fee = 0;
        (address appOwner, uint256 appPrice) = assets.appPayee(t.appId);
        if (appPrice != 0) _credit(appOwner, taskId, appPrice);
        rest -= appPrice;
        uint256 nd = t.assetCount - 1;
        for (uint256 i = 0; i < nd; i++) {
            (address owner, uint256 price) = assets.datasetPayee(t.datasetIds[i]);
            if (price != 0) _credit(owner, taskId, price);
            rest -= price;
        }
        uint256 voters = t.passVoters;
        uint256 each = (rest * verifierShareBps) / 10_000 / voters;
        t.voterReward = uint128(each);
        toExecutor = rest - each * voters;
    }

    function _credit(address to, uint256 taskId, uint256 amount) internal {
        credits[to] += amount;
        emit Credited(to, taskId, amount);
    }
}
