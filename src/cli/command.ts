/**
 * The CLI's command model. Each command is a module whose default export is a `Command`;
 * `registry.ts` maps command paths to lazy imports, so `ferry --help` stays fast.
 *
 * Conventions (STYLE.md): results on stdout, logs and progress on stderr, progress only on a
 * terminal and never with --json; `--json` prints exactly one JSON object (the result, or
 * `{"error": {code, message, hints}}`); exit codes 0 ok, 1 failure, 2 usage, 3 verification
 * failed, 4 unavailable, 70 internal bug.
 */
import type { Logger } from '../kernel/index.ts';

export type OptionSpec = {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Name of the value in help, e.g. FILE. */
  value?: string;
  description: string;
};

export type CommandContext = {
  /** Parsed option values (strings, booleans, or arrays of strings for `multiple`). */
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  json: boolean;
  /** True when stderr is a terminal and --json is off: progress may be shown. */
  interactive: boolean;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Writes a progress line to stderr when interactive; silent otherwise. */
  progress(line: string): void;
  log: Logger;
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal: AbortSignal;
};

export type CommandResult = {
  /** Printed as one JSON line with --json. Omit when the command wrote its own output. */
  json?: unknown;
  /** Printed without --json (a trailing newline is added to strings that lack one). */
  text?: string;
  /** Exit code; default 0. */
  exitCode?: number;
};

export type Command = {
  /** Full path after `ferry`, e.g. `vrf keygen`. */
  name: string;
  summary: string;
  /** Usage line(s) without the leading `ferry `. */
  usage: string;
  /** Longer help text shown by --help. */
  description?: string;
  options: Record<string, OptionSpec>;
  /** Allowed positional arguments; default none. */
  positionals?: { min?: number; max?: number };
  run(ctx: CommandContext): Promise<CommandResult>;
};

/** Helper for commands: typed access to option values with usage errors. */
export function defineCommand(c: Command): Command {
  return c;
}
