// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Provably too many seats (protocol.md section 4.1)
/// @notice Integer-only check that a vote claimed more seats than binomial sortition gives it.
/// Sortition (section 4) is normative in binary64 with libm log/exp, which the EVM cannot
/// recompute; this computes S = 2^192 * L, L a lower bound of the exact BinomCDF(seats - 1; w,
/// tau / W) (every operation truncates), and flags the claim iff
///     x * 2^128 + band < S,   band = 2^152 + (seats * (M + 64)) << 143,  M = ceil(w tau / (W - tau))
/// i.e. x / 2^64 < L - 2^-40 - seats (M + 64) 2^-49, the band bounding the binary64 error, so an
/// honest voter is never flagged. The same operations as src/protocol/seat-proof.ts, which is the
/// reference (tested against each other in src/chain/seat-proof.test.ts).
library SeatProof {
    uint256 internal constant MAX_TAU = 65535;
    uint256 internal constant MAX_SEATS = 65535;

    /// True iff `seats` is provably more than sortition gives a voter with VRF prefix `x`
    /// (the first 8 bytes of its VRF output, big-endian), stake `w` and total stake `W` (whole
    /// stake units), committee size `tau`. Invalid inputs (not 1 <= w <= W < 2^128,
    /// 1 <= tau <= 65535, 1 <= seats <= min(w, 65535)) and tau >= W return false; never reverts.
    /// Gas grows linearly with seats (one loop step per seat).
    function tooManySeats(uint64 x, uint256 w, uint256 W, uint256 tau, uint256 seats) internal pure returns (bool) {
        if (W == 0 || W >> 128 != 0 || w == 0 || w > W) return false;
        if (tau == 0 || tau > MAX_TAU || seats == 0 || seats > w || seats > MAX_SEATS) return false;
        if (tau >= W) return false; // p >= 1: sortition gives w seats
        unchecked {
            uint256 d = W - tau;
            uint256 k = seats - 1;
            uint256 bigM = (w * tau + d - 1) / d; // w tau < 2^144; bigM <= tau (tau + 1) < 2^32
            uint256 target = (uint256(x) << 128) + (1 << 152) + ((seats * (bigM + 64)) << 143);
            (uint256 m, int256 e) = _pmf0(w, W, d);
            uint256 sum = _fixed(m, e);
            if (sum > target) return true;
            for (uint256 i = 0; i < k; ++i) {
                // pmf(i + 1) = pmf(i) * ((w - i) tau) / ((i + 1)(W - tau)), each step truncating.
                uint256 p = m * ((w - i) * tau); // < 2^112 * 2^144
                uint256 s = _bitlen(p) - 112;
                m = p >> s;
                e += int256(s);
                p = (m << 144) / ((i + 1) * d); // divisor < 2^16 * 2^128
                s = _bitlen(p) - 112;
                m = p >> s;
                e += int256(s) - 144;
                sum += _fixed(m, e);
                if (sum > target) return true; // the sum only grows
            }
            return false;
        }
    }

    /// q^w, q = (W - tau) / W, rounded down, as a 112-bit float (m in [2^111, 2^112), value
    /// m * 2^e): q as a 256-bit float, left-to-right square-and-multiply, then truncated.
    function _pmf0(uint256 w, uint256 W, uint256 d) private pure returns (uint256 m, int256 e) {
        unchecked {
            // f = floor(d * 2^256 / W) by long division in two 128-bit digits (d < W < 2^128).
            uint256 h = (d << 128) / W;
            uint256 r = (d << 128) % W;
            uint256 f = (h << 128) | ((r << 128) / W);
            uint256 z = 256 - _bitlen(f);
            uint256 qm = f << z;
            int256 qe = -256 - int256(z);
            m = qm;
            e = qe;
            for (uint256 b = _bitlen(w) - 1; b > 0; ) {
                --b;
                (m, e) = _mul256(m, e, m, e);
                if ((w >> b) & 1 == 1) (m, e) = _mul256(m, e, qm, qe);
            }
            return (m >> 144, e + 144);
        }
    }

    /// The product of two 256-bit floats (mantissas in [2^255, 2^256)), truncated to 256 bits.
    function _mul256(uint256 am, int256 ae, uint256 bm, int256 be) private pure returns (uint256, int256) {
        unchecked {
            uint256 lo = am * bm;
            uint256 mm = mulmod(am, bm, type(uint256).max);
            uint256 hi = mm - lo - (mm < lo ? 1 : 0);
            if (hi >> 255 != 0) return (hi, ae + be + 256);
            return ((hi << 1) | (lo >> 255), ae + be + 255);
        }
    }

    /// floor(m * 2^e * 2^192) for a float of value at most 1 (so the left shift is below 82).
    function _fixed(uint256 m, int256 e) private pure returns (uint256) {
        unchecked {
            int256 s = e + 192;
            if (s >= 0) return m << uint256(s);
            return m >> uint256(-s); // 0 once the shift reaches 256
        }
    }

    /// The number of significant bits of v (0 for 0).
    function _bitlen(uint256 v) private pure returns (uint256 n) {
        unchecked {
            if (v >> 128 != 0) { v >>= 128; n = 128; }
            if (v >> 64 != 0) { v >>= 64; n += 64; }
            if (v >> 32 != 0) { v >>= 32; n += 32; }
            if (v >> 16 != 0) { v >>= 16; n += 16; }
            if (v >> 8 != 0) { v >>= 8; n += 8; }
            if (v >> 4 != 0) { v >>= 4; n += 4; }
            if (v >> 2 != 0) { v >>= 2; n += 2; }
            if (v >> 1 != 0) { v >>= 1; n += 1; }
            if (v != 0) n += 1;
        }
    }
}
