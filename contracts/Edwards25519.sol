// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title edwards25519 arithmetic for the EVM (RFC 8032), variable time, public data only
/// @notice Field elements mod p = 2^255 - 19 use MULMOD/ADDMOD; inversion and square roots go
/// through the modexp precompile (0x05). Points are affine (x, y) at the interface and
/// extended (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z inside, with the complete a = -1
/// formulas of RFC 8032 section 5.1.4 (so no input, the identity or small-order points
/// included, needs a special case). Every function reports failure with `ok = false`; none
/// reverts. Used by VrfVerifier.
library Edwards25519 {
    uint256 internal constant P = 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed;
    /// Order of the base point (RFC 8032 "L", RFC 9381 "q").
    uint256 internal constant Q = 0x1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed;
    /// d = -121665/121666 mod p.
    uint256 internal constant D = 0x52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3;
    /// sqrt(-1) = 2^((p-1)/4) mod p.
    uint256 internal constant SQRT_M1 = 0x2b8324804fc1df0b2b4d00993dfbd7a72f431806ad2fe478c4ee1b274a0ea0b0;
    /// The base point B.
    uint256 internal constant BX = 0x216936d3cd6e53fec0a4e231fdd6dc5c692cc7609525a7b2c9562d608f25d51a;
    uint256 internal constant BY = 0x6666666666666666666666666666666666666666666666666666666666666658;

    /// Reverses the byte order of a word (little-endian encodings <-> integers).
    function rev(uint256 v) internal pure returns (uint256 r) {
        assembly ("memory-safe") {
            let m := 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff
            r := or(shr(8, and(v, not(m))), shl(8, and(v, m)))
            m := 0x0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff
            r := or(shr(16, and(r, not(m))), shl(16, and(r, m)))
            m := 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff
            r := or(shr(32, and(r, not(m))), shl(32, and(r, m)))
            m := 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff
            r := or(shr(64, and(r, not(m))), shl(64, and(r, m)))
            r := or(shr(128, r), shl(128, r))
        }
    }

    /// b^e mod p through the modexp precompile; ok = false if the call fails.
    function expmod(uint256 b, uint256 e) internal view returns (bool ok, uint256 r) {
        assembly ("memory-safe") {
            let f := mload(0x40)
            mstore(f, 32)
            mstore(add(f, 32), 32)
            mstore(add(f, 64), 32)
            mstore(add(f, 96), b)
            mstore(add(f, 128), e)
            mstore(add(f, 160), P)
            ok := staticcall(gas(), 0x05, f, 192, f, 32)
            r := mload(f)
        }
    }

    /// 1/a mod p (0 for a = 0).
    function inv(uint256 a) internal view returns (bool ok, uint256 r) {
        return expmod(a, P - 2);
    }

    /// The 32-byte RFC 8032 encoding of the affine point (x, y), as a bytes32 whose first
    /// byte is the encoding's first byte.
    function encode(uint256 x, uint256 y) internal pure returns (bytes32) {
        return bytes32(rev(y | ((x & 1) << 255)));
    }

    /// RFC 8032 section 5.1.3 decoding, strict: y >= p, "negative zero" (x = 0 with the sign
    /// bit set) and y values with no x on the curve give ok = false.
    function decode(bytes32 enc) internal view returns (bool ok, uint256 x, uint256 y) {
        uint256 v = rev(uint256(enc));
        uint256 sign = v >> 255;
        y = v & ((1 << 255) - 1);
        if (y >= P) return (false, 0, 0);
        uint256 yy = mulmod(y, y, P);
        uint256 u = addmod(yy, P - 1, P); // y^2 - 1
        uint256 w = addmod(mulmod(D, yy, P), 1, P); // d y^2 + 1
        // x = u w^3 (u w^7)^((p-5)/8)
        uint256 w3 = mulmod(mulmod(w, w, P), w, P);
        uint256 uw7 = mulmod(u, mulmod(mulmod(w3, w3, P), w, P), P);
        uint256 r;
        (ok, r) = expmod(uw7, (P - 5) / 8);
        if (!ok) return (false, 0, 0);
        x = mulmod(mulmod(u, w3, P), r, P);
        uint256 wx2 = mulmod(w, mulmod(x, x, P), P);
        if (wx2 != u) {
            if (addmod(wx2, u, P) != 0) return (false, 0, 0);
            x = mulmod(x, SQRT_M1, P);
        }
        if (x == 0 && sign == 1) return (false, 0, 0);
        if (x & 1 != sign) x = P - x;
        return (true, x, y);
    }

    /// 8 * (x, y), affine.
    function mul8(uint256 x, uint256 y) internal view returns (bool ok, uint256 rx, uint256 ry) {
        uint256 X;
        uint256 Y;
        uint256 Z;
        assembly ("memory-safe") {
            function dbl(x1, y1, z1) -> x3, y3, z3 {
                let p := 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed
                let a := mulmod(x1, x1, p)
                let b := mulmod(y1, y1, p)
                let h := addmod(a, b, p)
                let s := add(x1, y1)
                let e := add(h, sub(p, mulmod(s, s, p)))
                let g := addmod(a, sub(p, b), p)
                let c := mulmod(z1, z1, p)
                let f := addmod(add(c, c), g, p)
                x3 := mulmod(e, f, p)
                y3 := mulmod(g, h, p)
                z3 := mulmod(f, g, p)
            }
            X, Y, Z := dbl(x, y, 1)
            X, Y, Z := dbl(X, Y, Z)
            X, Y, Z := dbl(X, Y, Z)
        }
        uint256 zi;
        (ok, zi) = inv(Z);
        return (ok, mulmod(X, zi, P), mulmod(Y, zi, P));
    }

    /// a*(px, py) + b*(qx, qy), affine, by a joint (Shamir) double-and-add over 2-bit windows
    /// of both scalars at once. The points must be on the curve.
    function mulAdd(uint256 px, uint256 py, uint256 a, uint256 qx, uint256 qy, uint256 b)
        internal
        view
        returns (bool ok, uint256 rx, uint256 ry)
    {
        uint256 X;
        uint256 Y;
        uint256 Z;
        assembly ("memory-safe") {
            // doubling (RFC 8032 point_double; T is not needed by it)
            function dbl(x1, y1, z1) -> x3, y3, z3, t3 {
                let p := 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed
                let a_ := mulmod(x1, x1, p)
                let b_ := mulmod(y1, y1, p)
                let h := addmod(a_, b_, p)
                let s := add(x1, y1)
                let e := add(h, sub(p, mulmod(s, s, p)))
                let g := addmod(a_, sub(p, b_), p)
                let c := mulmod(z1, z1, p)
                let f := addmod(add(c, c), g, p)
                x3 := mulmod(e, f, p)
                y3 := mulmod(g, h, p)
                t3 := mulmod(e, h, p)
                z3 := mulmod(f, g, p)
            }
            // addition of a cached point q = (Y-X, Y+X, 2d*T, 2Z) stored at memory q
            function addc(x1, y1, z1, t1, q) -> x3, y3, z3, t3 {
                let p := 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed
                let a_ := mulmod(add(y1, sub(p, x1)), mload(q), p)
                let b_ := mulmod(add(y1, x1), mload(add(q, 32)), p)
                let c := mulmod(t1, mload(add(q, 64)), p)
                let d := mulmod(z1, mload(add(q, 96)), p)
                let e := add(b_, sub(p, a_))
                let f := add(d, sub(p, c))
                let g := add(d, c)
                let h := add(b_, a_)
                x3 := mulmod(e, f, p)
                y3 := mulmod(g, h, p)
                t3 := mulmod(e, h, p)
                z3 := mulmod(f, g, p)
            }
            function cache(q, x1, y1, z1, t1) {
                let p := 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed
                mstore(q, add(y1, sub(p, x1)))
                mstore(add(q, 32), add(y1, x1))
                mstore(add(q, 64), mulmod(t1, 0x2406d9dc56dffce7198e80f2eef3d13000e0149a8283b156ebd69b9426b2f159, p))
                mstore(add(q, 96), add(z1, z1))
            }
            function ld(q) -> x1, y1, z1, t1 {
                x1 := mload(q)
                y1 := mload(add(q, 32))
                z1 := mload(add(q, 64))
                t1 := mload(add(q, 96))
            }
            function st(q, x1, y1, z1, t1) {
                mstore(q, x1)
                mstore(add(q, 32), y1)
                mstore(add(q, 64), z1)
                mstore(add(q, 96), t1)
            }
            let p := 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed
            // ext[k] and ctb[k], k = i + 4j (i, j in 0..3): i*P + j*Q in extended and in cached
            // form, 128 bytes per entry (entry 0, the identity, is never added).
            let ext := mload(0x40)
            let ctb := add(ext, 2048)
            mstore(0x40, add(ctb, 2048))
            st(add(ext, 128), px, py, 1, mulmod(px, py, p))
            cache(add(ctb, 128), px, py, 1, mulmod(px, py, p))
            st(add(ext, 512), qx, qy, 1, mulmod(qx, qy, p))
            cache(add(ctb, 512), qx, qy, 1, mulmod(qx, qy, p))
            for { let k := 2 } lt(k, 16) { k := add(k, 1) } {
                if iszero(eq(k, 4)) {
                    let x1, y1, z1, t1
                    switch and(k, 3)
                    case 0 {
                        x1, y1, z1, t1 := ld(add(ext, shl(7, sub(k, 4))))
                        x1, y1, z1, t1 := addc(x1, y1, z1, t1, add(ctb, 512))
                    }
                    default {
                        x1, y1, z1, t1 := ld(add(ext, shl(7, sub(k, 1))))
                        x1, y1, z1, t1 := addc(x1, y1, z1, t1, add(ctb, 128))
                    }
                    st(add(ext, shl(7, k)), x1, y1, z1, t1)
                    cache(add(ctb, shl(7, k)), x1, y1, z1, t1)
                }
            }
            // 2 bits of each scalar per step, from the highest non-zero window down.
            let w := 128
            for {} and(gt(w, 0), iszero(shr(shl(1, sub(w, 1)), or(a, b)))) {} { w := sub(w, 1) }
            let x := 0
            let t := 0
            let y := 1
            let z := 1
            for {} w {} {
                w := sub(w, 1)
                let sh := shl(1, w)
                x, y, z, t := dbl(x, y, z)
                x, y, z, t := dbl(x, y, z)
                let k := or(and(shr(sh, a), 3), shl(2, and(shr(sh, b), 3)))
                if k { x, y, z, t := addc(x, y, z, t, add(ctb, shl(7, k))) }
            }
            X := x
            Y := y
            Z := z
        }
        uint256 zi;
        (ok, zi) = inv(Z);
        return (ok, mulmod(X, zi, P), mulmod(Y, zi, P));
    }
}
