/**
 * The dashboard's HTTP routes (docs/protocol.md §13.9): the page at `/` and a read-only JSON
 * API under `/api/`. Every response carries `x-content-type-options: nosniff` and
 * `referrer-policy: no-referrer`; the page carries a strict Content-Security-Policy.
 *
 * Requests whose Host header does not name the loopback listener are refused
 * (PEER_BAD_REQUEST), so a web page elsewhere cannot read the API through DNS rebinding.
 * Bad query parameters are PEER_BAD_REQUEST (400); an unknown task is TASK_NOT_FOUND (404);
 * an unknown path is PEER_NOT_FOUND (404).
 */
import { type TaskState, TASK_STATES } from '../chain/index.ts';
import { FerryError } from '../kernel/index.ts';
import type { Route, RouteRequest, RouteResponse } from '../net/index.ts';
import type { Indexer } from './indexer.ts';
import { PAGE_CSP, PAGE_HTML } from './page.ts';

export const DEFAULT_TASK_LIMIT = 100;
export const MAX_TASK_LIMIT = 1000;

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export type RouteDeps = {
  indexer: Indexer;
  chainId: number;
  /** The current head block and its time (unix s), or null when the chain cannot be reached. */
  head: () => Promise<{ block: bigint; time: number } | null>;
  /** Host header values accepted (e.g. `127.0.0.1:8080`, `localhost:8080`). */
  allowedHosts: () => readonly string[];
};

function json(value: unknown, status = 200): RouteResponse {
  return { status, json: value, headers: COMMON_HEADERS };
}

function badQuery(message: string, hints: string[]): FerryError {
  return new FerryError('PEER_BAD_REQUEST', message, { hints });
}

/** Rejects query parameters other than `allowed`, and repeated ones. */
function onlyParams(req: RouteRequest, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const key of req.query.keys()) {
    if (!allowed.includes(key)) {
      throw badQuery(`unknown query parameter "${key.slice(0, 32)}"`, [
        `expected: ${allowed.length ? allowed.join(', ') : 'none'}`,
      ]);
    }
    if (seen.has(key)) throw badQuery(`query parameter "${key}" given twice`, ['give it once']);
    seen.add(key);
  }
}

/** Parses `status=` (comma-separated task states) of /api/tasks. */
export function parseStatuses(v: string | null): TaskState[] | undefined {
  if (v === null || v === '') return undefined;
  const out: TaskState[] = [];
  for (const s of v.split(',')) {
    if (!(TASK_STATES as readonly string[]).includes(s)) {
      throw badQuery('status: unknown task state', [
        `expected: ${TASK_STATES.join(', ')} (comma-separated)`,
        `got: ${JSON.stringify(s.slice(0, 32))}`,
      ]);
    }
    out.push(s as TaskState);
  }
  return out;
}

/** Parses `limit=` of /api/tasks: an integer 1..MAX_TASK_LIMIT. */
export function parseLimit(v: string | null): number {
  if (v === null) return DEFAULT_TASK_LIMIT;
  if (!/^[0-9]{1,7}$/.test(v) || Number(v) < 1 || Number(v) > MAX_TASK_LIMIT) {
    throw badQuery('limit: expected an integer from 1 to 1000', [`got: ${JSON.stringify(v.slice(0, 32))}`]);
  }
  return Number(v);
}

/** Parses a task id path segment: a decimal uint256. */
export function parseTaskId(v: string): bigint {
  if (!/^[0-9]{1,78}$/.test(v) || BigInt(v) >= 2n ** 256n) {
    throw badQuery('task id: expected a decimal integer', [`got: ${JSON.stringify(v.slice(0, 32))}`]);
  }
  return BigInt(v);
}

export function dashboardRoutes(d: RouteDeps): Route[] {
  const guard = (req: RouteRequest) => {
    const host = String(req.headers.host ?? '').toLowerCase();
    if (!d.allowedHosts().includes(host)) {
      throw new FerryError('PEER_BAD_REQUEST', 'unexpected Host header', {
        hints: ['the dashboard answers only requests addressed to its loopback listener'],
      });
    }
  };
  const route = (
    path: string,
    handler: (req: RouteRequest) => Promise<RouteResponse> | RouteResponse,
  ): Route => ({
    method: 'GET',
    path,
    auth: 'public',
    handler: (req) => {
      guard(req);
      return handler(req);
    },
  });
  return [
    route('/', (req) => {
      onlyParams(req, []);
      return {
        bytes: PAGE_HTML,
        contentType: 'text/html; charset=utf-8',
        headers: {
          ...COMMON_HEADERS,
          'content-security-policy': PAGE_CSP,
          'x-frame-options': 'DENY',
          'cross-origin-opener-policy': 'same-origin',
        },
      };
    }),
    route('/api/summary', async (req) => {
      onlyParams(req, []);
      const c = d.indexer.counts();
      const head = await d.head();
      return json({
        chainId: d.chainId,
        indexedBlock: d.indexer.indexedBlock.toString(),
        headBlock: head?.block.toString() ?? null,
        headTime: head?.time ?? null,
        nodes: c.nodes,
        tasks: c.tasks,
        datasets: c.datasets,
        apps: c.apps,
        indexer: { error: d.indexer.lastError },
      });
    }),
    route('/api/nodes', (req) => {
      onlyParams(req, []);
      return json({ nodes: d.indexer.nodes() });
    }),
    route('/api/assets', (req) => {
      onlyParams(req, []);
      return json({ datasets: d.indexer.datasets(), apps: d.indexer.apps() });
    }),
    route('/api/stats', async (req) => {
      onlyParams(req, []);
      const head = await d.head();
      return json(d.indexer.stats(head?.time ?? null));
    }),
    route('/api/tasks', (req) => {
      onlyParams(req, ['status', 'limit']);
      const statuses = parseStatuses(req.query.get('status'));
      const limit = parseLimit(req.query.get('limit'));
      return json(d.indexer.tasks({ statuses, limit }));
    }),
    route('/api/tasks/:id', (req) => {
      onlyParams(req, []);
      const id = parseTaskId(req.params.id);
      const t = d.indexer.task(id);
      if (!t) {
        throw new FerryError('TASK_NOT_FOUND', `task ${id} is not in the index`, {
          hints: [`indexed up to block ${d.indexer.indexedBlock}`, 'list tasks with GET /api/tasks'],
        });
      }
      return json(t);
    }),
  ];
}
