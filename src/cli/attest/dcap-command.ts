/**
 * The shared body of `ferry attest verify tdx` and `ferry attest verify sgx`.
 */
import { TdxVerifier, SgxVerifier } from '../../attestation/index.ts';
import { Quote } from '@phala/dcap-qvl';
import { type Command, defineCommand } from '../command.ts';
import {
  appraisalResult,
  COMMON_VERIFY_OPTIONS,
  loadPolicyOption,
  nowOption,
  readFileArg,
} from './common.ts';

const DESCRIPTION = (kind: 'tdx' | 'sgx') => `
Verifies a DCAP quote (${kind === 'tdx' ? 'v4/v5 with a TD report' : 'v3 with an SGX enclave report'}) with
@phala/dcap-qvl: the PCK chain from the quote to Intel's SGX Root CA (built in), the CRLs,
TCB info and QE identity from --collateral and their signatures, all judged at --now
(default: the real time; Intel collateral expires after about 30 days). Then applies the
policy: ${kind === 'tdx' ? 'mr_td, RTMRs and mr_seam' : 'mr_enclave, mr_signer, isv_prod_id and min isv_svn'} against the reference values,
debug, allowed TCB statuses and advisories.

--collateral is dcap-qvl's JSON: pck_crl_issuer_chain, root_ca_crl, pck_crl,
tcb_info_issuer_chain, tcb_info, tcb_info_signature, qe_identity_issuer_chain, qe_identity,
qe_identity_signature.

"valid" = every signature, chain and collateral checks out at --now; "accepted" = valid and
allowed by the policy (default: production settings: no debug, TCB UpToDate, and no
reference values, so valid evidence is refused with ATTESTATION_NO_REFERENCE_VALUES).
Exit 0 when accepted, 3 when not, 2 on usage errors.`;

export function makeDcapCommand(kind: 'tdx' | 'sgx'): Command {
  return defineCommand({
    name: `attest verify ${kind}`,
    summary: `verify an Intel ${kind.toUpperCase()} DCAP quote with its collateral and appraise it against a policy`,
    usage: `attest verify ${kind} --quote F --collateral F [--now ISO8601] [--policy F] [--json]`,
    description: DESCRIPTION(kind),
    options: {
      quote: { type: 'string', value: 'FILE', description: 'the raw DCAP quote' },
      collateral: { type: 'string', value: 'FILE', description: "the quote's collateral (dcap-qvl JSON)" },
      ...COMMON_VERIFY_OPTIONS,
    },
    async run(ctx) {
      const policy = await loadPolicyOption(ctx);
      const now = nowOption(ctx);
      const quote = await readFileArg(ctx, 'quote');
      const collateral = new TextDecoder().decode(await readFileArg(ctx, 'collateral'));
      // The envelope carries the quote's own report_data; the CLI checks no expected binding.
      let reportData = new Uint8Array(64);
      try {
        const q = Quote.parse(quote);
        const rd =
          q.report.asSgx()?.reportData ?? q.report.asTd10()?.reportData ?? q.report.asTd15()?.base.reportData;
        if (rd?.length === 64) reportData = Uint8Array.from(rd);
      } catch {
        // an unparseable quote is reported by the verifier
      }
      const verifier = kind === 'tdx' ? new TdxVerifier() : new SgxVerifier();
      const a = await verifier.appraise({ kind, reportData, body: { quote, collateral } }, { policy, now });
      return appraisalResult(a);
    },
  });
}
