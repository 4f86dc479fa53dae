// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ecvrf} from "../Ecvrf.sol";
import {Edwards25519 as Ed} from "../Edwards25519.sol";
import {Sha512} from "../Sha512.sol";

/// @title Test-only: gasleft() deltas of the VRF verifier and its building blocks
/// @notice For the tests and bench/evm-vrf.bench.ts; each function also returns its result so
/// the caller can check the measured work was the real one.
contract VrfGasHarness {
    function verifyGas(bytes32 publicKey, bytes calldata alpha, bytes calldata proof)
        external
        view
        returns (uint256 gasUsed, bool valid, bytes memory beta)
    {
        uint256 g = gasleft();
        (valid, beta) = Ecvrf.verify(publicKey, alpha, proof);
        gasUsed = g - gasleft();
    }

    function sha512Gas(bytes calldata data) external view returns (uint256 gasUsed, bytes32 hi, bytes32 lo) {
        bytes memory m = data;
        uint256 g = gasleft();
        (hi, lo) = Sha512.hash(m);
        gasUsed = g - gasleft();
    }

    /// a*P + b*Q for encoded points P, Q; returns the encoding of the sum.
    function mulAddGas(bytes32 pEnc, uint256 a, bytes32 qEnc, uint256 b)
        external
        view
        returns (uint256 gasUsed, bool ok, bytes32 sum)
    {
        (bool okP, uint256 px, uint256 py) = Ed.decode(pEnc);
        (bool okQ, uint256 qx, uint256 qy) = Ed.decode(qEnc);
        if (!okP || !okQ) return (0, false, 0);
        uint256 g = gasleft();
        uint256 x;
        uint256 y;
        (ok, x, y) = Ed.mulAdd(px, py, a, qx, qy, b);
        gasUsed = g - gasleft();
        sum = Ed.encode(x, y);
    }
}
