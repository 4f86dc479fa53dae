// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title SHA-512 (FIPS 180-4) for the EVM
/// @notice 64-bit words live in uint256 stack slots. Rotations use the doubled word
/// `x | x << 64` shifted right; the bits above bit 63 this leaves are garbage that only ever
/// flows into additions and is cut by one mask per new word (the low 64 bits of a sum depend
/// only on the low 64 bits of its terms). Used by VrfVerifier (RFC 9381 suite 0x03).
library Sha512 {
    /// The 80 round constants K[0..79], 8 bytes each, big-endian.
    bytes internal constant K =
        hex"428a2f98d728ae227137449123ef65cdb5c0fbcfec4d3b2fe9b5dba58189dbbc3956c25bf348b53859f111f1b605d019923f82a4af194f9bab1c5ed5da6d8118d807aa98a303024212835b0145706fbe243185be4ee4b28c550c7dc3d5ffb4e272be5d74f27b896f80deb1fe3b1696b19bdc06a725c71235c19bf174cf692694e49b69c19ef14ad2efbe4786384f25e30fc19dc68b8cd5b5240ca1cc77ac9c652de92c6f592b02754a7484aa6ea6e4835cb0a9dcbd41fbd476f988da831153b5983e5152ee66dfaba831c66d2db43210b00327c898fb213fbf597fc7beef0ee4c6e00bf33da88fc2d5a79147930aa72506ca6351e003826f142929670a0e6e7027b70a8546d22ffc2e1b21385c26c9264d2c6dfc5ac42aed53380d139d95b3df650a73548baf63de766a0abb3c77b2a881c2c92e47edaee692722c851482353ba2bfe8a14cf10364a81a664bbc423001c24b8b70d0f89791c76c51a30654be30d192e819d6ef5218d69906245565a910f40e35855771202a106aa07032bbd1b819a4c116b8d2d0c81e376c085141ab532748774cdf8eeb9934b0bcb5e19b48a8391c0cb3c5c95a634ed8aa4ae3418acb5b9cca4f7763e373682e6ff3d6b2b8a3748f82ee5defb2fc78a5636f43172f6084c87814a1f0ab728cc702081a6439ec90befffa23631e28a4506cebde82bde9bef9a3f7b2c67915c67178f2e372532bca273eceea26619cd186b8c721c0c207eada7dd6cde0eb1ef57d4f7fee6ed17806f067aa72176fba0a637dc5a2c898a6113f9804bef90dae1b710b35131c471b28db77f523047d8432caab7b40c724933c9ebe0a15c9bebc431d67c49c100d4c4cc5d4becb3e42b6597f299cfc657e2a5fcb6fab3ad6faec6c44198c4a475817";

    /// SHA-512 of `data`; the 64-byte digest as two big-endian words (bytes 0..31, 32..63).
    function hash(bytes memory data) internal pure returns (bytes32 hi, bytes32 lo) {
        bytes memory k = K;
        assembly ("memory-safe") {
            let M := 0xffffffffffffffff
            let len := mload(data)
            // Padded message: data || 0x80 || zeros || u128(bit length), a multiple of 128 bytes.
            let total := mul(div(add(len, 144), 128), 128)
            let buf := mload(0x40)
            let w := add(buf, total) // message schedule, 80 words
            let st := add(w, 2560) // state H0..H7, 8 words
            mstore(0x40, add(st, 256))
            for { let i := 0 } lt(i, total) { i := add(i, 32) } { mstore(add(buf, i), 0) }
            mstore(add(buf, sub(total, 32)), shl(3, len))
            mcopy(buf, add(data, 32), len)
            mstore8(add(buf, len), 0x80)

            mstore(st, 0x6a09e667f3bcc908)
            mstore(add(st, 32), 0xbb67ae8584caa73b)
            mstore(add(st, 64), 0x3c6ef372fe94f82b)
            mstore(add(st, 96), 0xa54ff53a5f1d36f1)
            mstore(add(st, 128), 0x510e527fade682d1)
            mstore(add(st, 160), 0x9b05688c2b3e6c1f)
            mstore(add(st, 192), 0x1f83d9abfb41bd6b)
            mstore(add(st, 224), 0x5be0cd19137e2179)

            let kp := add(k, 32)
            let end := add(buf, total)
            for { let blk := buf } lt(blk, end) { blk := add(blk, 128) } {
                // W[t] + K[t] is what the rounds use; the schedule keeps W, the rounds add K.
                for { let t := 0 } lt(t, 16) { t := add(t, 1) } {
                    mstore(add(w, shl(5, t)), shr(192, mload(add(blk, shl(3, t)))))
                }
                for { let p := add(w, 512) } lt(p, add(w, 2560)) { p := add(p, 32) } {
                    let x := mload(sub(p, 480)) // W[t-15]
                    let xx := or(x, shl(64, x))
                    let s0 := xor(xor(shr(1, xx), shr(8, xx)), shr(7, x))
                    x := mload(sub(p, 64)) // W[t-2]
                    xx := or(x, shl(64, x))
                    let s1 := xor(xor(shr(19, xx), shr(61, xx)), shr(6, x))
                    mstore(p, and(add(add(s0, s1), add(mload(sub(p, 224)), mload(sub(p, 512)))), M))
                }
                let a := mload(st)
                let b := mload(add(st, 32))
                let c := mload(add(st, 64))
                let d := mload(add(st, 96))
                let e := mload(add(st, 128))
                let f := mload(add(st, 160))
                let g := mload(add(st, 192))
                let h := mload(add(st, 224))
                for { let t := 0 } lt(t, 80) { t := add(t, 1) } {
                    let ee := or(e, shl(64, e))
                    let t1 :=
                        add(
                            add(h, xor(xor(shr(14, ee), shr(18, ee)), shr(41, ee))),
                            add(
                                xor(g, and(e, xor(f, g))),
                                add(shr(192, mload(add(kp, shl(3, t)))), mload(add(w, shl(5, t))))
                            )
                        )
                    let aa := or(a, shl(64, a))
                    let t2 := add(xor(xor(shr(28, aa), shr(34, aa)), shr(39, aa)), or(and(a, b), and(c, or(a, b))))
                    h := g
                    g := f
                    f := e
                    e := and(add(d, t1), M)
                    d := c
                    c := b
                    b := a
                    a := and(add(t1, t2), M)
                }
                // A store the optimizer cannot place away from the state: it must reload H0..H7
                // here instead of keeping 8 more copies live across the rounds (which would
                // spill them to memory).
                mstore(0, 0)
                mstore(st, and(add(mload(st), a), M))
                mstore(add(st, 32), and(add(mload(add(st, 32)), b), M))
                mstore(add(st, 64), and(add(mload(add(st, 64)), c), M))
                mstore(add(st, 96), and(add(mload(add(st, 96)), d), M))
                mstore(add(st, 128), and(add(mload(add(st, 128)), e), M))
                mstore(add(st, 160), and(add(mload(add(st, 160)), f), M))
                mstore(add(st, 192), and(add(mload(add(st, 192)), g), M))
                mstore(add(st, 224), and(add(mload(add(st, 224)), h), M))
            }
            hi :=
                or(
                    or(shl(192, mload(st)), shl(128, mload(add(st, 32)))),
                    or(shl(64, mload(add(st, 64))), mload(add(st, 96)))
                )
            lo :=
                or(
                    or(shl(192, mload(add(st, 128))), shl(128, mload(add(st, 160)))),
                    or(shl(64, mload(add(st, 192))), mload(add(st, 224)))
                )
        }
    }
}
