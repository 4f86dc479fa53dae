/**
 * The page's script, run in a VM against a minimal DOM that refuses `innerHTML`, fed API
 * payloads carrying markup in every chain-supplied string: the markup must end up as text,
 * never as elements, and the views (summary, nodes, tasks, detail with votes) must render.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createContext, runInContext } from 'node:vm';
import { PAGE_CSP, PAGE_HTML } from './page.ts';

class FakeNode {
  childNodes: FakeNode[] = [];
  parentNode: FakeNode | null = null;
  data = '';
  get firstChild(): FakeNode | null {
    return this.childNodes[0] ?? null;
  }
  appendChild(c: FakeNode): FakeNode {
    c.parentNode = this;
    this.childNodes.push(c);
    return c;
  }
  removeChild(c: FakeNode): FakeNode {
    this.childNodes = this.childNodes.filter((x) => x !== c);
    c.parentNode = null;
    return c;
  }
  get textContent(): string {
    return this.childNodes.map((c) => c.textContent).join('');
  }
  set textContent(v: string) {
    this.childNodes = [];
    const t = new FakeText(String(v));
    this.appendChild(t);
  }
}

class FakeText extends FakeNode {
  constructor(s: string) {
    super();
    this.data = s;
  }
  override get textContent(): string {
    return this.data;
  }
  override set textContent(v: string) {
    this.data = v;
  }
}

class FakeElement extends FakeNode {
  className = '';
  hidden = false;
  value = '';
  attributes = new Map<string, string>();
  listeners = new Map<string, () => void>();
  readonly tagName: string;
  constructor(tagName: string) {
    super();
    this.tagName = tagName;
  }
  setAttribute(k: string, v: string): void {
    this.attributes.set(k, v);
  }
  addEventListener(t: string, f: () => void): void {
    this.listeners.set(t, f);
  }
  set innerHTML(_v: string) {
    throw new Error('innerHTML used');
  }
}

const EVIL = '<img src=x onerror=alert(1)>';
const OPEN_QUERY = '/api/tasks?status=created,seeded,claimed,attesting,attested,running,rejected&limit=10';

const fixtures: Record<string, unknown> = {
  '/api/summary': {
    chainId: 31337,
    indexedBlock: '57',
    headBlock: '58',
    nodes: {
      total: 2,
      byRole: { executor: 1, verifier: 1 },
      byStatus: { active: 2, inactive: 0, jailed: 0 },
    },
    tasks: {
      total: 1,
      byStatus: {
        created: 0,
        seeded: 0,
        claimed: 0,
        attesting: 0,
        attested: 0,
        running: 0,
        completed: 1,
        rejected: 0,
        failed: 0,
        expired: 0,
      },
    },
    datasets: 1,
    apps: 1,
    indexer: { error: null },
    headTime: 1000,
  },
  '/api/nodes': {
    nodes: [
      {
        address: `0xabc${EVIL}`,
        roles: ['executor'],
        status: 'active',
        region: EVIL,
        teeKinds: ['sim'],
        stake: '1000000000000000000',
        unbonding: '0',
        endpoint: `http://x/${EVIL}`,
        operator: null,
        lastHeartbeat: 1,
        jailedUntil: 0,
        vrfPublicKey: '00',
        registeredBlock: '1',
        updatedBlock: '1',
      },
    ],
  },
  '/api/tasks?limit=100': {
    total: 1,
    tasks: [
      {
        taskId: '1',
        status: 'completed',
        attempt: 1,
        requester: '0x1',
        appId: '1',
        datasetIds: ['1'],
        executor: '0x2',
        tau: 3,
        threshold: 2,
        passSeats: 2,
        failSeats: 0,
        teeKinds: ['sim'],
        fee: '0',
        expiresAt: 0,
        createdBlock: '5',
        createdAt: 100,
        updatedBlock: '9',
        endReason: null,
      },
    ],
  },
  [OPEN_QUERY]: { total: 1, tasks: [{ taskId: '2', status: 'attesting' }] },
  '/api/tasks/2': {
    taskId: '2',
    status: 'attesting',
    attempt: 1,
    requester: '0x1',
    appId: '1',
    datasetIds: ['1'],
    executor: `0x2${EVIL}`,
    tau: 3,
    threshold: 2,
    passSeats: 1,
    failSeats: 0,
    fee: '0',
    createdAt: 960,
    endReason: null,
    stageDeadline: { kind: 'vote', at: 1020 },
    stageSince: 980,
    result: null,
    attempts: [],
    votes: [],
    timeline: [
      { stage: 'created', attempt: 1, block: '20', time: 960, sinceCreatedMs: 0 },
      { stage: 'seeded', attempt: 1, block: '21', time: 961, sinceCreatedMs: 1000 },
      { stage: 'claimed', attempt: 1, block: '22', time: 970, sinceCreatedMs: 10000 },
      { stage: 'evidence', attempt: 1, block: '23', time: 980, sinceCreatedMs: 20000 },
    ],
  },
  '/api/stats': {
    now: 1000,
    perMinute: [
      { minute: 900, completed: 0, ended: 1 },
      { minute: 960, completed: 2, ended: 0 },
    ],
    stageLatency: [
      { stage: 'seeded', samples: 1, meanMs: 1000, maxMs: 1000 },
      { stage: 'claimed', samples: 0, meanMs: 0, maxMs: 0 },
    ],
    nodeEvents: [
      {
        node: `0xabc${EVIL}`,
        kind: 'registered',
        stake: '2000000000000000000',
        amount: null,
        jailedUntil: null,
        taskId: null,
        block: '1',
        time: 900,
      },
      {
        node: `0xabc${EVIL}`,
        kind: 'slashed',
        stake: '1000000000000000000',
        amount: '1000000000000000000',
        jailedUntil: 2000,
        taskId: '1',
        block: '9',
        time: 950,
      },
    ],
  },
  '/api/assets': {
    datasets: [
      {
        datasetId: '1',
        owner: '0x3',
        ciphertextHash: 'aa',
        endpoint: EVIL,
        price: '0',
        revoked: false,
        uses: 1,
        policyEpoch: 0,
        policy: {
          anyApp: true,
          regions: [EVIL],
          teeKinds: ['sim'],
          tau: 3,
          threshold: 2,
          maxUses: 0,
          expiresAt: 0,
          restrictRequesters: false,
          appraisalPolicyHash: 'bb',
          appraisalPolicyName: EVIL,
        },
        tasks: 1,
      },
    ],
    apps: [
      {
        appId: '1',
        owner: '0x4',
        measurement: 'cc',
        ciphertextHash: 'dd',
        endpoint: EVIL,
        price: '0',
        revoked: true,
        tasks: 1,
      },
    ],
  },
  '/api/tasks/1': {
    taskId: '1',
    status: 'completed',
    attempt: 1,
    requester: '0x1',
    appId: '1',
    datasetIds: ['1'],
    executor: '0x2',
    tau: 3,
    threshold: 2,
    passSeats: 2,
    failSeats: 0,
    fee: '0',
    endReason: null,
    result: { location: EVIL, hash: 'ee', receiptHash: 'ff' },
    attempts: [
      {
        attempt: 1,
        outcome: 'completed',
        claims: [{ executor: '0x2', best: true, winner: true, vrfProofValid: true, block: '6' }],
        votes: [
          {
            verifier: '0x5',
            pass: true,
            seats: 2,
            maxSeats: 2,
            eligible: true,
            vrfProofValid: true,
            seatsValid: true,
            valid: true,
            invalidReason: null,
            block: '7',
          },
          {
            verifier: '0x6',
            pass: true,
            seats: 5,
            maxSeats: 1,
            eligible: true,
            vrfProofValid: true,
            seatsValid: false,
            valid: false,
            invalidReason: 'seats',
            block: '8',
          },
        ],
        tally: {
          tau: 3,
          threshold: 2,
          rejectAt: 2,
          passSeats: 7,
          failSeats: 0,
          validPassSeats: 2,
          validFailSeats: 0,
          invalidVotes: 1,
          thresholdReached: true,
        },
      },
    ],
    votes: [],
    timeline: [
      { stage: 'created', attempt: 1, block: '5', time: 100, sinceCreatedMs: 0 },
      { stage: 'evidence', attempt: 1, block: '6', time: 101, sinceCreatedMs: 1000, location: EVIL },
      { stage: 'completed', attempt: 1, block: '9', time: 103, sinceCreatedMs: 3000 },
    ],
  },
};

function render(hash: string, payloads: Record<string, unknown>) {
  const html = Buffer.from(PAGE_HTML).toString('utf8');
  const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(script);
  const ids = [
    'summary',
    'conn',
    'banner',
    'live',
    'nodes',
    'tasks',
    'taskcount',
    'filter',
    'detail',
    'charts',
    'datasets',
    'apps',
  ];
  const byId = new Map(ids.map((id) => [id, new FakeElement(id === 'filter' ? 'select' : 'div')]));
  const created: string[] = [];
  const document = {
    getElementById: (id: string) => byId.get(id) ?? null,
    createElement: (tag: string) => {
      created.push(tag);
      return new FakeElement(tag);
    },
    createElementNS: (ns: string, tag: string) => {
      assert.equal(ns, 'http://www.w3.org/2000/svg');
      created.push(tag);
      return new FakeElement(tag);
    },
    createTextNode: (s: string) => new FakeText(s),
  };
  const polls: (() => void)[] = [];
  const fetched: string[] = [];
  const ctx = createContext({
    document,
    Node: FakeNode,
    location: { hash },
    window: { addEventListener() {} },
    setTimeout: (fn: () => void) => {
      polls.push(fn);
      return polls.length;
    },
    clearTimeout: () => {},
    encodeURIComponent,
    fetch: async (path: string) => {
      fetched.push(path);
      const body = payloads[path];
      return body === undefined
        ? { ok: false, status: 404, json: async () => ({ error: { code: 'TASK_NOT_FOUND', message: 'x' } }) }
        : { ok: true, status: 200, json: async () => body };
    },
  });
  runInContext(script, ctx);
  return { byId, created, fetched, polls };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test('the page renders every view; chain strings stay text', async () => {
  const { byId, created, fetched } = render('#task/1', fixtures);
  await settle();
  assert.equal(byId.get('conn')?.textContent, 'live');
  assert.ok(fetched.includes('/api/tasks/1'));
  const allowed = new Set([
    ...['table', 'caption', 'thead', 'tbody', 'tr', 'th', 'td', 'span', 'strong', 'div', 'h2', 'h3', 'p'],
    ...['option', 'ol', 'li', 'progress', 'button', 'figure', 'figcaption'],
    ...['svg', 'title', 'rect', 'line', 'text', 'polyline', 'circle'],
  ]);
  for (const tag of created) assert.ok(allowed.has(tag), `created <${tag}>`);
  assert.ok(byId.get('nodes')?.textContent.includes(`http://x/${EVIL}`));
  assert.ok(byId.get('datasets')?.textContent.includes(EVIL));
  const detail = byId.get('detail');
  assert.equal(detail?.hidden, false);
  const text = detail?.textContent ?? '';
  assert.match(text, /Task #1/);
  assert.match(text, /Attempt 1 \u2014 completed/);
  assert.match(text, /valid 2\) of threshold 2/);
  assert.match(text, /INVALID/, 'the over-seated vote is shown as invalid');
  assert.match(text, /1 invalid vote/);
  assert.match(text, /no: seats/);
  assert.match(text, /\+3000 ms/);
  assert.match(byId.get('summary')?.textContent ?? '', /completed 1/);
});

test('an unknown selected task shows its error code, the rest still renders', async () => {
  const { byId } = render('#task/7', fixtures);
  await settle();
  assert.equal(byId.get('conn')?.textContent, 'live');
  assert.match(byId.get('detail')?.textContent ?? '', /task 7: TASK_NOT_FOUND/);
});

/** Every element under `n` (depth first) with the tag. */
function find(n: FakeNode, tag: string): FakeElement[] {
  const out: FakeElement[] = [];
  for (const c of n.childNodes) {
    if (c instanceof FakeElement && c.tagName === tag) out.push(c);
    out.push(...find(c, tag));
  }
  return out;
}

test('tasks in progress: each stage with its time, a progress bar against the deadline in chain time', async () => {
  const { byId, fetched } = render('', fixtures);
  await settle();
  assert.ok(fetched.includes(OPEN_QUERY));
  const live = byId.get('live');
  assert.ok(live);
  const text = live.textContent;
  assert.match(text, /Task #2/);
  assert.ok(text.includes(`0x2${EVIL}`.slice(0, 10)), 'the executor as text');
  // The stages reached, with their time since creation; the current one marked.
  const stages = find(live, 'li').map((li) => [
    li.attributes.get('data-stage'),
    li.className,
    li.textContent,
  ]);
  assert.deepEqual(stages.slice(0, 5), [
    ['created', 'done', 'created +0 s'],
    ['seeded', 'done', 'seeded +1 s'],
    ['claimed', 'done', 'claimed +10 s'],
    ['evidence', 'now', 'evidence +20 s'],
    ['vote', '', 'votes'],
  ]);
  // In the stage since 980, deadline 1020, chain time 1000: half way.
  const [bar] = find(live, 'progress');
  assert.equal(bar.attributes.get('value'), '500');
  assert.equal(bar.attributes.get('max'), '1000');
  assert.match(text, /vote deadline at 00:17:00 \(chain time\): 20 s left, 20 s in this stage/);
});

test('an overdue stage says so; the task detail shows the committee against the threshold', async () => {
  const late = structuredClone(fixtures);
  (late['/api/summary'] as { headTime: number }).headTime = 1030;
  const { byId } = render('#task/1', late);
  await settle();
  assert.match(byId.get('live')?.textContent ?? '', /overdue by 10 s; anyone may call timeout/);
  const detail = byId.get('detail');
  assert.ok(detail);
  const [fig] = find(detail, 'figure').filter((f) => f.className === 'committee');
  assert.ok(fig, 'committee view');
  const parts = new Map(find(fig, 'rect').map((r) => [r.attributes.get('data-part'), r]));
  // tau 3 over 412 px: 2 valid pass seats, 5 more not counted (capped at tau).
  assert.ok(parts.has('valid-pass') && parts.has('invalid-pass') && !parts.has('fail'));
  assert.match(fig.textContent, /pass 2 valid seat\(s\) \+ 5 not counted \/ threshold 2 of tau 3/);
  assert.match(fig.textContent, /threshold 2/);
  assert.match(detail.textContent, /Votes, attempt 1/);
});

test('charts are inline SVG drawn from /api/stats; chain strings in them stay text', async () => {
  const { byId, fetched } = render('', fixtures);
  await settle();
  assert.ok(fetched.includes('/api/stats'));
  const charts = byId.get('charts');
  assert.ok(charts);
  const figs = find(charts, 'figure').map((f) => f.attributes.get('data-chart'));
  assert.deepEqual(figs, ['per-minute', 'latency', 'stake']);
  const [perMinute, latency, stake] = find(charts, 'figure');
  // One bar per non-empty count: a failed minute, a completed minute.
  assert.deepEqual(
    find(perMinute, 'rect').map((r) => r.attributes.get('fill')),
    ['#a32020', '#17693a'],
  );
  assert.match(latency.textContent, /seeded.*1 s \(max 1 s, n=1\).*claimed.*no data/);
  const dots = find(stake, 'circle');
  assert.equal(dots.length, 1);
  assert.equal(dots[0].attributes.get('data-kind'), 'slashed');
  assert.match(dots[0].textContent, /slashed 1000 mETH and jailed \(task 1\)/);
  assert.equal(find(stake, 'polyline').length, 1);
  assert.ok(stake.textContent.includes('0xabc<img s'), 'the node address stays text');
});

test('the task table: header cells are column headers, rows take focus and name their task', async () => {
  const { byId } = render('', fixtures);
  await settle();
  const tasks = byId.get('tasks');
  assert.ok(tasks);
  for (const th of find(tasks, 'th')) assert.equal(th.attributes.get('scope'), 'col');
  assert.equal(find(tasks, 'thead').length, 1);
  const [row] = find(find(tasks, 'tbody')[0], 'tr');
  assert.equal(row.attributes.get('tabindex'), '0');
  assert.equal(row.attributes.get('data-key'), 'task-1');
  assert.ok(row.listeners.has('keydown') && row.listeners.has('click'));
});

test('an unreachable API shows the disconnected state, and it recovers', async () => {
  const payloads: Record<string, unknown> = {};
  const { byId, polls } = render('', payloads);
  await settle();
  assert.equal(byId.get('conn')?.textContent, 'disconnected');
  assert.equal(byId.get('banner')?.hidden, false);
  assert.match(byId.get('banner')?.textContent ?? '', /^Disconnected: the dashboard does not answer/);
  Object.assign(payloads, fixtures);
  polls.at(-1)?.();
  await settle();
  assert.equal(byId.get('conn')?.textContent, 'live');
  assert.equal(byId.get('banner')?.hidden, true);
});

test('a chain that does not answer (headBlock null) shows the disconnected state with the index kept', async () => {
  const down = structuredClone(fixtures);
  Object.assign(down['/api/summary'] as object, { headBlock: null, headTime: null });
  const { byId } = render('', down);
  await settle();
  assert.equal(byId.get('conn')?.textContent, 'disconnected');
  assert.match(
    byId.get('banner')?.textContent ?? '',
    /the chain does not answer\. The index stops at block 57/,
  );
  assert.match(byId.get('tasks')?.textContent ?? '', /#1/, 'the index is still shown');
  assert.match(byId.get('live')?.textContent ?? '', /chain time unknown/);
});

test('the CSP pins the inline script and style by hash and nothing else', () => {
  assert.match(
    PAGE_CSP,
    /^default-src 'none'; script-src 'sha256-[^']+'; style-src 'sha256-[^']+'; connect-src 'self'/,
  );
  assert.doesNotMatch(PAGE_CSP, /unsafe/);
});
