// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import "./Errors.sol";

/// @title Ferry node registry
/// @notice Executors and verifiers register here with stake, region, TEE kinds, a VRF public
/// key, a node signing key, an endpoint and, optionally, its operator. A node is identified by its account address.
/// Any change that affects eligibility (stake, keys, region, TEE kinds, roles, operator, status) records
/// `changedBlock`; the Tasks contract treats a node as eligible for a task only if
/// `changedBlock < task.createdBlock`, so stake and VRF keys are frozen before a seed is known.
contract NodeRegistry {
    uint8 internal constant ROLE_EXECUTOR = 1;
    uint8 internal constant ROLE_VERIFIER = 2;
    uint8 internal constant STATUS_NONE = 0;
    uint8 internal constant STATUS_ACTIVE = 1;
    uint8 internal constant STATUS_INACTIVE = 2;
    uint8 internal constant STATUS_JAILED = 3;
    uint16 internal constant TEE_KIND_MASK = 0x1f; // sim, tpm2, tdx, sev-snp, sgx

    struct NodeParams {
        uint8 roles; // bit 0 executor, bit 1 verifier
        bytes2 region; // ISO 3166-1 alpha-2, upper case ASCII
        uint16 teeKinds; // bit 0 sim, 1 tpm2, 2 tdx, 3 sev-snp, 4 sgx
        bytes32 vrfPublicKey; // RFC 9381 ECVRF-EDWARDS25519 public key
        bytes32 signingKey; // Ed25519 node signing key
        string endpoint;
        address operator; // who runs the node (self-declared); zero: the node itself
    }

    struct Node {
        uint8 roles;
        uint8 status;
        uint16 teeKinds;
        bytes2 region;
        uint64 changedBlock;
        uint40 lastHeartbeat;
        uint40 jailedUntil;
        uint16 openAttempts; // attempts this node executes that have not ended (Tasks.lock/unlock)
        uint48 jailedTask; // the task whose penalty jailed the node last (0: never jailed)
        uint128 stake;
        uint128 unbonding;
        uint40 unbondingAt;
        address operator; // zero: the node is its own operator (packed with unbondingAt)
        bytes32 vrfPublicKey;
        bytes32 signingKey;
        string endpoint;
    }

    address public immutable tasks;
    uint256 public immutable minStake;
    uint256 public immutable unbondingDelay;
    uint256 public immutable heartbeatTtl;
    uint256 public immutable slashBps;
    uint256 public immutable jailDuration;

    mapping(address => Node) internal nodes;
    uint128 public totalExecutorStake;
    uint128 public totalVerifierStake;
    /// Sum of all slashed stake. It stays in this contract, which has no function that pays it
    /// out: it is burnt (protocol.md section 11.4), so no account gains from a slash.
    uint256 public burned;
    uint256 internal transient locked;

    event NodeRegistered(
        address indexed node,
        uint8 roles,
        bytes2 region,
        uint16 teeKinds,
        bytes32 vrfPublicKey,
        bytes32 signingKey,
        string endpoint,
        uint256 stake,
        address operator
    );
    event NodeUpdated(
        address indexed node,
        uint8 roles,
        bytes2 region,
        uint16 teeKinds,
        bytes32 vrfPublicKey,
        bytes32 signingKey,
        string endpoint,
        address operator
    );
    event EndpointUpdated(address indexed node, string endpoint);
    event StakeAdded(address indexed node, uint256 amount, uint256 stake);
    event UnbondRequested(address indexed node, uint256 amount, uint256 stake, uint256 releaseAt);
    event Unbonded(address indexed node, uint256 amount);
    event NodeStatusChanged(address indexed node, uint8 status);
    event Heartbeat(address indexed node, uint256 at);
    event NodeSlashed(address indexed node, uint256 indexed taskId, uint256 amount, uint256 jailedUntil);
    event NodeUnjailed(address indexed node);

    constructor(
        address tasks_,
        uint256 minStake_,
        uint256 unbondingDelay_,
        uint256 heartbeatTtl_,
        uint256 slashBps_,
        uint256 jailDuration_
    ) {
        if (tasks_ == address(0)) revert InvalidParameter("tasks");
        if (minStake_ == 0) revert InvalidParameter("minStake");
        if (heartbeatTtl_ == 0) revert InvalidParameter("heartbeatTtl");
        if (slashBps_ > 10_000) revert InvalidParameter("slashBps");
        tasks = tasks_;
        minStake = minStake_;
        unbondingDelay = unbondingDelay_;
        heartbeatTtl = heartbeatTtl_;
        slashBps = slashBps_;
        jailDuration = jailDuration_;
    }

    modifier nonReentrant() {
        if (locked != 0) revert Reentrancy();
        locked = 1;
        _;
        locked = 0;
    }

    // ------------------------------------------------------------------ registration

    /// Registers msg.sender as a node with msg.value as stake (>= minStake); status active.
    function register(NodeParams calldata p) external payable {
        Node storage n = nodes[msg.sender];
        if (n.status != STATUS_NONE) revert AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert InsufficientStake(minStake, msg.value);
        _checkParams(p);
        _apply(n, p);
        n.stake = uint128(msg.value);
        n.status = STATUS_ACTIVE;
        n.lastHeartbeat = uint40(block.timestamp);
        n.changedBlock = uint64(block.number);
        _addTotals(n, true);
        emit NodeRegistered(
            msg.sender, p.roles, p.region, p.teeKinds, p.vrfPublicKey, p.signingKey, p.endpoint, msg.value, p.operator
        );
        emit NodeStatusChanged(msg.sender, STATUS_ACTIVE);
    }

    /// Replaces roles, region, TEE kinds, the signing key, endpoint and operator. Eligibility for
    /// tasks created at or before this block is lost (changedBlock). The VRF key is fixed at
    /// registration (InvalidParameter("vrfPublicKey") for another one): fraud proofs read it as
    /// the key every recorded claim and vote was made with (protocol.md section 11.5).
    function update(NodeParams calldata p) external {
        Node storage n = _node(msg.sender);
        _checkParams(p);
        if (p.vrfPublicKey != n.vrfPublicKey) revert InvalidParameter("vrfPublicKey");
        bool counted = n.status == STATUS_ACTIVE;
        if (counted) _addTotals(n, false);
        _apply(n, p);
        if (counted) _addTotals(n, true);
        n.changedBlock = uint64(block.number);
        emit NodeUpdated(
            msg.sender, p.roles, p.region, p.teeKinds, p.vrfPublicKey, p.signingKey, p.endpoint, p.operator
        );
    }

    /// Changes only the endpoint URL; eligibility is unaffected.
    function setEndpoint(string calldata endpoint) external {
        Node storage n = _node(msg.sender);
        if (bytes(endpoint).length == 0 || bytes(endpoint).length > 256) revert InvalidParameter("endpoint");
        n.endpoint = endpoint;
        emit EndpointUpdated(msg.sender, endpoint);
    }

    /// Adds msg.value to the stake. Refused while the node executes an open attempt (the stake
    /// ranks its claim, protocol.md section 11.3).
    function addStake() external payable {
        Node storage n = _node(msg.sender);
        if (msg.value == 0) revert InvalidParameter("value");
        if (n.openAttempts != 0) revert StakeLocked(msg.sender, n.openAttempts);
        bool counted = n.status == STATUS_ACTIVE;
        if (counted) _addTotals(n, false);
        n.stake += uint128(msg.value);
        if (counted) _addTotals(n, true);
        n.changedBlock = uint64(block.number);
        emit StakeAdded(msg.sender, msg.value, n.stake);
    }

    /// Moves `amount` of stake to unbonding; it can be withdrawn after unbondingDelay and can
    /// still be slashed until then. The remaining stake must be 0 or >= minStake; at 0 the
    /// node becomes inactive. A new request adds to the pending amount and restarts the delay.
    /// Refused while the node executes an open attempt (its stake backs the attempt's penalty).
    function requestUnbond(uint128 amount) external {
        Node storage n = _node(msg.sender);
        if (amount == 0 || amount > n.stake) revert InvalidParameter("amount");
        if (n.openAttempts != 0) revert StakeLocked(msg.sender, n.openAttempts);
        uint128 rest = n.stake - amount;
        if (rest != 0 && rest < minStake) revert InsufficientStake(minStake, rest);
        bool counted = n.status == STATUS_ACTIVE;
        if (counted) _addTotals(n, false);
        n.stake = rest;
        n.unbonding += amount;
        n.unbondingAt = uint40(block.timestamp + unbondingDelay);
        if (rest == 0 && n.status == STATUS_ACTIVE) {
            n.status = STATUS_INACTIVE;
            emit NodeStatusChanged(msg.sender, STATUS_INACTIVE);
        } else if (counted) {
            _addTotals(n, true);
        }
        n.changedBlock = uint64(block.number);
        emit UnbondRequested(msg.sender, amount, rest, n.unbondingAt);
    }

    /// Pays out unbonded stake once the delay has passed and the node executes no open attempt
    /// (unbonding stake stays slashable until withdrawn).
    function withdrawUnbonded() external nonReentrant {
        Node storage n = _node(msg.sender);
        uint256 amount = n.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (n.openAttempts != 0) revert StakeLocked(msg.sender, n.openAttempts);
        if (block.timestamp < n.unbondingAt) revert TooEarly(n.unbondingAt, block.timestamp);
        n.unbonding = 0;
        emit Unbonded(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// Active <-> inactive; a jailed node may reactivate after jailedUntil. Activation needs
    /// stake >= minStake.
    function setActive(bool active) external {
        Node storage n = _node(msg.sender);
        if (active) {
            if (n.status == STATUS_ACTIVE) return;
            if (n.status == STATUS_JAILED && block.timestamp < n.jailedUntil) {
                revert TooEarly(n.jailedUntil, block.timestamp);
            }
            if (n.stake < minStake) revert InsufficientStake(minStake, n.stake);
            n.status = STATUS_ACTIVE;
            n.lastHeartbeat = uint40(block.timestamp);
            _addTotals(n, true);
        } else {
            if (n.status != STATUS_ACTIVE) return;
            _addTotals(n, false);
            n.status = STATUS_INACTIVE;
        }
        n.changedBlock = uint64(block.number);
        emit NodeStatusChanged(msg.sender, n.status);
    }

    /// A jailed node returns once its jail has ended: status active again (needs stake >=
    /// minStake: add stake first if a slash took it below). Same as setActive(true), but
    /// refuses a node that is not jailed (NotJailed), so a caller learns why nothing changed.
    function unjail() external {
        Node storage n = _node(msg.sender);
        if (n.status != STATUS_JAILED) revert NotJailed(msg.sender);
        if (block.timestamp < n.jailedUntil) revert TooEarly(n.jailedUntil, block.timestamp);
        if (n.stake < minStake) revert InsufficientStake(minStake, n.stake);
        n.status = STATUS_ACTIVE;
        n.lastHeartbeat = uint40(block.timestamp);
        _addTotals(n, true);
        n.changedBlock = uint64(block.number);
        emit NodeUnjailed(msg.sender);
        emit NodeStatusChanged(msg.sender, STATUS_ACTIVE);
    }

    function heartbeat() external {
        Node storage n = _node(msg.sender);
        n.lastHeartbeat = uint40(block.timestamp);
        emit Heartbeat(msg.sender, block.timestamp);
    }

    /// Anyone may mark an active node whose last heartbeat is older than heartbeatTtl inactive.
    function markStale(address node) external {
        Node storage n = _node(node);
        if (n.status != STATUS_ACTIVE) revert InvalidParameter("node");
        uint256 at = uint256(n.lastHeartbeat) + heartbeatTtl;
        if (block.timestamp <= at) revert TooEarly(at + 1, block.timestamp);
        _addTotals(n, false);
        n.status = STATUS_INACTIVE;
        n.changedBlock = uint64(block.number);
        emit NodeStatusChanged(node, STATUS_INACTIVE);
    }

    // ------------------------------------------------------------------ penalties (Tasks only)

    /// Slashes slashBps of the node's stake plus unbonding stake, jails it for jailDuration
    /// (jailedTask = taskId) and burns the amount: it stays in this contract, counted in
    /// `burned`, and nothing can pay it out. Returns the amount.
    function slash(address node, uint256 taskId) external returns (uint256 amount) {
        if (msg.sender != tasks) revert OnlyTasks(msg.sender);
        Node storage n = nodes[node];
        if (n.status == STATUS_NONE) return 0;
        if (n.status == STATUS_ACTIVE) _addTotals(n, false);
        uint256 fromStake = (uint256(n.stake) * slashBps) / 10_000;
        uint256 fromUnbonding = (uint256(n.unbonding) * slashBps) / 10_000;
        n.stake -= uint128(fromStake);
        n.unbonding -= uint128(fromUnbonding);
        amount = fromStake + fromUnbonding;
        burned += amount;
        n.status = STATUS_JAILED;
        n.jailedUntil = uint40(block.timestamp + jailDuration);
        n.jailedTask = uint48(taskId);
        n.changedBlock = uint64(block.number);
        emit NodeSlashed(node, taskId, amount, n.jailedUntil);
        emit NodeStatusChanged(node, STATUS_JAILED);
    }

    /// Tasks only: `node` now executes one more open attempt (its best claim stands); its stake
    /// can neither be added to, unbonded nor withdrawn until every such attempt has ended.
    function lock(address node) external {
        if (msg.sender != tasks) revert OnlyTasks(msg.sender);
        nodes[node].openAttempts += 1;
    }

    /// Tasks only: an attempt `node` executed (or led while claiming) has ended or passed to
    /// another claimant.
    function unlock(address node) external {
        if (msg.sender != tasks) revert OnlyTasks(msg.sender);
        nodes[node].openAttempts -= 1;
    }

    // ------------------------------------------------------------------ readers

    function getNode(address node) external view returns (Node memory) {
        return nodes[node];
    }

    /// The eligibility fields the Tasks contract reads for a claim or a vote, with the stake a
    /// fraud proof needs (protocol.md section 11.5): one call, two slots.
    function nodeCore(address node)
        external
        view
        returns (uint8 roles, uint8 status, uint16 teeKinds, bytes2 region, uint64 changedBlock, uint128 stake)
    {
        Node storage n = nodes[node];
        return (n.roles, n.status, n.teeKinds, n.region, n.changedBlock, n.stake);
    }

    /// The node's VRF public key, fixed at registration (zero: not registered).
    function vrfKeyOf(address node) external view returns (bytes32) {
        return nodes[node].vrfPublicKey;
    }

    /// The node's operator: the declared one, or the node itself when none was declared.
    function operatorOf(address node) public view returns (address) {
        address o = nodes[node].operator;
        return o == address(0) ? node : o;
    }

    /// True when two nodes declare the same operator (Tasks.vote: a verifier never judges an
    /// executor of its own operator). Two distinct nodes without a declaration never share one.
    function sameOperator(address a, address b) external view returns (bool) {
        return operatorOf(a) == operatorOf(b);
    }

    /// A node's current stake, wei (sortition input for relying parties, section 4).
    function stakeOf(address node) external view returns (uint256) {
        return nodes[node].stake;
    }

    function totals() external view returns (uint256 executorStake, uint256 verifierStake) {
        return (totalExecutorStake, totalVerifierStake);
    }

    // ------------------------------------------------------------------ internals

    function _node(address node) internal view returns (Node storage n) {
        n = nodes[node];
        if (n.status == STATUS_NONE) revert UnknownNode(node);
    }

    function _checkParams(NodeParams calldata p) internal pure {
        if (p.roles == 0 || p.roles > 3) revert InvalidParameter("roles");
        if (!_isRegion(p.region)) revert InvalidParameter("region");
        if (p.teeKinds == 0 || p.teeKinds & ~TEE_KIND_MASK != 0) revert InvalidParameter("teeKinds");
        if (p.vrfPublicKey == bytes32(0)) revert InvalidParameter("vrfPublicKey");
        if (p.signingKey == bytes32(0)) revert InvalidParameter("signingKey");
        if (bytes(p.endpoint).length == 0 || bytes(p.endpoint).length > 256) revert InvalidParameter("endpoint");
    }

    function _isRegion(bytes2 r) internal pure returns (bool) {
        return r[0] >= 0x41 && r[0] <= 0x5a && r[1] >= 0x41 && r[1] <= 0x5a;
    }

    function _apply(Node storage n, NodeParams calldata p) internal {
        n.roles = p.roles;
        n.region = p.region;
        n.teeKinds = p.teeKinds;
        n.vrfPublicKey = p.vrfPublicKey;
        n.signingKey = p.signingKey;
        n.endpoint = p.endpoint;
        n.operator = p.operator == msg.sender ? address(0) : p.operator;
    }

    function _addTotals(Node storage n, bool add) internal {
        uint128 s = n.stake;
        if (n.roles & ROLE_EXECUTOR != 0) {
            totalExecutorStake = add ? totalExecutorStake + s : totalExecutorStake - s;
        }
        if (n.roles & ROLE_VERIFIER != 0) {
            totalVerifierStake = add ? totalVerifierStake + s : totalVerifierStake - s;
        }
    }
}
