/** What `task run` tells a person while it works: the stages as they happen. */
import { PROGRESS_STAGES, type ProgressEvent } from '../../protocol/index.ts';
import type { CommandContext } from '../command.ts';
import { formatMs, formatStage } from '../journey/timeline.ts';

export type StageReporter = {
  created(): void;
  stage(s: ProgressEvent): void;
  /** The wait is over (done, failed or stopped): stop the live view's clock. */
  finish(): void;
};

const ESC = '\u001b[';

/**
 * Stage lines on stderr. On a terminal: the live stage view, redrawn in place — a header naming
 * the task, one aligned line per stage reached, and a last line naming the stage waited for with
 * the time since the task was created, ticking every second until `finish`. Elsewhere (a log,
 * CI), without --json: one line per stage as it happens, each starting with `task ID`, so a line
 * read on its own says which task it is about. With --json nothing (stdout holds the one JSON
 * object; STYLE.md).
 */
export function stageReporter(
  ctx: Pick<CommandContext, 'interactive' | 'json' | 'stderr'>,
  taskId: bigint,
  opts: { startedAt?: number; tickMs?: number; now?: () => number } = {},
): StageReporter {
  if (ctx.interactive) return liveView(ctx.stderr, taskId, opts);
  if (ctx.json) return { created: () => {}, stage: () => {}, finish: () => {} };
  return {
    created: () => ctx.stderr.write(`task ${taskId} created\n`),
    stage: (s) => ctx.stderr.write(`task ${taskId} ${formatStage(s).trim()}\n`),
    finish: () => {},
  };
}

function liveView(
  out: NodeJS.WritableStream,
  taskId: bigint,
  opts: { startedAt?: number; tickMs?: number; now?: () => number },
): StageReporter {
  const now = opts.now ?? Date.now;
  const startedAt = opts.startedAt ?? now();
  const header = `task ${taskId} created; waiting (Ctrl-C stops waiting, not the task):`;
  const lines: string[] = [];
  let next: string = PROGRESS_STAGES[0];
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const draw = (withFooter: boolean): void => {
    const block = [header, ...lines];
    if (withFooter) block.push(`${`+${formatMs(now() - startedAt)}`.padStart(9)}  … waiting for ${next}`);
    // Back to the top of what was drawn, clear it, draw again.
    const up = drawn > 0 ? `${ESC}${drawn}A\r${ESC}J` : '';
    out.write(`${up}${block.join('\n')}\n`);
    drawn = block.length;
  };

  return {
    created: () => {
      draw(true);
      timer = setInterval(() => draw(true), opts.tickMs ?? 1000);
      timer.unref();
    },
    stage: (s) => {
      if (finished) return;
      lines.push(formatStage(s));
      if (s.stage === 'attempt-ended') next = PROGRESS_STAGES[0];
      else {
        const i = PROGRESS_STAGES.indexOf(s.stage);
        next = PROGRESS_STAGES[Math.min(i + 1, PROGRESS_STAGES.length - 1)];
      }
      draw(s.stage !== 'done');
    },
    finish: () => {
      if (finished) return;
      finished = true;
      if (timer) clearInterval(timer);
      draw(false);
    },
  };
}
