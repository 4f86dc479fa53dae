/** What `task run` tells a person while it works: the stages as they happen. */
import type { ProgressEvent } from '../../protocol/index.ts';
import type { CommandContext } from '../command.ts';
import { formatStage } from '../journey/timeline.ts';

/**
 * Stage lines on stderr. On a terminal: the stage view (a header naming the task, then one
 * aligned line per stage). Elsewhere (a log, CI), without --json: one line per stage as it
 * happens, each starting with `task ID`, so a line read on its own says which task it is
 * about. With --json nothing (stdout holds the one JSON object; STYLE.md).
 */
export function stageReporter(
  ctx: CommandContext,
  taskId: bigint,
): { created(): void; stage(s: ProgressEvent): void } {
  if (ctx.interactive) {
    return {
      created: () => ctx.progress(`task ${taskId} created; waiting (Ctrl-C stops waiting, not the task):`),
      stage: (s) => ctx.progress(formatStage(s)),
    };
  }
  if (ctx.json) return { created: () => {}, stage: () => {} };
  return {
    created: () => ctx.stderr.write(`task ${taskId} created\n`),
    stage: (s) => ctx.stderr.write(`task ${taskId} ${formatStage(s).trim()}\n`),
  };
}
