/**
 * Following a task to a final state, stage by stage (src/protocol/stages.ts), and driving
 * `timeout` when a stage's deadline passes so a stuck task ends instead of hanging.
 */
import { eventsOfTask, eventsSince } from '../audit/index.ts';
import {
  type ChainReader,
  type ChainWriter,
  type FerryEvent,
  getTask,
  type TaskInfo,
  timeoutTask,
} from '../chain/index.ts';
import { FerryError, isFerryError } from '../kernel/index.ts';
import {
  isFinal,
  type ProgressEvent,
  type ProgressStage,
  ProgressTimeline,
  timeoutDue,
} from '../protocol/index.ts';

export type WaitResult = {
  task: TaskInfo;
  events: FerryEvent[];
  /** The completing (or last) attempt's stage times, ms since creation. */
  stagesMs: Partial<Record<ProgressStage, number>>;
  timeline: ProgressEvent[];
};

/**
 * Follows a task until it is final: polls its events, reports each stage once per attempt
 * (`onStage`), and, with a writer, calls `timeout` when the current stage's deadline or the
 * task's expiry has passed (anyone may), so a stuck task ends instead of hanging.
 */
export async function waitForTask(
  c: ChainReader | ChainWriter,
  taskId: bigint,
  opts: {
    startedAt: number;
    onStage?: (s: ProgressEvent) => void;
    signal?: AbortSignal;
    pollMs?: number;
    maxWaitMs?: number;
  },
): Promise<WaitResult> {
  const first = await getTask(c, taskId);
  if (!first) throw new FerryError('TASK_NOT_FOUND', `task ${taskId} does not exist`);
  let from = first.createdBlock;
  const events: FerryEvent[] = [];
  const progress = new ProgressTimeline(first.attempt);
  let lastTimeout = 0;
  const deadline = Date.now() + (opts.maxWaitMs ?? 30 * 60_000);
  for (;;) {
    opts.signal?.throwIfAborted();
    // The task first, then the head (uncached): every event up to the state read is fetched.
    const task = (await getTask(c, taskId))!;
    const head = await c.public.getBlockNumber({ cacheTime: 0 });
    if (head >= from) {
      const fresh = eventsOfTask(await eventsSince(c, from, head), taskId);
      from = head + 1n;
      for (const e of fresh) {
        events.push(e);
        const line = progress.add(e, task, Date.now() - opts.startedAt);
        if (line) opts.onStage?.(line);
      }
    }
    if (isFinal(task.status)) {
      return { task, events, stagesMs: progress.stagesMs, timeline: progress.timeline };
    }
    if (Date.now() > deadline) {
      throw new FerryError('TIMEOUT', `task ${taskId} is still ${task.status}`, {
        hints: [`follow it with: ferry task show ${taskId}`],
      });
    }
    if ('wallet' in c && Date.now() - lastTimeout > 2000) {
      const now = Number((await c.public.getBlock()).timestamp);
      if (timeoutDue(task, now)) {
        lastTimeout = Date.now();
        try {
          await timeoutTask(c, taskId);
        } catch (e) {
          // Too early by the chain's clock, or someone else moved the task on: poll again.
          if (!isFerryError(e)) throw e;
        }
      }
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
  }
}
