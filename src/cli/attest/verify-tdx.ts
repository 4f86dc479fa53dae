/**
 * `ferry attest verify tdx`: verifies an Intel TDX DCAP quote with its collateral at `--now`
 * and appraises it against a policy. Exit 0 when accepted, 3 when not, 2 on usage errors.
 */
import { makeDcapCommand } from './dcap-command.ts';

export default makeDcapCommand('tdx');
