/**
 * The dashboard's single HTML page: inline CSS and a small script, no framework, no external
 * assets, no build step. The script polls the JSON API every 2 s and builds the DOM with
 * `textContent` and `setAttribute` only (never `innerHTML`): addresses, endpoints and policy
 * names come from the chain and are untrusted. The Content-Security-Policy allows exactly the
 * inline script and style below, by their SHA-256 hashes, and connections to the same origin.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { --fg: #1d232a; --muted: #5b6470; --line: #d9dee4; --bg: #f6f7f9; --ok: #17693a; --bad: #a32020; --warn: #8a5a00; --accent: #2456a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 10px 16px; background: #fff; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0 12px 0 0; }
main { padding: 12px 16px; display: grid; gap: 16px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow-x: auto; }
h2 { font-size: 15px; margin: 0 0 8px; }
h3 { font-size: 14px; margin: 12px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
tr.row { cursor: pointer; }
tr.row:hover, tr.sel { background: #eef3fb; }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; }
.muted { color: var(--muted); }
.pill { display: inline-block; padding: 0 7px; border-radius: 9px; background: #e8ebef; margin-right: 4px; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.warn { color: var(--warn); }
.st-completed, .st-attested, .st-active { color: var(--ok); font-weight: 600; }
.st-failed, .st-expired, .st-rejected, .st-jailed { color: var(--bad); font-weight: 600; }
.st-running, .st-attesting, .st-claimed, .st-seeded, .st-created { color: var(--accent); font-weight: 600; }
#conn.bad { font-weight: 600; }
.kv { display: flex; flex-wrap: wrap; gap: 4px 18px; }
select { font: inherit; }
`;

const SCRIPT = `
(function () {
  'use strict';
  var STATES = ['created', 'seeded', 'claimed', 'attesting', 'attested', 'running', 'completed', 'rejected', 'failed', 'expired'];
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function short(s) {
    s = String(s == null ? '' : s);
    return s.length > 16 ? s.slice(0, 10) + '\\u2026' + s.slice(-4) : s;
  }
  function mono(text, full) {
    var e = el('span', 'mono', short(text));
    if (full !== false && text != null) e.setAttribute('title', String(text));
    return e;
  }
  function status(s) { return el('span', 'st-' + String(s).replace(/[^a-z-]/g, ''), s); }
  function verdict(v) {
    if (v === true) return el('span', 'ok', 'valid');
    if (v === false) return el('span', 'bad', 'INVALID');
    return el('span', 'warn', 'unchecked');
  }
  function cell(row, content) {
    var td = el('td');
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content == null ? '' : String(content);
    row.appendChild(td);
    return td;
  }
  function table(target, headers, rows) {
    clear(target);
    var t = el('table'), head = el('tr');
    headers.forEach(function (h) { head.appendChild(el('th', null, h)); });
    t.appendChild(head);
    rows.forEach(function (r) { t.appendChild(r); });
    if (rows.length === 0) {
      var tr = el('tr'), td = el('td', 'muted', 'none');
      td.setAttribute('colspan', String(headers.length));
      tr.appendChild(td);
      t.appendChild(tr);
    }
    target.appendChild(t);
  }
  function ago(unix) {
    if (!unix) return 'never';
    var s = Math.max(0, Math.round(Date.now() / 1000 - unix));
    return s < 120 ? s + ' s ago' : s < 7200 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago';
  }
  function eth(wei) {
    try { var w = BigInt(wei); return (w / 1000000000000000n).toString() + ' mETH'; } catch (e) { return String(wei); }
  }
  async function get(path) {
    var r = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    var body = await r.json();
    if (!r.ok) throw new Error((body && body.error && body.error.code) || ('HTTP ' + r.status));
    return body;
  }
  function selected() {
    var m = /^#task\\/([0-9]+)$/.exec(location.hash);
    return m ? m[1] : null;
  }

  function renderSummary(s) {
    var box = $('summary');
    clear(box);
    function item(label, value) {
      var d = el('span');
      d.appendChild(el('span', 'muted', label + ' '));
      d.appendChild(typeof value === 'string' || typeof value === 'number' ? el('strong', null, value) : value);
      box.appendChild(d);
    }
    item('block', String(s.indexedBlock) + (s.headBlock != null ? ' / ' + s.headBlock : ''));
    item('chain', String(s.chainId));
    var roles = el('span');
    Object.keys(s.nodes.byRole).forEach(function (r) { roles.appendChild(el('span', 'pill', r + ' ' + s.nodes.byRole[r])); });
    Object.keys(s.nodes.byStatus).forEach(function (r) {
      if (s.nodes.byStatus[r] > 0) roles.appendChild(el('span', 'pill', r + ' ' + s.nodes.byStatus[r]));
    });
    item('nodes ' + s.nodes.total, roles);
    var ts = el('span');
    STATES.forEach(function (st) {
      var n = s.tasks.byStatus[st] || 0;
      if (n > 0) { var p = el('span', 'pill'); p.appendChild(status(st)); p.appendChild(document.createTextNode(' ' + n)); ts.appendChild(p); }
    });
    item('tasks ' + s.tasks.total, ts);
    item('datasets', s.datasets);
    item('apps', s.apps);
    if (s.indexer && s.indexer.error) item('indexer', el('span', 'bad', s.indexer.error.code));
  }

  function renderNodes(nodes) {
    table($('nodes'), ['address', 'roles', 'status', 'region', 'TEE', 'stake', 'endpoint', 'operator', 'heartbeat'],
      nodes.map(function (n) {
        var tr = el('tr');
        cell(tr, mono(n.address));
        cell(tr, n.roles.join(', '));
        var st = status(n.status);
        if (n.status === 'jailed') {
          st.appendChild(document.createTextNode(' until ' + new Date(n.jailedUntil * 1000).toISOString() +
            (n.jailedTask ? ' (task ' + n.jailedTask + ')' : '')));
        }
        cell(tr, st);
        cell(tr, n.region);
        cell(tr, n.teeKinds.join(', '));
        cell(tr, eth(n.stake));
        cell(tr, el('span', 'mono', n.endpoint));
        cell(tr, n.operator ? mono(n.operator) : '');
        cell(tr, ago(n.lastHeartbeat));
        return tr;
      }));
  }

  // How the app ended (from the receipt): a completed task whose app did not exit 0 is not a success.
  function outcome(t) {
    if (!t.outcome) return '';
    var ok = t.outcome === 'exit' && t.appExitCode === 0;
    var text = t.outcome === 'exit' ? 'exit ' + t.appExitCode : t.outcome === 'trap' ? 'app trapped' : 'hit ' + t.limitHit + ' limit';
    return el('span', ok ? 'ok' : 'bad', text);
  }

  function renderTasks(list) {
    var sel = selected();
    table($('tasks'), ['task', 'status', 'attempt', 'app', 'datasets', 'executor', 'seats (pass/fail)', 'tau / threshold', 'created', 'outcome', 'end reason'],
      list.tasks.map(function (t) {
        var tr = el('tr', 'row' + (sel === t.taskId ? ' sel' : ''));
        tr.addEventListener('click', function () { location.hash = '#task/' + t.taskId; });
        cell(tr, '#' + t.taskId);
        cell(tr, status(t.status));
        cell(tr, t.attempt);
        cell(tr, t.appId);
        cell(tr, t.datasetIds.join(', '));
        cell(tr, t.executor ? mono(t.executor) : '');
        cell(tr, t.passSeats + ' / ' + t.failSeats);
        cell(tr, t.tau + ' / ' + t.threshold);
        cell(tr, t.createdAt ? ago(t.createdAt) : 'block ' + t.createdBlock);
        cell(tr, outcome(t));
        cell(tr, t.endReason || '');
        return tr;
      }));
    $('taskcount').textContent = list.total + ' total';
  }

  function renderAssets(a) {
    table($('datasets'), ['dataset', 'owner', 'regions', 'TEE', 'tau / threshold', 'appraisal policy', 'uses', 'tasks', 'revoked'],
      a.datasets.map(function (d) {
        var tr = el('tr');
        cell(tr, '#' + d.datasetId);
        cell(tr, mono(d.owner));
        cell(tr, d.policy.regions.join(', ') || 'any');
        cell(tr, d.policy.teeKinds.join(', '));
        cell(tr, d.policy.tau + ' / ' + d.policy.threshold);
        cell(tr, d.policy.appraisalPolicyName || mono(d.policy.appraisalPolicyHash));
        cell(tr, d.uses + (d.policy.maxUses ? ' of ' + d.policy.maxUses : ''));
        cell(tr, d.tasks);
        cell(tr, d.revoked ? el('span', 'bad', 'revoked') : 'no');
        return tr;
      }));
    table($('apps'), ['app', 'owner', 'measurement', 'price', 'tasks', 'revoked'],
      a.apps.map(function (x) {
        var tr = el('tr');
        cell(tr, '#' + x.appId);
        cell(tr, mono(x.owner));
        cell(tr, mono(x.measurement));
        cell(tr, eth(x.price));
        cell(tr, x.tasks);
        cell(tr, x.revoked ? el('span', 'bad', 'revoked') : 'no');
        return tr;
      }));
  }

  function stageDetail(s) {
    var skip = { stage: 1, attempt: 1, block: 1, time: 1, sinceCreatedMs: 1 };
    var parts = [];
    Object.keys(s).forEach(function (k) {
      if (skip[k] || s[k] === null || s[k] === undefined || s[k] === '') return;
      var v = Array.isArray(s[k]) ? s[k].join(',') : String(s[k]);
      parts.push(k + '=' + (v.length > 24 ? short(v) : v));
    });
    return parts.join('  ');
  }

  function renderDetail(t) {
    var box = $('detail');
    clear(box);
    box.hidden = false;
    var h = el('h2', null, 'Task #' + t.taskId + ' ');
    h.appendChild(status(t.status));
    box.appendChild(h);
    var kv = el('div', 'kv');
    function pair(k, v) { var s = el('span'); s.appendChild(el('span', 'muted', k + ' ')); s.appendChild(v instanceof Node ? v : el('span', null, v)); kv.appendChild(s); }
    pair('attempt', String(t.attempt));
    pair('requester', mono(t.requester));
    pair('app', String(t.appId));
    pair('datasets', t.datasetIds.join(', '));
    pair('tau', String(t.tau));
    pair('threshold', String(t.threshold));
    pair('fee', eth(t.fee));
    if (t.outcome) pair('outcome', outcome(t));
    if (t.endReason) pair('end reason', el('span', 'bad', t.endReason));
    if (t.result) pair('result', el('span', 'mono', t.result.location));
    box.appendChild(kv);

    t.attempts.forEach(function (a) {
      var y = a.tally;
      box.appendChild(el('h3', null, 'Attempt ' + a.attempt + ' \\u2014 ' + a.outcome));
      var line = el('div', 'kv');
      line.appendChild(el('span', null, 'pass seats ' + y.passSeats + ' (valid ' + y.validPassSeats + ') of threshold ' + y.threshold));
      line.appendChild(el('span', null, 'fail seats ' + y.failSeats + ' (rejects at ' + y.rejectAt + ')'));
      line.appendChild(el('span', null, 'tau ' + y.tau));
      line.appendChild(y.thresholdReached ? el('span', 'ok', 'threshold reached by valid votes') : el('span', 'warn', 'threshold not reached by valid votes'));
      if (y.invalidVotes > 0) line.appendChild(el('span', 'bad', y.invalidVotes + ' invalid vote(s)'));
      box.appendChild(line);
      var claims = el('div');
      table(claims, ['claim by', 'winner', 'VRF proof', 'block'], a.claims.map(function (c) {
        var tr = el('tr');
        cell(tr, mono(c.executor));
        cell(tr, c.winner ? el('strong', 'ok', 'winner') : (c.best ? 'was best' : ''));
        cell(tr, verdict(c.vrfProofValid));
        cell(tr, c.block);
        return tr;
      }));
      box.appendChild(claims);
      var votes = el('div');
      table(votes, ['verifier', 'verdict', 'seats', 'max seats', 'eligible', 'VRF proof', 'seats check', 'counted', 'block'], a.votes.map(function (v) {
        var tr = el('tr');
        cell(tr, mono(v.verifier));
        cell(tr, v.pass ? el('span', 'ok', 'pass') : el('span', 'bad', 'fail'));
        cell(tr, v.seats);
        cell(tr, v.maxSeats == null ? '?' : v.maxSeats);
        cell(tr, verdict(v.eligible));
        cell(tr, verdict(v.vrfProofValid));
        cell(tr, verdict(v.seatsValid));
        cell(tr, v.valid ? el('span', 'ok', 'yes') : el('span', 'bad', 'no: ' + (v.invalidReason || 'unchecked')));
        cell(tr, v.block);
        return tr;
      }));
      box.appendChild(votes);
    });

    box.appendChild(el('h3', null, 'Timeline'));
    var tl = el('div');
    table(tl, ['+ms since created', 'stage', 'attempt', 'block', 'detail'], t.timeline.map(function (s) {
      var tr = el('tr');
      cell(tr, s.sinceCreatedMs == null ? '?' : '+' + s.sinceCreatedMs + ' ms');
      cell(tr, el('strong', null, s.stage));
      cell(tr, s.attempt == null ? '' : s.attempt);
      cell(tr, s.block);
      cell(tr, el('span', 'mono', stageDetail(s)));
      return tr;
    }));
    box.appendChild(tl);
  }

  var timer = null;
  async function refresh() {
    if (timer) { clearTimeout(timer); timer = null; }
    var conn = $('conn');
    try {
      var filter = $('filter').value;
      var q = '/api/tasks?limit=100' + (filter ? '&status=' + encodeURIComponent(filter) : '');
      var res = await Promise.all([get('/api/summary'), get('/api/nodes'), get(q), get('/api/assets')]);
      renderSummary(res[0]);
      renderNodes(res[1].nodes);
      renderTasks(res[2]);
      renderAssets(res[3]);
      var id = selected();
      if (id) {
        try { renderDetail(await get('/api/tasks/' + id)); }
        catch (e) { clear($('detail')); $('detail').hidden = false; $('detail').appendChild(el('p', 'bad', 'task ' + id + ': ' + e.message)); }
      } else {
        $('detail').hidden = true;
      }
      conn.className = 'ok';
      conn.textContent = 'live';
    } catch (e) {
      conn.className = 'bad';
      conn.textContent = 'offline: ' + e.message;
    } finally {
      timer = setTimeout(refresh, 2000);
    }
  }

  STATES.forEach(function (s) { var o = el('option', null, s); o.value = s; $('filter').appendChild(o); });
  $('filter').addEventListener('change', refresh);
  window.addEventListener('hashchange', refresh);
  refresh();
})();
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ferry dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Ferry</h1><div id="summary" class="kv"></div><span id="conn" class="muted">connecting</span></header>
<main>
<section><h2>Nodes</h2><div id="nodes"></div></section>
<section><h2>Tasks <span id="taskcount" class="muted"></span></h2>
<label class="muted">status <select id="filter"><option value="">all</option></select></label>
<div id="tasks"></div></section>
<section id="detail" hidden></section>
<section><h2>Datasets</h2><div id="datasets"></div><h2>Apps</h2><div id="apps"></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

function sha256Source(s: string): string {
  return `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;
}

/** The page, UTF-8. */
export const PAGE_HTML: Uint8Array = new Uint8Array(Buffer.from(HTML, 'utf8'));

/** The Content-Security-Policy sent with the page: only its own inline script and style run. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256Source(SCRIPT)}`,
  `style-src ${sha256Source(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
