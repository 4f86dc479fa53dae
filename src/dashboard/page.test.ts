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
  const ids = ['summary', 'conn', 'nodes', 'tasks', 'taskcount', 'filter', 'detail', 'datasets', 'apps'];
  const byId = new Map(ids.map((id) => [id, new FakeElement(id === 'filter' ? 'select' : 'div')]));
  const created: string[] = [];
  const document = {
    getElementById: (id: string) => byId.get(id) ?? null,
    createElement: (tag: string) => {
      created.push(tag);
      return new FakeElement(tag);
    },
    createTextNode: (s: string) => new FakeText(s),
  };
  const fetched: string[] = [];
  const ctx = createContext({
    document,
    Node: FakeNode,
    location: { hash },
    window: { addEventListener() {} },
    setTimeout: () => 0,
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
  return { byId, created, fetched };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test('the page renders every view; chain strings stay text', async () => {
  const { byId, created, fetched } = render('#task/1', fixtures);
  await settle();
  assert.equal(byId.get('conn')?.textContent, 'live');
  assert.ok(fetched.includes('/api/tasks/1'));
  const allowed = new Set(['table', 'tr', 'th', 'td', 'span', 'strong', 'div', 'h2', 'h3', 'p', 'option']);
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

test('an unreachable API marks the page offline', async () => {
  const { byId } = render('', {});
  await settle();
  assert.match(byId.get('conn')?.textContent ?? '', /^offline/);
});

test('the CSP pins the inline script and style by hash and nothing else', () => {
  assert.match(
    PAGE_CSP,
    /^default-src 'none'; script-src 'sha256-[^']+'; style-src 'sha256-[^']+'; connect-src 'self'/,
  );
  assert.doesNotMatch(PAGE_CSP, /unsafe/);
});
