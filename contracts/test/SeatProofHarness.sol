// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SeatProof} from "../SeatProof.sol";

/// @title Test-only: SeatProof.tooManySeats as external functions (src/chain/seat-proof.test.ts)
contract SeatProofHarness {
    function tooManySeats(uint64 x, uint256 w, uint256 W, uint256 tau, uint256 seats) external pure returns (bool) {
        return SeatProof.tooManySeats(x, w, W, tau, seats);
    }

    /// The same, with the gas the library call used (gasleft() before and after).
    function tooManySeatsGas(uint64 x, uint256 w, uint256 W, uint256 tau, uint256 seats)
        external
        view
        returns (bool flagged, uint256 gasUsed)
    {
        uint256 g = gasleft();
        flagged = SeatProof.tooManySeats(x, w, W, tau, seats);
        gasUsed = g - gasleft();
    }
}
