/**
 * `ferry receipt verify ID|FILE [--result FILE]`: the auditor's check of a completed task from
 * chain data (src/audit): by task id on the configured network, or from a saved receipt bundle
 * (whose evidence and enclave key replace the executor's endpoint, and whose receipt must be
 * the one on chain). The evidence is appraised again with the trust auditTrust gives (flags,
 * environment, else the devnet's sim root and tpm2 CAs and activator).
 */
import { existsSync, readFileSync } from 'node:fs';
import { auditToJson, parseBundle, verifyTaskFromChain } from '../../audit/index.ts';
import { connect, type FerryContracts, reader } from '../../chain/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { optionalString, readInputFile } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseId } from '../journey/args.ts';
import {
  auditTrust,
  chainReader,
  locateNetwork,
  NETWORK_OPTIONS,
  TRUST_OPTIONS,
} from '../journey/network.ts';
import { formatChecks } from '../journey/timeline.ts';

export default defineCommand({
  name: 'receipt verify',
  summary: "verify a completed task's receipt, evidence, votes and VRF proofs from the chain",
  usage:
    'receipt verify ID|FILE [--result FILE] [--sim-roots HEX,...] [--tpm2-cas FILE,...] [--tpm2-activators HEX,...] [--json]',
  description: `
ID is a task id on the configured network; FILE a receipt bundle saved by "ferry task run
--receipt FILE" (ferry/receipt-bundle/v1). Checks, each a named line (docs/protocol.md 15):
the winning claim's VRF proof and that it was the lowest, the evidence against its committed
hash, report_data binding the enclave keys to the attempt, the re-appraisal under the
datasets' appraisal policy, every vote's VRF proof and seats, the threshold, the key
releases, and the receipt: signature by the attested enclave key and every hash it names
against the chain. --result FILE also checks the result ciphertext's hash. The evidence is
appraised with the trust of --sim-roots, --tpm2-cas and --tpm2-activators (as for "ferry node
start"; or FERRY_SIM_ROOTS, FERRY_TPM2_CAS, FERRY_TPM2_ACTIVATORS), else the devnet's
(devnet.json: its simulation root, and with --tee tpm2 its swtpm CAs and activator key).
--json prints {"taskId", "attempt", "status", "verified", "checks": [{"name", "ok", "detail"}]}.
Exit 0 when every check passes, 3 when any fails.`,
  options: {
    result: {
      type: 'string',
      value: 'FILE',
      description: 'the result ciphertext to check against the receipt',
    },
    ...NETWORK_OPTIONS,
    ...TRUST_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const arg = ctx.positionals[0];
    const net = locateNetwork(ctx);
    const trust = auditTrust(net);
    const resultFile = optionalString(ctx, 'result');
    const resultCiphertext = resultFile ? await readInputFile(resultFile, '--result') : undefined;
    let report: Awaited<ReturnType<typeof verifyTaskFromChain>>;
    if (/^[0-9]+$/.test(arg) && !existsSync(arg)) {
      const c = await chainReader(net);
      report = await verifyTaskFromChain(c, parseId(arg, 'task ID'), {
        ...trust,
        chainId: c.chainId,
        resultCiphertext,
        signal: ctx.signal,
      });
    } else {
      let text: string;
      try {
        text = readFileSync(arg, 'utf8');
      } catch (e) {
        throw new FerryError('IO_READ_FAILED', `cannot read receipt bundle ${arg}`, {
          cause: e,
          hints: [
            (e as NodeJS.ErrnoException).code ?? String(e),
            'expected: a task id or a receipt bundle file',
          ],
        });
      }
      const b = parseBundle(text);
      const clients = await connect({ rpcUrl: net.rpcUrl, chainId: net.chainId, pollingInterval: 100 });
      if (clients.chain.id !== b.chainId) {
        throw new FerryError(
          'USAGE_INVALID_ARGUMENT',
          `the bundle is from chain ${b.chainId}; this network is chain ${clients.chain.id}`,
          {
            hints: ['point --rpc at the chain the task ran on'],
          },
        );
      }
      const c = reader(clients, b.contracts as FerryContracts);
      report = await verifyTaskFromChain(c, b.taskId, {
        ...trust,
        chainId: b.chainId,
        evidence: { bytes: b.evidence, x25519Pub: b.x25519Pub, ed25519Pub: b.ed25519Pub },
        savedReceipt: { receipt: b.receipt, signature: b.signature },
        resultCiphertext,
        signal: ctx.signal,
      });
    }
    const json = auditToJson(report);
    return {
      json,
      text: `task ${json.taskId}: ${report.verified ? 'verified' : 'NOT verified'}\n${formatChecks(report.checks)}`,
      exitCode: report.verified ? 0 : 3,
    };
  },
});
