/**
 * Test helpers for external tools (Debian's age, swtpm, tpm2-tools). Outside CI a missing
 * tool skips the test with a reason; under CI (CI=true) a missing tool fails it, because
 * .ci/run installs them and a silent skip would hide a broken install step.
 */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Returns true when the tool is present; otherwise skips (or, in CI, fails) the test. */
export function requireTool(t: TestContext, name: string): boolean {
  if (hasTool(name)) return true;
  if (process.env.CI) throw new Error(`${name} is required in CI but not installed (.ci/run installs it)`);
  t.skip(`${name} not installed`);
  return false;
}
