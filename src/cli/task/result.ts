/**
 * `ferry task result ID [--out FILE] [--receipt FILE] [--profile NAME]`: fetches a finished
 * task's result from where its receipt says, audits the task from the chain (with the result's
 * hash), and decrypts it with the requester's profile: what `task run --wait` does at the end,
 * at any later time.
 */
import { getTask } from '../../chain/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { finishTask } from '../../requester/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import { checkWritable, parseId } from '../journey/args.ts';
import {
  actAs,
  auditTrust,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
  TRUST_OPTIONS,
} from '../journey/network.ts';
import { deliver } from './deliver.ts';

export default defineCommand({
  name: 'task result',
  summary: "fetch, verify and decrypt a completed task's result (the requester's profile)",
  usage: 'task result ID [--out FILE] [--receipt FILE] [--profile NAME] [--json]',
  description: `
For a completed task: fetches the result ciphertext from the location in its receipt, verifies
the task from the chain (ferry receipt verify's checks, plus that the ciphertext hashes to the
receipt's result hash), and only then decrypts it with the profile's age identity (the
requester's: the result is sealed to it) into --out, or stdout without --json. --receipt FILE
saves the receipt bundle. --out and --receipt are checked to be writable first.
--json prints {"taskId", "status", "attempt", "verified", "outcome", "appExitCode",
"limitHit", "out", "receipt", "resultSha256", "checks"} (as task run --wait).
Exit 0 when verified and the app exited 0; 1 when the app did not exit 0 (ENCLAVE_APP_FAILED)
or the task did not complete; 2 for usage or an unknown task; 3 when a check failed (nothing
is decrypted or written then) or the profile cannot open the result; 4 when the result
cannot be fetched.`,
  options: {
    ...PROFILE_OPTION,
    out: { type: 'string', value: 'FILE', description: 'write the decrypted result here' },
    receipt: { type: 'string', value: 'FILE', description: 'save the receipt bundle here' },
    ...NETWORK_OPTIONS,
    ...TRUST_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const taskId = parseId(ctx.positionals[0], 'task ID');
    const out = optionalString(ctx, 'out');
    const receiptFile = optionalString(ctx, 'receipt');
    if (out) checkWritable(out, '--out');
    if (receiptFile) checkWritable(receiptFile, '--receipt');
    const net = locateNetwork(ctx);
    const trust = auditTrust(net);
    const profile = profileName(ctx);
    const { secrets, chain } = await actAs(net, ferryHome(ctx.env), profile);
    const task = await getTask(chain, taskId);
    if (!task) {
      throw new FerryError('TASK_NOT_FOUND', `task ${taskId} does not exist`, {
        hints: ['list tasks with: ferry task ls'],
      });
    }
    if (task.status !== 'completed') {
      throw new FerryError(
        'TASK_FAILED',
        `task ${taskId} is ${task.status}, not completed: it has no result`,
        {
          hints: [`see why with: ferry task show ${taskId}`],
        },
      );
    }
    if (task.requester.toLowerCase() !== secrets.profile.address.toLowerCase()) {
      ctx.log.warn('the profile is not the requester of the task; the result is sealed to the requester', {
        requester: task.requester,
      });
    }
    const fin = await finishTask({
      chain,
      chainId: chain.chainId,
      contracts: net.contracts,
      taskId,
      secrets,
      trust,
      signal: ctx.signal,
    });
    return deliver(ctx, {
      taskId,
      fin,
      out,
      receiptFile,
      base: { taskId: taskId.toString(), status: task.status, attempt: task.attempt },
    });
  },
});
