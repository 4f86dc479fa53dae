// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ecvrf} from "./Ecvrf.sol";
import {SeatProof} from "./SeatProof.sol";

/// @title The checks of Ferry's fraud proofs (docs/protocol.md section 11.5)
/// @notice Stateless; Tasks calls it from challengeVote and challengeClaim (it lives in its own
/// contract to keep Tasks under the code-size limit). Neither function reverts on any input.
contract FraudVerifier {
    /// RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI (section 3.1): (true, 64-byte beta) iff `proof`
    /// verifies under `publicKey` for `alpha`, else (false, empty).
    function verify(bytes32 publicKey, bytes calldata alpha, bytes calldata proof)
        external
        view
        returns (bool valid, bytes memory beta)
    {
        return Ecvrf.verify(publicKey, alpha, proof);
    }

    /// Section 4.1: true iff `seats` are provably more than sortition gives a voter whose VRF
    /// output starts with `x`, holding `w` of `totalW` stake units, for committee size `tau`.
    function tooManySeats(uint64 x, uint256 w, uint256 totalW, uint256 tau, uint256 seats)
        external
        pure
        returns (bool)
    {
        return SeatProof.tooManySeats(x, w, totalW, tau, seats);
    }
}
