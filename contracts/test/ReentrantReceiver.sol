// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Test-only attacker: a contract account that re-enters on every payment it receives
/// @notice `exec` lets a test make it register assets, request tasks and so on; on receiving
/// ether it calls `reenterTarget` with `reenterData` again (once per payment), recording
/// whether the re-entrant call succeeded. With `swallow` false a failed re-entry makes the
/// whole payment fail (so the outer withdrawal reverts); with true it is ignored.
contract ReentrantReceiver {
    address public reenterTarget;
    bytes public reenterData;
    bool public swallow;
    uint256 public received;
    uint256 public reentrySucceeded;
    uint256 public reentryFailed;
    bool internal inside;

    function configure(address target, bytes calldata data, bool swallow_) external {
        reenterTarget = target;
        reenterData = data;
        swallow = swallow_;
    }

    function exec(address target, uint256 value, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        received += msg.value;
        if (reenterTarget == address(0) || inside) return;
        inside = true;
        (bool ok, bytes memory ret) = reenterTarget.call(reenterData);
        inside = false;
        if (ok) {
            reentrySucceeded += 1;
        } else {
            reentryFailed += 1;
            if (!swallow) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
    }
}
