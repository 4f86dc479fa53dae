/**
 * The requester's journey as library calls (used by `ferry task run`, `task result`, `task
 * show`, `ferry demo`, the tests and the benchmarks): check before paying, create a task,
 * follow it to a final state (driving timeouts), explain a failure, and fetch, verify and
 * decrypt the result.
 */
export {
  createTaskFor,
  DEFAULT_WINDOWS,
  encodeTaskInput,
  explainCreateError,
  inputHashOf,
  type TaskWindows,
} from './create.ts';
export { explainFailure } from './explain.ts';
export { type WaitResult, waitForTask } from './follow.ts';
export { listNodes } from '../chain/index.ts';
export { checkFunds, preflightExecutors, taskPrices } from './preflight.ts';
export { fetchResult, type Finished, finishTask, type RequesterTrust } from './result.ts';
