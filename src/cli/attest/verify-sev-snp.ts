/**
 * `ferry attest verify sev-snp`: verifies an AMD SEV-SNP attestation report with Ferry's own
 * verifier (built-in AMD roots for Milan, Genoa and Turin) and appraises it against a policy.
 * Exit 0 when accepted, 3 when not, 2 on usage errors.
 */
import { SevSnpVerifier, type Evidence } from '../../attestation/index.ts';
import { defineCommand } from '../command.ts';
import {
  appraisalResult,
  COMMON_VERIFY_OPTIONS,
  loadPolicyOption,
  nowOption,
  readFileArg,
} from './common.ts';

const DESCRIPTION = `
Verifies a raw SEV-SNP attestation report (1184 bytes, version 2 or later): the chain
ARK -> ASK -> VCEK (or ARK -> ASVK -> VLEK) with RSA-PSS SHA-384 to an AMD ARK built into
Ferry (Milan, Genoa, Turin), every certificate valid at --now, the report's ECDSA P-384
signature over bytes 0x000-0x29F, and the VCEK's TCB (blSPL, teeSPL, snpSPL, ucodeSPL) and
hwID extensions equal to the report's reported_tcb and chip_id. Without --chain every
built-in chain is tried; with --chain (ASK then ARK, PEM) its ARK must be a built-in one.
Then applies the policy: debug (guest policy bit 19), migration agent (bit 18), SMT
(bit 16), minimum TCB, VMPL, measurement and host_data reference values.

"valid" = every signature and certificate checks out at --now; "accepted" = valid and
allowed by the policy (default: production settings: no debug, and no reference values,
so valid evidence is refused with ATTESTATION_NO_REFERENCE_VALUES).
Exit 0 when accepted, 3 when not, 2 on usage errors.`;

export default defineCommand({
  name: 'attest verify sev-snp',
  summary: 'verify an AMD SEV-SNP attestation report with its VCEK and appraise it against a policy',
  usage: 'attest verify sev-snp --report F --vcek F [--chain F] [--now ISO8601] [--policy F] [--json]',
  description: DESCRIPTION,
  options: {
    report: { type: 'string', value: 'FILE', description: 'the raw attestation report (1184 bytes)' },
    vcek: { type: 'string', value: 'FILE', description: 'the VCEK (or VLEK) certificate, DER or PEM' },
    chain: { type: 'string', value: 'FILE', description: 'ASK then ARK, PEM (default: the built-in chains)' },
    ...COMMON_VERIFY_OPTIONS,
  },
  async run(ctx) {
    const policy = await loadPolicyOption(ctx);
    const now = nowOption(ctx);
    const report = await readFileArg(ctx, 'report');
    const vcek = await readFileArg(ctx, 'vcek');
    const chain = await readFileArg(ctx, 'chain', { optional: true });
    const reportData = report.length >= 0x90 ? report.slice(0x50, 0x90) : new Uint8Array(64);
    const body: Evidence['body'] = chain ? { report, vcek, chain } : { report, vcek };
    const a = await new SevSnpVerifier().appraise({ kind: 'sev-snp', reportData, body }, { policy, now });
    return appraisalResult(a);
  },
});
