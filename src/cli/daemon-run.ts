/** Shared by `ferry node start`, `ferry agent start` and `ferry dashboard`: daemon flags and the run-until-signal loop. */
import { type Daemon, serveUntilAborted } from '../daemon/index.ts';
import type { CommandContext, CommandResult, OptionSpec } from './command.ts';

export const daemonFlags: Record<string, OptionSpec> = {
  rpc: { type: 'string', value: 'URL', description: 'EVM JSON-RPC endpoint' },
  contracts: { type: 'string', value: 'JSON', description: '{"NodeRegistry","Assets","Tasks"} addresses' },
  host: { type: 'string', value: 'HOST', description: 'listen address (default 127.0.0.1)' },
  port: { type: 'string', value: 'N', description: 'listen port (default: a free port)' },
  'sim-roots': {
    type: 'string',
    value: 'HEX,...',
    description: 'trusted simulation root keys (development)',
  },
  'allow-sim': { type: 'boolean', description: 'accept sim evidence (development networks only)' },
  'local-network': {
    type: 'boolean',
    description: 'call peers at loopback, private and link-local addresses (local networks only)',
  },
  'tpm2-cas': {
    type: 'string',
    value: 'FILE,...',
    description: 'CA certificates (PEM or DER) trusted for TPM EK/AK certificates',
  },
  'tpm2-activators': {
    type: 'string',
    value: 'HEX,...',
    description: 'trusted tpm2 credential activator keys (Ed25519, hex)',
  },
  config: { type: 'string', value: 'FILE', description: 'JSON config file' },
};

/** Runs the daemon until SIGINT/SIGTERM (src/daemon/run.ts), printing its readiness line first. */
export async function runUntilSignal<R extends Record<string, unknown>>(
  ctx: CommandContext,
  daemon: Daemon<R>,
  text: (r: R) => string,
): Promise<CommandResult> {
  await serveUntilAborted(daemon, ctx.signal, (ready) => {
    ctx.stdout.write(ctx.json ? `${JSON.stringify(ready)}\n` : `${text(ready)}\n`);
  });
  return {};
}
