/**
 * `task run --wait`'s progress: on a terminal the live stage view redrawn in place (cursor up,
 * clear, the block again, the stage waited for with its clock); in a log one line per stage
 * starting with the task id; with --json nothing.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { stageReporter } from './progress.ts';

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

test('on a terminal: the view is redrawn in place, names the stage waited for, and stops at finish', () => {
  const out = sink();
  let t = 1000;
  const r = stageReporter({ interactive: true, json: false, stderr: out.stream }, 7n, {
    startedAt: 1000,
    now: () => t,
    tickMs: 3_600_000,
  });
  r.created();
  t = 3500;
  r.stage({ stage: 'seeded', attempt: 1, ms: 2500, detail: 'seed 0xab' });
  t = 4000;
  r.stage({ stage: 'claimed', attempt: 1, ms: 3000, detail: 'by 0x12' });
  r.finish();
  r.stage({ stage: 'evidence', attempt: 1, ms: 4000, detail: 'late' });
  const text = out.text();
  // First draw: header and the clock; then each redraw goes back up over what was drawn.
  assert.match(
    text,
    /^task 7 created; waiting \(Ctrl-C stops waiting, not the task\):\n +\+0\.00s {2}… waiting for seeded\n/,
  );
  assert.ok(text.includes('\u001b[2A\r\u001b[J'), 'the second draw moves up over two lines');
  assert.ok(text.includes('\u001b[3A\r\u001b[J'), 'the third over three');
  assert.match(text, /\+3\.00s {2}claimed +by 0x12\n +\+3\.00s {2}… waiting for evidence\n/);
  // The final draw has no clock line, and nothing is drawn after finish.
  const last = text.slice(text.lastIndexOf('\u001b['));
  assert.ok(!last.includes('waiting for'), last);
  assert.ok(!text.includes('late'));
});

test('an attempt that ends: the view waits for the next seed again', () => {
  const out = sink();
  const r = stageReporter({ interactive: true, json: false, stderr: out.stream }, 3n, { tickMs: 3_600_000 });
  r.created();
  r.stage({ stage: 'attempt-ended', attempt: 1, ms: 9000, detail: 'rejected' });
  r.finish();
  assert.ok(out.text().includes('waiting for seeded'));
});

test('in a log: one line per stage, task id first; with --json: nothing', () => {
  const log = sink();
  const r = stageReporter({ interactive: false, json: false, stderr: log.stream }, 12n);
  r.created();
  r.stage({ stage: 'claimed', attempt: 2, ms: 1500, detail: 'by 0x34' });
  r.finish();
  assert.equal(log.text(), 'task 12 created\ntask 12 +1.50s  claimed (#2)       by 0x34\n');
  const quiet = sink();
  const q = stageReporter({ interactive: false, json: true, stderr: quiet.stream }, 12n);
  q.created();
  q.stage({ stage: 'claimed', attempt: 1, ms: 1, detail: '' });
  q.finish();
  assert.equal(quiet.text(), '');
});
