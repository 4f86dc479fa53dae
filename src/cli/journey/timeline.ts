/** Text output shared by the journey commands: the stage timeline and the audit's checks. */
import type { AuditCheck } from '../../audit/index.ts';
import type { ProgressEvent } from '../../protocol/index.ts';

const LABELS: Record<ProgressEvent['stage'], string> = {
  seeded: 'seeded',
  claimed: 'claimed',
  evidence: 'evidence',
  votes: 'votes',
  keysReleased: 'keys released',
  running: 'running',
  receipt: 'receipt',
  done: 'done',
  'attempt-ended': 'attempt ended',
};

/** A probability for people: 0, three significant digits down to 1e-3, else exponent notation. */
export function formatProbability(p: number): string {
  return p === 0 ? '0' : p >= 1e-3 ? p.toPrecision(3) : p.toExponential(2);
}

export function formatMs(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}

/** One timeline line: `  +1.23s  claimed        by 0x1234…` (attempt shown after the first). */
export function formatStage(s: ProgressEvent): string {
  const at = `+${formatMs(s.ms)}`.padStart(9);
  const label = (LABELS[s.stage] + (s.attempt > 1 ? ` (#${s.attempt})` : '')).padEnd(18);
  return `${at}  ${label} ${s.detail}`;
}

/** The audit's checks, one line each: `  ok    claim-vrf          detail`. */
export function formatChecks(checks: readonly AuditCheck[]): string {
  const w = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(w)}  ${c.detail}`).join('\n');
}
