// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import "./Errors.sol";

/// @title Ferry assets: datasets and apps with their policies
/// @notice Datasets and apps are registered by their owners; ids are sequential from 1 and
/// separate per kind. Prices are fixed at registration (register a new asset to change one).
/// A revoked asset is never used again. Use accounting (`useForTask`) is done by Tasks only.
contract Assets {
    uint8 internal constant KIND_DATASET = 1;
    uint8 internal constant KIND_APP = 2;
    uint16 internal constant TEE_KIND_MASK = 0x1f;
    uint256 internal constant MAX_REGIONS = 64;
    /// Largest appraisal policy document accepted (tagged canonical CBOR, protocol.md section 9).
    uint256 internal constant MAX_POLICY_DOCUMENT = 16384;

    struct DatasetPolicy {
        bool anyApp; // true: every app measurement is allowed
        bytes32[] allowedApps; // app measurements (SHA-256 of the WASM module)
        bytes2[] allowedRegions; // ISO 3166-1 alpha-2; empty: any region
        uint16 teeKinds; // bitmask of allowed TEE kinds, non-zero
        uint16 tau; // expected committee size
        uint16 threshold; // pass seats needed, 1 <= threshold <= tau
        uint32 maxUses; // 0: unlimited
        uint40 expiresAt; // unix seconds; 0: never
        address[] requesters; // empty: anyone may request
        bytes32 appraisalPolicyHash; // SHA-256 of the appraisal policy (protocol.md section 9)
    }

    struct Dataset {
        address owner;
        uint40 expiresAt;
        uint16 tau;
        uint16 threshold;
        bool revoked;
        bool anyApp;
        bool restrictRequesters;
        uint32 maxUses;
        uint32 uses;
        uint16 teeKinds;
        uint32 policyEpoch;
        uint128 price;
        bytes32 ciphertextHash;
        bytes32 appraisalPolicyHash;
        bytes2[] allowedRegions;
        string endpoint;
    }

    struct App {
        address owner;
        bool revoked;
        uint88 price;
        uint16 teeKinds; // bitmask of TEE kinds the app owner allows, non-zero
        uint32 policyEpoch; // 0 at registration, +1 per updateAppPolicy
        bytes32 measurement;
        bytes32 ciphertextHash;
        bytes32 appraisalPolicyHash; // SHA-256 of the app owner's appraisal policy (section 9)
        string endpoint;
    }

    /// What Tasks needs from a successful `useForTask`.
    struct Use {
        address appOwner;
        uint256 appPrice;
        uint256 datasetsPrice;
        uint16 teeKinds;
        uint16 tau;
        uint16 threshold;
    }

    address public immutable tasks;
    uint256 public datasetCount;
    uint256 public appCount;
    mapping(uint256 => Dataset) internal datasets;
    mapping(uint256 => App) internal apps;
    /// keccak256(datasetId, policyEpoch, measurement) => allowed
    mapping(bytes32 => bool) internal appAllowed;
    /// keccak256(datasetId, policyEpoch, requester) => allowed
    mapping(bytes32 => bool) internal requesterAllowed;

    event DatasetRegistered(
        uint256 indexed datasetId,
        address indexed owner,
        bytes32 ciphertextHash,
        string endpoint,
        uint256 price,
        DatasetPolicy policy,
        bytes appraisalPolicy
    );
    event DatasetUpdated(uint256 indexed datasetId, bytes32 ciphertextHash, string endpoint);
    event DatasetPolicyUpdated(
        uint256 indexed datasetId, uint32 policyEpoch, DatasetPolicy policy, bytes appraisalPolicy
    );
    event DatasetRevoked(uint256 indexed datasetId);
    event DatasetUsed(uint256 indexed datasetId, uint256 indexed taskId, uint32 uses);
    event DatasetUseReturned(uint256 indexed datasetId, uint256 indexed taskId, uint32 uses);
    event AppRegistered(
        uint256 indexed appId,
        address indexed owner,
        bytes32 measurement,
        bytes32 ciphertextHash,
        string endpoint,
        uint256 price,
        uint16 teeKinds,
        bytes32 appraisalPolicyHash,
        bytes appraisalPolicy
    );
    event AppUpdated(uint256 indexed appId, bytes32 ciphertextHash, string endpoint);
    event AppPolicyUpdated(
        uint256 indexed appId, uint32 policyEpoch, uint16 teeKinds, bytes32 appraisalPolicyHash, bytes appraisalPolicy
    );
    event AppRevoked(uint256 indexed appId);

    constructor(address tasks_) {
        if (tasks_ == address(0)) revert InvalidParameter("tasks");
        tasks = tasks_;
    }

    // ------------------------------------------------------------------ datasets

    /// `appraisalPolicy` is the appraisal policy document (tagged canonical CBOR, at most
    /// MAX_POLICY_DOCUMENT bytes) whose SHA-256 is `policy.appraisalPolicyHash`; it is not stored,
    /// only emitted, so that every verifier can read it from the event.
    function registerDataset(
        bytes32 ciphertextHash,
        string calldata endpoint,
        uint128 price,
        DatasetPolicy calldata policy,
        bytes calldata appraisalPolicy
    ) external returns (uint256 datasetId) {
        if (ciphertextHash == bytes32(0)) revert InvalidParameter("ciphertextHash");
        _checkEndpoint(endpoint);
        _checkPolicyDocument(policy.appraisalPolicyHash, appraisalPolicy);
        datasetId = ++datasetCount;
        Dataset storage d = datasets[datasetId];
        d.owner = msg.sender;
        d.price = price;
        d.ciphertextHash = ciphertextHash;
        d.endpoint = endpoint;
        _setPolicy(datasetId, d, policy);
        emit DatasetRegistered(datasetId, msg.sender, ciphertextHash, endpoint, price, policy, appraisalPolicy);
    }

    /// Replaces the ciphertext hash and endpoint (owner only; not after revocation).
    function updateDataset(uint256 datasetId, bytes32 ciphertextHash, string calldata endpoint) external {
        Dataset storage d = _ownedDataset(datasetId);
        if (ciphertextHash == bytes32(0)) revert InvalidParameter("ciphertextHash");
        _checkEndpoint(endpoint);
        d.ciphertextHash = ciphertextHash;
        d.endpoint = endpoint;
        emit DatasetUpdated(datasetId, ciphertextHash, endpoint);
    }

    /// Replaces the whole policy (owner only). Uses already counted are kept. Tasks created
    /// before keep their committee parameters; claims are checked against the current regions.
    /// `appraisalPolicy`: the appraisal policy document, as in registerDataset.
    function updateDatasetPolicy(uint256 datasetId, DatasetPolicy calldata policy, bytes calldata appraisalPolicy)
        external
    {
        Dataset storage d = _ownedDataset(datasetId);
        _checkPolicyDocument(policy.appraisalPolicyHash, appraisalPolicy);
        uint32 epoch = d.policyEpoch + 1;
        d.policyEpoch = epoch;
        _setPolicy(datasetId, d, policy);
        emit DatasetPolicyUpdated(datasetId, epoch, policy, appraisalPolicy);
    }

    function revokeDataset(uint256 datasetId) external {
        Dataset storage d = _ownedDataset(datasetId);
        d.revoked = true;
        emit DatasetRevoked(datasetId);
    }

    // ------------------------------------------------------------------ apps

    /// `teeKinds`: the TEE kinds the app owner allows (non-zero bitmask, as a dataset's);
    /// `appraisalPolicy`: the app owner's appraisal policy document whose SHA-256 is
    /// `appraisalPolicyHash`, checked and emitted (not stored) as a dataset's.
    function registerApp(
        bytes32 measurement,
        bytes32 ciphertextHash,
        string calldata endpoint,
        uint88 price,
        uint16 teeKinds,
        bytes32 appraisalPolicyHash,
        bytes calldata appraisalPolicy
    ) external returns (uint256 appId) {
        if (measurement == bytes32(0)) revert InvalidParameter("measurement");
        if (ciphertextHash == bytes32(0)) revert InvalidParameter("ciphertextHash");
        _checkEndpoint(endpoint);
        _checkTeeKinds(teeKinds);
        _checkPolicyDocument(appraisalPolicyHash, appraisalPolicy);
        appId = ++appCount;
        App storage a = apps[appId];
        a.owner = msg.sender;
        a.price = price;
        a.teeKinds = teeKinds;
        a.measurement = measurement;
        a.ciphertextHash = ciphertextHash;
        a.appraisalPolicyHash = appraisalPolicyHash;
        a.endpoint = endpoint;
        emit AppRegistered(
            appId, msg.sender, measurement, ciphertextHash, endpoint, price, teeKinds, appraisalPolicyHash, appraisalPolicy
        );
    }

    /// Replaces the app's TEE kinds and appraisal policy (owner only; not after revocation).
    /// Tasks created before keep the TEE kinds they were created with.
    function updateAppPolicy(
        uint256 appId,
        uint16 teeKinds,
        bytes32 appraisalPolicyHash,
        bytes calldata appraisalPolicy
    ) external {
        App storage a = _ownedApp(appId);
        _checkTeeKinds(teeKinds);
        _checkPolicyDocument(appraisalPolicyHash, appraisalPolicy);
        uint32 epoch = a.policyEpoch + 1;
        a.policyEpoch = epoch;
        a.teeKinds = teeKinds;
        a.appraisalPolicyHash = appraisalPolicyHash;
        emit AppPolicyUpdated(appId, epoch, teeKinds, appraisalPolicyHash, appraisalPolicy);
    }

    /// Replaces ciphertext hash and endpoint. The measurement is fixed: a new module is a new app.
    function updateApp(uint256 appId, bytes32 ciphertextHash, string calldata endpoint) external {
        App storage a = _ownedApp(appId);
        if (ciphertextHash == bytes32(0)) revert InvalidParameter("ciphertextHash");
        _checkEndpoint(endpoint);
        a.ciphertextHash = ciphertextHash;
        a.endpoint = endpoint;
        emit AppUpdated(appId, ciphertextHash, endpoint);
    }

    function revokeApp(uint256 appId) external {
        App storage a = _ownedApp(appId);
        a.revoked = true;
        emit AppRevoked(appId);
    }

    // ------------------------------------------------------------------ Tasks only

    /// Checks every policy for a new task and counts one use of each dataset. Reverts with
    /// the first violation: unknown or revoked asset, expired dataset, uses exhausted,
    /// requester or app measurement not allowed, no TEE kind allowed by the app and every dataset.
    /// The task's TEE kinds are the app's AND every dataset's. Its tau is the largest of its
    /// datasets' and its threshold the largest of ceil(threshold_i * tau / tau_i): every
    /// dataset's ratio threshold/tau is kept or raised (never above tau, as threshold_i <= tau_i).
    function useForTask(uint256 taskId, uint256 appId, uint256[] calldata datasetIds, address requester)
        external
        returns (Use memory u)
    {
        if (msg.sender != tasks) revert OnlyTasks(msg.sender);
        App storage a = apps[appId];
        if (a.owner == address(0)) revert UnknownApp(appId);
        if (a.revoked) revert AssetRevoked(KIND_APP, appId);
        bytes32 measurement = a.measurement;
        u.appOwner = a.owner;
        u.appPrice = a.price;
        u.teeKinds = a.teeKinds;
        uint256 n = datasetIds.length;
        for (uint256 i = 0; i < n; i++) {
            uint256 id = datasetIds[i];
            Dataset storage d = datasets[id];
            if (d.owner == address(0)) revert UnknownDataset(id);
            if (d.revoked) revert AssetRevoked(KIND_DATASET, id);
            if (d.expiresAt != 0 && block.timestamp >= d.expiresAt) revert AssetExpired(id, d.expiresAt);
            if (d.maxUses != 0 && d.uses >= d.maxUses) revert UsesExhausted(id, d.maxUses);
            uint32 epoch = d.policyEpoch;
            if (d.restrictRequesters && !requesterAllowed[keccak256(abi.encode(id, epoch, requester))]) {
                revert RequesterNotAllowed(id, requester);
            }
            if (!d.anyApp && !appAllowed[keccak256(abi.encode(id, epoch, measurement))]) {
                revert AppNotAllowed(id, measurement);
            }
            d.uses += 1;
            emit DatasetUsed(id, taskId, d.uses);
            u.datasetsPrice += d.price;
            u.teeKinds &= d.teeKinds;
            if (d.tau > u.tau) u.tau = d.tau;
        }
        if (u.teeKinds == 0) revert NoCommonTeeKind();
        uint256 tau = u.tau;
        for (uint256 i = 0; i < n; i++) {
            Dataset storage d = datasets[datasetIds[i]];
            uint256 di = d.tau;
            uint256 t = (uint256(d.threshold) * tau + di - 1) / di;
            if (t > tau) t = tau;
            if (t > u.threshold) u.threshold = uint16(t);
        }
    }

    /// Gives back one use of each dataset of a task that failed before any key was released.
    function returnUses(uint256 taskId, uint256[] calldata datasetIds) external {
        if (msg.sender != tasks) revert OnlyTasks(msg.sender);
        for (uint256 i = 0; i < datasetIds.length; i++) {
            Dataset storage d = datasets[datasetIds[i]];
            if (d.uses > 0) d.uses -= 1;
            emit DatasetUseReturned(datasetIds[i], taskId, d.uses);
        }
    }

    // ------------------------------------------------------------------ readers

    function getDataset(uint256 datasetId) external view returns (Dataset memory) {
        return datasets[datasetId];
    }

    function getApp(uint256 appId) external view returns (App memory) {
        return apps[appId];
    }

    function isAppAllowed(uint256 datasetId, bytes32 measurement) external view returns (bool) {
        Dataset storage d = datasets[datasetId];
        return d.anyApp || appAllowed[keccak256(abi.encode(datasetId, d.policyEpoch, measurement))];
    }

    function isRequesterAllowed(uint256 datasetId, address requester) external view returns (bool) {
        Dataset storage d = datasets[datasetId];
        return !d.restrictRequesters
            || requesterAllowed[keccak256(abi.encode(datasetId, d.policyEpoch, requester))];
    }

    /// True when every listed dataset allows `region` (an empty region list allows any).
    function regionAllowed(uint256[] calldata datasetIds, bytes2 region) external view returns (bool) {
        for (uint256 i = 0; i < datasetIds.length; i++) {
            bytes2[] storage rs = datasets[datasetIds[i]].allowedRegions;
            uint256 n = rs.length;
            if (n == 0) continue;
            bool found = false;
            for (uint256 j = 0; j < n; j++) {
                if (rs[j] == region) {
                    found = true;
                    break;
                }
            }
            if (!found) return false;
        }
        return true;
    }

    /// Owner and price of a dataset (settlement).
    function datasetPayee(uint256 datasetId) external view returns (address owner, uint256 price) {
        Dataset storage d = datasets[datasetId];
        return (d.owner, d.price);
    }

    function datasetOwner(uint256 datasetId) external view returns (address) {
        return datasets[datasetId].owner;
    }

    /// Owner and price of an app (settlement).
    function appPayee(uint256 appId) external view returns (address owner, uint256 price) {
        App storage a = apps[appId];
        return (a.owner, a.price);
    }

    function appOwner(uint256 appId) external view returns (address) {
        return apps[appId].owner;
    }

    // ------------------------------------------------------------------ internals

    function _ownedDataset(uint256 datasetId) internal view returns (Dataset storage d) {
        d = datasets[datasetId];
        if (d.owner == address(0)) revert UnknownDataset(datasetId);
        if (d.owner != msg.sender) revert NotOwner(msg.sender, d.owner);
        if (d.revoked) revert AssetRevoked(KIND_DATASET, datasetId);
    }

    function _ownedApp(uint256 appId) internal view returns (App storage a) {
        a = apps[appId];
        if (a.owner == address(0)) revert UnknownApp(appId);
        if (a.owner != msg.sender) revert NotOwner(msg.sender, a.owner);
        if (a.revoked) revert AssetRevoked(KIND_APP, appId);
    }

    function _checkEndpoint(string calldata endpoint) internal pure {
        if (bytes(endpoint).length == 0 || bytes(endpoint).length > 256) revert InvalidParameter("endpoint");
    }

    function _checkTeeKinds(uint16 teeKinds) internal pure {
        if (teeKinds == 0 || teeKinds & ~TEE_KIND_MASK != 0) revert InvalidParameter("teeKinds");
    }

    function _setPolicy(uint256 id, Dataset storage d, DatasetPolicy calldata p) internal {
        _checkTeeKinds(p.teeKinds);
        if (p.tau == 0) revert InvalidParameter("tau");
        if (p.threshold == 0 || p.threshold > p.tau) revert InvalidParameter("threshold");
        if (p.allowedRegions.length > MAX_REGIONS) revert InvalidParameter("allowedRegions");
        if (!p.anyApp && p.allowedApps.length == 0) revert InvalidParameter("allowedApps");
        if (p.expiresAt != 0 && p.expiresAt <= block.timestamp) revert InvalidParameter("expiresAt");
        for (uint256 i = 0; i < p.allowedRegions.length; i++) {
            bytes2 r = p.allowedRegions[i];
            if (!(r[0] >= 0x41 && r[0] <= 0x5a && r[1] >= 0x41 && r[1] <= 0x5a)) {
                revert InvalidParameter("allowedRegions");
            }
        }
        d.anyApp = p.anyApp;
        d.teeKinds = p.teeKinds;
        d.tau = p.tau;
        d.threshold = p.threshold;
        d.maxUses = p.maxUses;
        d.expiresAt = p.expiresAt;
        d.restrictRequesters = p.requesters.length != 0;
        d.appraisalPolicyHash = p.appraisalPolicyHash;
        d.allowedRegions = p.allowedRegions;
        uint32 epoch = d.policyEpoch;
        for (uint256 i = 0; i < p.allowedApps.length; i++) {
            appAllowed[keccak256(abi.encode(id, epoch, p.allowedApps[i]))] = true;
        }
        for (uint256 i = 0; i < p.requesters.length; i++) {
            requesterAllowed[keccak256(abi.encode(id, epoch, p.requesters[i]))] = true;
        }
    }

    function _checkPolicyDocument(bytes32 policyHash, bytes calldata document) internal view {
        if (document.length == 0 || document.length > MAX_POLICY_DOCUMENT) revert InvalidParameter("appraisalPolicy");
        if (sha256(document) != policyHash) revert InvalidParameter("appraisalPolicyHash");
    }
}
