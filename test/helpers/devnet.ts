/** Shared helpers for the devnet suites (test/devnet-*.test.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChainWriter, connect, writer } from '../../src/chain/index.ts';
import { loadProfileSecrets } from '../../src/cli/profile/store.ts';
import type { Devnet } from '../../src/devnet/up.ts';
import type { Logger } from '../../src/kernel/index.ts';

/** A logger that drops everything (the daemons log to files under the devnet home). */
export const quiet: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

export type Net = { devnet: Devnet; home: string; env: NodeJS.ProcessEnv };

/** A chain writer acting as profile `name` of the devnet. */
export async function chainFor(net: Net, name: string): Promise<ChainWriter> {
  const { info } = net.devnet;
  return writer(
    await connect({ rpcUrl: info.rpcUrl, privateKey: loadProfileSecrets(net.home, name).evmPrivateKey }),
    info.contracts,
  );
}

/** Prints the tail of every child's log (FERRY_TEST_LOG_TAIL chars, default 2500) to stderr. */
export function dumpLogs(net: Net): void {
  for (const c of net.devnet.children()) {
    try {
      const text = readFileSync(join(net.home, 'logs', `${c.name}.log`), 'utf8');
      process.stderr.write(
        `--- ${c.name}\n${text.slice(-(Number(process.env.FERRY_TEST_LOG_TAIL) || 2500))}\n`,
      );
    } catch {
      // no log
    }
  }
}
