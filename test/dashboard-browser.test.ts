/**
 * The dashboard as users see it: Debian's chromium driven by playwright-core (no browser
 * download) against `bin/ferry dashboard` on a devnet (sim TEE, 1 executor, 3 verifiers) while
 * a task runs. The page loads without console errors or CSP violations; the task appears in
 * "tasks in progress" with its stages and a progress bar against the current stage's deadline
 * (the verifiers are frozen so it waits in `attesting`), then moves to completed; the task
 * table is reached with Tab, Enter opens the task (its committee view and votes, as on chain),
 * Escape closes it; the charts show the completion. The dashboard reads the chain through a
 * TCP relay the test owns: when the relay stops (refused) or hangs (never answers), the page
 * shows "disconnected" (the index kept), and recovers when it returns, the index moving on;
 * when the dashboard itself stops, the page says so.
 *
 * Screenshots go to a temporary folder, logged with t.diagnostic and kept. Without chromium
 * (FERRY_CHROMIUM, default /usr/bin/chromium) the test is skipped, except under CI, where it
 * fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { examplePath } from '../examples/index.ts';
import { connect, getFerryEvents, getTask, reader } from '../src/chain/index.ts';
import { FERRY, ferry, freeze, type Net, thaw, waitFor, withDevnet } from './helpers/devnet.ts';

const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP =
  !HAVE_CHROMIUM && !process.env.CI
    ? `no chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`
    : false;

/**
 * A TCP relay to the chain's RPC that the test can stop (connections refused), make silent
 * (connections accepted, never answered) and restart, on the same port.
 */
class Relay {
  readonly #target: { host: string; port: number };
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(targetUrl: string) {
    const u = new URL(targetUrl);
    this.#target = { host: u.hostname, port: Number(u.port) };
  }

  /** `silent`: connections are accepted and never answered (a chain that hangs). */
  async start(mode: 'relay' | 'silent' = 'relay'): Promise<void> {
    const server = createServer((client) => {
      if (mode === 'silent') {
        this.#sockets.add(client);
        client.on('close', () => this.#sockets.delete(client));
        client.on('error', () => client.destroy());
        client.resume();
        return;
      }
      const upstream = tcpConnect(this.#target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    for (const x of this.#sockets) x.destroy();
    if (s) await new Promise((r) => s.close(r));
  }
}

/** `bin/ferry dashboard --json` reading the chain at `rpcUrl`; resolves with it and its URL. */
async function startDashboard(
  net: Net,
  rpcUrl: string,
  contracts: unknown,
): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(
    FERRY,
    ['dashboard', '--rpc', rpcUrl, '--contracts', JSON.stringify(contracts), '--json'],
    {
      env: { ...net.env, FERRY_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`dashboard exited with ${code}`)));
  });
  return { proc, url: JSON.parse(line).url };
}

async function stopProcess(proc: ChildProcess | null): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

/** Waits (polling the page) until the expression `js`, evaluated in the page, is truthy. */
async function pageWait<T>(page: Page, what: string, js: string, timeoutMs = 120_000): Promise<T> {
  return waitFor(what, async () => (await page.evaluate(js)) as T, timeoutMs, 250);
}

/** The connection state the page shows (`#conn`). */
const CONN = "document.getElementById('conn').textContent";

test('the dashboard in chromium: a task in progress, its detail by keyboard, charts, the disconnected state', {
  skip: SKIP,
  timeout: 600_000,
}, async (t) => {
  assert.ok(
    HAVE_CHROMIUM,
    `CI is set and chromium is missing at ${CHROMIUM}: .ci/run installs Debian's chromium`,
  );
  const shots = mkdtempSync(join(tmpdir(), 'ferry-dashboard-screenshots-'));
  t.diagnostic(`screenshots: ${shots}`);
  let n = 0;
  const shot = async (page: Page, name: string) => {
    const file = join(shots, `${String(++n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    t.diagnostic(`screenshot ${file}`);
  };

  await withDevnet({ executors: 1, verifiers: 3 }, async (net) => {
    const { info } = net.devnet;
    const relay = new Relay(info.rpcUrl);
    await relay.start();
    let dash: ChildProcess | null = null;
    let browser: Browser | null = null;
    const verifiers = info.nodes.filter((x) => x.roles.includes('verifier')).map((x) => x.name);
    try {
      const d = await startDashboard(net, `http://127.0.0.1:${relay.port}`, info.contracts);
      dash = d.proc;
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));

      await page.goto(d.url);
      await pageWait(page, 'the page to be live', `${CONN} === 'live'`);
      await pageWait(page, 'the devnet nodes', `document.querySelectorAll('#nodes tbody tr').length === 4`);
      assert.equal(await page.isHidden('#banner'), true);
      assert.deepEqual(errors, []);
      await shot(page, 'loaded');

      // bob publishes csv-stats, alice adds a dataset, carol starts a task.
      writeFileSync(join(net.home, 'cities.csv'), 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n-3,Oslo\n');
      const app = await ferry(['app', 'publish', examplePath('csv-stats'), '--profile', 'bob'], net.env);
      assert.equal(app.code, 0, app.stderr);
      const ds = await ferry(
        [
          ...['dataset', 'add', join(net.home, 'cities.csv'), '--region', 'DE'],
          ...['--allow-app', app.json.measurement, '--committee', '3000', '--threshold', '2/3'],
          ...['--profile', 'alice'],
        ],
        net.env,
      );
      assert.equal(ds.code, 0, ds.stderr);
      // Frozen verifiers do not vote: the task waits in `attesting` while the page is looked at.
      freeze(net, verifiers);
      let frozen = true;
      try {
        const run = await ferry(
          ['task', 'run', '--app', app.json.appId, '--dataset', ds.json.datasetId, '--profile', 'carol'],
          net.env,
        );
        assert.equal(run.code, 0, run.stderr);
        const taskId: string = run.json.taskId;
        const card = `#live .card[data-task="${taskId}"]`;
        await page.waitForSelector(card, { timeout: 120_000 });
        await page.waitForSelector(`${card}[data-status="attesting"]`, { timeout: 120_000 });
        // Its stages so far, with their times; a progress bar against the vote deadline.
        const done = await page.$$eval(`${card} ol.pipe li.done, ${card} ol.pipe li.now`, (els) =>
          els.map((e) => e.getAttribute('data-stage')),
        );
        assert.deepEqual(done, ['created', 'seeded', 'claimed', 'evidence']);
        assert.match(
          (await page.textContent(`${card} li[data-stage="seeded"]`)) ?? '',
          /^seeded \+[0-9]+ s$/,
        );
        const bar = await page.$eval(`${card} progress`, (p) => ({
          value: Number(p.getAttribute('value')),
          max: Number(p.getAttribute('max')),
          label: p.getAttribute('aria-label'),
        }));
        assert.equal(bar.max, 1000);
        assert.ok(bar.value >= 0 && bar.value <= 1000);
        assert.match(bar.label ?? '', /^vote deadline at [0-9:]+ \(chain time\)$/);
        assert.match((await page.textContent(`${card} .due`)) ?? '', /vote deadline/);
        await shot(page, 'task-in-progress');
        thaw(net, verifiers);
        frozen = false;

        // It moves on to completed: the row in the task table, and out of "in progress".
        const row = `#tasks tbody tr[data-key="task-${taskId}"]`;
        await page.waitForSelector(`${row}[data-status="completed"]`, { timeout: 180_000 });
        await page.waitForSelector(card, { state: 'detached', timeout: 30_000 });
        assert.equal(
          (await getTask(reader(await connect({ rpcUrl: info.rpcUrl }), info.contracts), BigInt(taskId)))
            ?.status,
          'completed',
        );

        // Keyboard: Tab from the status filter reaches the task's row; Enter opens the detail.
        await page.focus('#filter');
        await page.keyboard.press('Tab');
        assert.equal(
          await page.evaluate("document.activeElement?.getAttribute('data-key')"),
          `task-${taskId}`,
        );
        await page.keyboard.press('Enter');
        await page.waitForSelector('#detail:not([hidden]) .committee svg', { timeout: 30_000 });
        assert.equal(await page.evaluate(`location.hash`), `#task/${taskId}`);
        assert.equal(await page.evaluate(`document.activeElement?.id`), 'detail');

        // The votes as on chain, the committee's valid pass seats against the threshold.
        const c = reader(await connect({ rpcUrl: info.rpcUrl }), info.contracts);
        const task = await getTask(c, BigInt(taskId));
        assert.ok(task);
        const chainVotes = (
          await getFerryEvents(c, task.createdBlock, await c.public.getBlockNumber())
        ).filter((e) => e.eventName === 'VoteCast' && e.args.taskId === BigInt(taskId));
        assert.ok(chainVotes.length >= 2);
        await pageWait(
          page,
          'every vote in the detail',
          `document.querySelectorAll('#detail .votes tbody tr[data-verifier]').length`,
          30_000,
        ).then((count) => assert.equal(count, chainVotes.length));
        const shown = await page.$$eval('#detail .votes tbody tr[data-verifier]', (rows) =>
          rows.map((r) => [r.getAttribute('data-verifier')?.toLowerCase(), r.cells[7]?.textContent]),
        );
        assert.deepEqual(
          shown,
          chainVotes.map((e) => [String(e.args.verifier).toLowerCase(), 'yes']),
        );
        const committee = (await page.textContent('#detail .committee figcaption')) ?? '';
        assert.match(committee, new RegExp(`threshold ${task.threshold} of tau ${task.tau}`));
        assert.match((await page.textContent('#detail')) ?? '', /threshold reached by valid votes/);
        assert.equal(
          await page.$$eval('#detail .committee rect[data-part="valid-pass"]', (r) => r.length),
          1,
        );
        await shot(page, 'task-detail');

        // Escape closes it; the focus returns to the row.
        await page.keyboard.press('Escape');
        await page.waitForSelector('#detail', { state: 'hidden', timeout: 30_000 });
        await pageWait(
          page,
          'the focus back on the row',
          `document.activeElement?.getAttribute('data-key') ?? null`,
          30_000,
        ).then((key) => assert.equal(key, `task-${taskId}`));

        // Charts: the completion in the per-minute chart, the stage latencies, the stake lines.
        await pageWait(
          page,
          'a completed bar',
          `document.querySelectorAll('[data-chart="per-minute"] rect[fill="#17693a"]').length > 0`,
          30_000,
        );
        assert.match((await page.textContent('[data-chart="latency"]')) ?? '', /completed.*n=1/);
        assert.equal(await page.$$eval('[data-chart="stake"] polyline', (l) => l.length), 4);
        const charts = join(shots, `${String(++n).padStart(2, '0')}-charts.png`);
        await page.locator('#charts').screenshot({ path: charts });
        t.diagnostic(`screenshot ${charts}`);
        assert.deepEqual(errors, [], 'no console errors while connected');
      } finally {
        if (frozen) thaw(net, verifiers);
      }

      // The chain stops (the dashboard's RPC refuses connections): disconnected, index kept.
      await relay.stop();
      await pageWait(page, 'the disconnected state', `${CONN} === 'disconnected'`, 60_000);
      const stopped = /the chain does not answer\. The index stops at block ([0-9]+)/.exec(
        (await page.textContent('#banner')) ?? '',
      );
      assert.ok(stopped, 'the banner names the last indexed block');
      assert.equal(await page.isVisible('#banner'), true);
      assert.ok((await page.$$('#tasks tbody tr.row')).length >= 1, 'the index is still shown');
      await shot(page, 'chain-disconnected');
      await relay.start();
      await pageWait(page, 'the page live again', `${CONN} === 'live'`, 60_000);
      assert.equal(await page.isHidden('#banner'), true);
      await shot(page, 'reconnected');

      // The chain hangs (connections accepted, never answered): disconnected too, then back.
      await relay.stop();
      await relay.start('silent');
      await pageWait(page, 'the disconnected state (hanging chain)', `${CONN} === 'disconnected'`, 60_000);
      assert.match((await page.textContent('#banner')) ?? '', /the chain does not answer/);
      await relay.stop();
      await relay.start();
      await pageWait(page, 'the page live again', `${CONN} === 'live'`, 60_000);
      // The index follows the chain again: past the block it stopped at.
      await pageWait(
        page,
        'the index to move on',
        `Number(/block ([0-9]+)/.exec(document.getElementById('summary').textContent)[1]) > ${stopped[1]}`,
        60_000,
      );

      // The dashboard itself stops: the page says it does not answer.
      await stopProcess(dash);
      dash = null;
      await pageWait(page, 'the API disconnected state', `${CONN} === 'disconnected'`, 60_000);
      assert.match((await page.textContent('#banner')) ?? '', /the dashboard does not answer/);
      await shot(page, 'dashboard-stopped');
    } finally {
      await browser?.close();
      await stopProcess(dash);
      await relay.stop();
    }
  });
});
