// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Edwards25519 as Ed} from "./Edwards25519.sol";
import {Sha512} from "./Sha512.sol";

/// @title RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI verification (suite_string 0x03)
/// @notice ECVRF_verify with validate_key = TRUE and the strict RFC 8032 point decoding of
/// docs/protocol.md section 3: the same accept/refuse decision and the same beta as Ferry's
/// TypeScript `vrfVerify` for every input. Every failure is a `false`, never a revert.
library Ecvrf {
    /// (true, beta) iff `proof` is a valid proof of `alpha` under `publicKey`; else (false, "").
    function verify(bytes32 publicKey, bytes calldata alpha, bytes calldata proof)
        internal
        view
        returns (bool, bytes memory)
    {
        if (proof.length != 80) return (false, "");
        // Key: canonical, on the curve, 8*Y != identity.
        (bool ok, uint256 yx, uint256 yy) = Ed.decode(publicKey);
        if (!ok) return (false, "");
        {
            (bool ok8, uint256 x8, uint256 y8) = Ed.mul8(yx, yy);
            if (!ok8 || (x8 == 0 && y8 == 1)) return (false, "");
        }
        // Proof: Gamma (canonical, on the curve) || c (16 bytes LE) || s (32 bytes LE, < q).
        bytes32 gammaEnc = bytes32(proof[0:32]);
        uint256 gx;
        uint256 gy;
        (ok, gx, gy) = Ed.decode(gammaEnc);
        if (!ok) return (false, "");
        uint256 s = Ed.rev(uint256(bytes32(proof[48:80])));
        if (s >= Ed.Q) return (false, "");
        uint256 c = Ed.rev(uint256(bytes32(proof[32:48])));
        // H = encode_to_curve(salt = publicKey, alpha)
        uint256 hx;
        uint256 hy;
        (ok, hx, hy) = encodeToCurve(publicKey, alpha);
        if (!ok) return (false, "");
        // U = s*B - c*Y, V = s*H - c*Gamma
        uint256 ux;
        uint256 uy;
        (ok, ux, uy) = Ed.mulAdd(Ed.BX, Ed.BY, s, (Ed.P - yx) % Ed.P, yy, c);
        if (!ok) return (false, "");
        uint256 vx;
        uint256 vy;
        (ok, vx, vy) = Ed.mulAdd(hx, hy, s, (Ed.P - gx) % Ed.P, gy, c);
        if (!ok) return (false, "");
        (bytes32 h0,) = Sha512.hash(
            abi.encodePacked(
                bytes2(0x0302), publicKey, Ed.encode(hx, hy), gammaEnc, Ed.encode(ux, uy), Ed.encode(vx, vy), bytes1(0)
            )
        );
        if (bytes16(h0) != bytes16(proof[32:48])) return (false, "");
        return proofToHash(gx, gy);
    }

    /// beta = SHA-512(0x03 || 0x03 || point(8*Gamma) || 0x00).
    function proofToHash(uint256 gx, uint256 gy) internal view returns (bool, bytes memory) {
        (bool ok, uint256 x8, uint256 y8) = Ed.mul8(gx, gy);
        if (!ok) return (false, "");
        (bytes32 b0, bytes32 b1) = Sha512.hash(abi.encodePacked(bytes2(0x0303), Ed.encode(x8, y8), bytes1(0)));
        return (true, abi.encodePacked(b0, b1));
    }

    /// ECVRF_encode_to_curve_try_and_increment (RFC 9381 section 5.4.1.1): the first
    /// ctr in 0..255 whose SHA-512(0x03 || 0x01 || salt || alpha || ctr || 0x00) starts with a
    /// valid (strictly decoded) point gives H = 8 * that point.
    function encodeToCurve(bytes32 salt, bytes calldata alpha) internal view returns (bool, uint256, uint256) {
        bytes memory m = abi.encodePacked(bytes2(0x0301), salt, alpha, bytes2(0));
        uint256 len = alpha.length;
        for (uint256 ctr = 0; ctr < 256; ++ctr) {
            assembly ("memory-safe") {
                mstore8(add(add(m, 66), len), ctr)
            }
            (bytes32 h0,) = Sha512.hash(m);
            (bool ok, uint256 x, uint256 y) = Ed.decode(h0);
            if (ok) return Ed.mul8(x, y);
        }
        return (false, 0, 0);
    }
}
