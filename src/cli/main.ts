/**
 * `ferry` entry point: finds the command, parses its options, runs it, prints the result
 * and maps errors to exit codes. See command.ts for the conventions.
 */
import { enableCompileCache, getCompileCacheDir } from 'node:module';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { compileCacheDir, createLogger, EXIT, FerryError, toFerryError } from '../kernel/index.ts';
import type { Command, CommandContext, CommandResult, OptionSpec } from './command.ts';
import { COMMANDS, type Entry } from './registry.ts';

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'print one JSON object on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
};

function findEntry(argv: string[]): { entry: Entry; rest: string[] } | undefined {
  // The longest command path that matches the leading words.
  let best: { entry: Entry; rest: string[] } | undefined;
  for (const e of COMMANDS) {
    const words = e.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.entry.name.split(' ').length)) {
      best = { entry: e, rest: argv.slice(words.length) };
    }
  }
  return best;
}

function formatOptions(options: Record<string, OptionSpec>): string {
  const rows = Object.entries({ ...options, ...GLOBAL_OPTIONS }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [flag, o.description + (o.multiple ? ' (repeatable)' : '')];
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n');
}

export function commandHelp(c: Command): string {
  return [
    `Usage: ferry ${c.usage}`,
    '',
    c.summary,
    ...(c.description ? ['', c.description.trim()] : []),
    '',
    'Options:',
    formatOptions(c.options),
    '',
    'Exit codes: 0 ok, 1 failure, 2 usage, 3 verification failed, 4 unavailable, 70 bug.',
  ].join('\n');
}

function groupHelp(prefix: string[]): string {
  const list = COMMANDS.filter((e) => prefix.every((w, i) => e.name.split(' ')[i] === w));
  const w = Math.max(...list.map((e) => e.name.length));
  return [
    prefix.length === 0
      ? 'Ferry: leave your data where it is; the app travels to it.\n\nUsage: ferry <command> [options]   (ferry <command> --help for details)'
      : `Usage: ferry ${prefix.join(' ')} <command> [options]`,
    '',
    'Commands:',
    ...list.map((e) => `  ${e.name.padEnd(w)}  ${e.summary}`),
  ].join('\n');
}

function printError(err: FerryError, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  } else {
    process.stderr.write(`ferry: ${err.message} [${err.code}]\n`);
    for (const h of err.hints) process.stderr.write(`  ${h}\n`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const wantsJson = argv.includes('--json');
  const first = argv.filter((a) => !a.startsWith('-'));
  const found = findEntry(argv);
  if (!found) {
    const prefix =
      first.length > 0 && COMMANDS.some((e) => e.name.split(' ')[0] === first[0]) ? [first[0]] : [];
    if (
      argv.length === 0 ||
      argv[0] === '--help' ||
      argv[0] === '-h' ||
      argv[0] === 'help' ||
      (prefix.length > 0 && (argv.length === 1 || argv.includes('--help') || argv.includes('-h')))
    ) {
      process.stdout.write(groupHelp(prefix) + '\n');
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    printError(
      new FerryError('USAGE_UNKNOWN_COMMAND', `unknown command: ${first.slice(0, 2).join(' ') || argv[0]}`, {
        hints: ['run "ferry --help" for the list of commands'],
      }),
      wantsJson,
    );
    return EXIT.usage;
  }
  let command: Command;
  try {
    command = (await found.entry.load()).default;
  } catch (e) {
    printError(toFerryError(e), wantsJson);
    return EXIT.internal;
  }
  const options = { ...command.options, ...GLOBAL_OPTIONS } as ParseArgsConfig['options'];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: found.rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    printError(
      new FerryError('USAGE_UNKNOWN_OPTION', (e as Error).message.split('\n')[0], {
        hints: [`usage: ferry ${command.usage}`],
      }),
      wantsJson,
    );
    return EXIT.usage;
  }
  const values = parsed.values as CommandContext['values'];
  const json = values.json === true;
  if (values.help) {
    process.stdout.write(commandHelp(command) + '\n');
    return EXIT.ok;
  }
  const { min = 0, max = 0 } = command.positionals ?? {};
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    printError(
      new FerryError('USAGE_INVALID_ARGUMENT', `wrong number of arguments for "ferry ${command.name}"`, {
        hints: [`usage: ferry ${command.usage}`, `got: ${parsed.positionals.length} argument(s)`],
      }),
      json,
    );
    return EXIT.usage;
  }
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const interactive = !json && process.stderr.isTTY === true;
  const ctx: CommandContext = {
    values,
    positionals: parsed.positionals,
    json,
    interactive,
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    progress: (line) => {
      if (interactive) process.stderr.write(line + '\n');
    },
    log: createLogger({ component: command.name.replace(' ', '-') }),
    env: process.env,
    cwd: process.cwd(),
    signal: ac.signal,
  };
  let result: CommandResult;
  try {
    result = await command.run(ctx);
  } catch (e) {
    const err = toFerryError(e);
    printError(err, json);
    if (err.code === 'INTERNAL' && process.env.FERRY_DEBUG)
      process.stderr.write(String((e as Error).stack) + '\n');
    return err.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (json && result.json !== undefined) {
    process.stdout.write(JSON.stringify(result.json) + '\n');
  } else if (!json && result.text !== undefined) {
    process.stdout.write(result.text.endsWith('\n') ? result.text : result.text + '\n');
  }
  return result.exitCode ?? EXIT.ok;
}

if (import.meta.main) {
  // bin/ferry sets NODE_COMPILE_CACHE, which covers this file too; run directly (as the devnet
  // runs its daemons), the cache covers the command's modules, imported from here on.
  if (getCompileCacheDir() === undefined && !process.env.NODE_DISABLE_COMPILE_CACHE) {
    const dir = compileCacheDir('cli');
    if (dir !== null) enableCompileCache(dir);
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`ferry: internal error: ${(e as Error)?.stack ?? e}\n`);
      process.exitCode = EXIT.internal;
    },
  );
}
