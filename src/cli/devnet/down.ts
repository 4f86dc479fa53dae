/** `ferry devnet down`: stops the running devnet through its pid file. */
import { join } from 'node:path';
import { stopDevnet } from '../../devnet/index.ts';
import { ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'devnet down',
  summary: 'stop the running local network',
  usage: 'devnet down [--json]',
  description: `
Sends SIGTERM to the "ferry devnet up" process named in $FERRY_HOME/devnet.pid and waits until
it has stopped everything it started (SIGKILL after 30 s), then stops every process recorded
there that is still running (what a killed "devnet up" left behind). JSON: {"stopped": true,
"pid"} (the pid of "devnet up")`,
  options: {},
  async run(ctx) {
    const pid = await stopDevnet(join(ferryHome(ctx.env), 'devnet.pid'), 30_000, ctx.signal);
    return { json: { stopped: true, pid }, text: `devnet (pid ${pid}) stopped` };
  },
});
