// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Ecvrf} from "./Ecvrf.sol";

/// @title On-chain verifier of RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI proofs
/// @notice Stateless; anyone may call it to check a VRF claim. `verify` returns (true, beta)
/// exactly when Ferry's TypeScript `vrfVerify` accepts (docs/protocol.md section 3.1), and
/// (false, empty) for every other input: a wrong proof length, a non-canonical or off-curve
/// Gamma or key, s >= q, a small-order key, or a proof that does not verify. It never reverts
/// (short of running out of gas).
contract VrfVerifier {
    /// @param publicKey the 32-byte VRF public key (RFC 8032 encoding)
    /// @param alpha the VRF input
    /// @param proof pi = Gamma (32) || c (16) || s (32)
    /// @return valid whether the proof verifies
    /// @return beta the 64-byte VRF output when valid, else empty
    function verify(bytes32 publicKey, bytes calldata alpha, bytes calldata proof)
        external
        view
        returns (bool valid, bytes memory beta)
    {
        return Ecvrf.verify(publicKey, alpha, proof);
    }
}
