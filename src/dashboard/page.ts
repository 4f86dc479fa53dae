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
.banner { margin: 0; padding: 10px 16px; background: var(--bad); color: #fff; font-weight: 600; }
body.disconnected main { opacity: 0.55; }
tr.row:focus { outline: 2px solid var(--accent); outline-offset: -2px; }
caption { text-align: left; color: var(--muted); padding: 2px 0 4px; }
.cards { display: grid; gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .top { display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: baseline; }
ol.pipe { list-style: none; margin: 6px 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px; }
ol.pipe li { padding: 1px 8px; border-radius: 9px; background: #eef0f3; color: var(--muted); font-size: 12px; }
ol.pipe li.done { background: #e3f1e8; color: var(--ok); }
ol.pipe li.now { background: #e3ebf8; color: var(--accent); font-weight: 600; }
.due { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
progress { width: 260px; height: 12px; }
.overdue { color: var(--bad); font-weight: 600; }
button.link { font: inherit; color: var(--accent); background: none; border: 0; padding: 0; cursor: pointer; text-decoration: underline; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 12px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
svg .axis { stroke: var(--line); }
.legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; }
.committee { margin: 6px 0; }
`;

const SCRIPT = `
(function () {
  'use strict';
  var STATES = ['created', 'seeded', 'claimed', 'attesting', 'attested', 'running', 'completed', 'rejected', 'failed', 'expired'];
  var OPEN_STATES = ['created', 'seeded', 'claimed', 'attesting', 'attested', 'running', 'rejected'];
  // The stages an attempt goes through, as the timeline names them (src/protocol/stages.ts TASK_STAGES).
  var PIPE = ['created', 'seeded', 'claimed', 'evidence', 'vote', 'attested', 'keyReleased', 'running', 'completed'];
  var PIPE_LABEL = { created: 'created', seeded: 'seeded', claimed: 'claimed', evidence: 'evidence', vote: 'votes', attested: 'attested', keyReleased: 'keys released', running: 'running', completed: 'completed' };
  var DEADLINE_LABEL = { claim: 'claim deadline', evidence: 'evidence deadline', vote: 'vote deadline', run: 'run deadline', expiry: 'task expiry' };
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PALETTE = ['#2456a6', '#17693a', '#8a5a00', '#6b3fa0', '#0f7c8c', '#a0466b', '#4d5b2a', '#5b6470'];
  var POLL_MS = 2000;
  var FETCH_TIMEOUT_MS = 8000;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
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
  // A data table: caption, a header row of column headers in <thead>, the rows in <tbody>.
  function table(target, headers, rows, caption) {
    clear(target);
    var t = el('table'), thead = el('thead'), head = el('tr'), body = el('tbody');
    if (caption) t.appendChild(el('caption', null, caption));
    headers.forEach(function (h) { var th = el('th', null, h); th.setAttribute('scope', 'col'); head.appendChild(th); });
    thead.appendChild(head);
    t.appendChild(thead);
    rows.forEach(function (r) { body.appendChild(r); });
    if (rows.length === 0) {
      var tr = el('tr'), td = el('td', 'muted', 'none');
      td.setAttribute('colspan', String(headers.length));
      tr.appendChild(td);
      body.appendChild(tr);
    }
    t.appendChild(body);
    target.appendChild(t);
  }
  function secs(ms) {
    var s = Math.round(ms / 1000);
    return s < 120 ? s + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : Math.round(s / 3600) + ' h';
  }
  function ago(unix) {
    if (!unix) return 'never';
    return secs(Math.max(0, Date.now() - unix * 1000)) + ' ago';
  }
  function clock(unix) { return new Date(unix * 1000).toISOString().slice(11, 19); }
  function eth(wei) {
    try { var w = BigInt(wei); return (w / 1000000000000000n).toString() + ' mETH'; } catch (e) { return String(wei); }
  }
  async function get(path) {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, FETCH_TIMEOUT_MS) : null;
    try {
      var r = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store', signal: ctl ? ctl.signal : undefined });
      var body = await r.json();
      if (!r.ok) {
        var err = new Error((body && body.error && body.error.code) || ('HTTP ' + r.status));
        err.http = r.status;
        throw err;
      }
      return body;
    } catch (e) {
      if (e && e.http) throw e;
      throw new Error(e && e.name === 'AbortError' ? 'no answer in ' + FETCH_TIMEOUT_MS / 1000 + ' s' : 'unreachable');
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
  function selected() {
    var m = /^#task\\/([0-9]+)$/.exec(location.hash);
    return m ? m[1] : null;
  }
  function openTask(id) {
    if (location.hash === '#task/' + id) { focusDetail = true; refresh(); }
    else { focusDetail = true; location.hash = '#task/' + id; }
  }
  // Re-rendering replaces the rows: the row that had focus gets it back (same data-key).
  function focusedKey() {
    var a = document.activeElement;
    return a && a.getAttribute ? a.getAttribute('data-key') : null;
  }
  function restoreFocus(container, key) {
    if (!key || !container.getElementsByTagName) return;
    var rows = container.getElementsByTagName('tr');
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute('data-key') === key) { rows[i].focus(); return; }
    }
  }
  // Keyboard: Enter or Space opens the row's task; Up/Down/Home/End move between rows.
  function rowKeys(tr, open) {
    tr.setAttribute('tabindex', '0');
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', function (ev) {
      var to = null;
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); return; }
      if (ev.key === 'ArrowDown') to = tr.nextElementSibling;
      else if (ev.key === 'ArrowUp') to = tr.previousElementSibling;
      else if (ev.key === 'Home') to = tr.parentNode.firstElementChild;
      else if (ev.key === 'End') to = tr.parentNode.lastElementChild;
      if (to && to.getAttribute('tabindex') === '0') { ev.preventDefault(); to.focus(); }
    });
  }

  var conn = { state: 'connecting', lastOk: null };
  function setConnection(state, message) {
    conn.state = state;
    var c = $('conn'), banner = $('banner');
    if (state === 'live') {
      c.className = 'ok';
      c.textContent = 'live';
      banner.hidden = true;
      clear(banner);
    } else {
      c.className = 'bad';
      c.textContent = 'disconnected';
      banner.hidden = false;
      banner.textContent = message;
    }
    if (document.body) document.body.className = state === 'live' ? '' : 'disconnected';
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
      }), 'Registered nodes');
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
    var box = $('tasks');
    var key = focusedKey();
    table(box, ['task', 'status', 'attempt', 'app', 'datasets', 'executor', 'seats (pass/fail)', 'tau / threshold', 'created', 'outcome', 'end reason'],
      list.tasks.map(function (t) {
        var tr = el('tr', 'row' + (sel === t.taskId ? ' sel' : ''));
        tr.setAttribute('data-key', 'task-' + t.taskId);
        tr.setAttribute('data-status', t.status);
        tr.setAttribute('aria-label', 'task ' + t.taskId + ', ' + t.status + '; press Enter for its detail');
        if (sel === t.taskId) tr.setAttribute('aria-current', 'true');
        rowKeys(tr, function () { openTask(t.taskId); });
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
      }), 'Tasks, newest first: Enter opens a task, arrow keys move between rows');
    restoreFocus(box, key);
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

  // --- progress: the stages of the current attempt, the deadline of the current stage ----------

  // Each stage of the task's current attempt with its time since creation (first event of the stage).
  function pipeline(t) {
    var ol = el('ol', 'pipe');
    ol.setAttribute('aria-label', 'stages of attempt ' + t.attempt);
    var seen = {};
    var last = null;
    (t.timeline || []).forEach(function (s) {
      if (s.stage !== 'created' && s.attempt !== t.attempt) return;
      if (PIPE.indexOf(s.stage) < 0 || seen[s.stage]) return;
      seen[s.stage] = s;
      last = s.stage;
    });
    PIPE.forEach(function (p) {
      var s = seen[p];
      var li = el('li', s ? (p === last && t.status !== 'completed' ? 'now' : 'done') : null);
      li.setAttribute('data-stage', p);
      li.textContent = PIPE_LABEL[p] + (s && s.sinceCreatedMs != null ? ' +' + secs(s.sinceCreatedMs) : '');
      ol.appendChild(li);
    });
    return ol;
  }

  // A progress bar from the time the task entered its status to the current stage's deadline
  // (both chain time, from the API); overdue once the chain time passed it (timeout may be called).
  function deadlineBar(t, now) {
    var box = el('div', 'due');
    var d = t.stageDeadline;
    if (!d) { box.appendChild(el('span', 'muted', 'final: no deadline')); return box; }
    var from = t.stageSince != null ? t.stageSince : t.createdAt;
    var label = (DEADLINE_LABEL[d.kind] || d.kind) + ' at ' + clock(d.at) + ' (chain time)';
    var bar = el('progress');
    bar.setAttribute('max', '1000');
    if (now == null || from == null) {
      box.appendChild(el('span', 'muted', label + '; chain time unknown'));
      return box;
    }
    var span = Math.max(1, d.at - from);
    var frac = Math.min(1, Math.max(0, (now - from) / span));
    bar.setAttribute('value', String(Math.round(frac * 1000)));
    bar.setAttribute('aria-label', label);
    box.appendChild(bar);
    if (now > d.at) box.appendChild(el('span', 'overdue', label + ': overdue by ' + secs((now - d.at) * 1000) + '; anyone may call timeout'));
    else box.appendChild(el('span', null, label + ': ' + secs((d.at - now) * 1000) + ' left, ' + secs(Math.max(0, now - from) * 1000) + ' in this stage'));
    return box;
  }

  function renderLive(details, now) {
    var box = $('live');
    clear(box);
    if (details.length === 0) { box.appendChild(el('p', 'muted', 'no task in progress')); return; }
    details.forEach(function (t) {
      var card = el('div', 'card');
      card.setAttribute('data-task', t.taskId);
      card.setAttribute('data-status', t.status);
      var top = el('div', 'top');
      var open = el('button', 'link', 'Task #' + t.taskId);
      open.setAttribute('type', 'button');
      open.addEventListener('click', function () { openTask(t.taskId); });
      top.appendChild(open);
      top.appendChild(status(t.status));
      top.appendChild(el('span', 'muted', 'attempt ' + t.attempt));
      top.appendChild(el('span', 'muted', 'app ' + t.appId + ', datasets ' + t.datasetIds.join(', ')));
      if (t.executor) { var ex = el('span', 'muted', 'executor '); ex.appendChild(mono(t.executor)); top.appendChild(ex); }
      top.appendChild(el('span', 'muted', 'pass seats ' + t.passSeats + ' of threshold ' + t.threshold));
      card.appendChild(top);
      card.appendChild(pipeline(t));
      card.appendChild(deadlineBar(t, now));
      box.appendChild(card);
    });
  }

  // --- the committee: seats against the threshold --------------------------------------------

  function committee(y, votes) {
    var W = 420, H = 34, pad = 4, tau = Math.max(1, y.tau);
    var x = function (seats) { return pad + (W - 2 * pad) * Math.min(seats, tau) / tau; };
    var invalidPass = y.passSeats - y.validPassSeats;
    var fig = el('figure', 'committee');
    var desc = 'committee of ' + y.tau + ' seats: ' + y.validPassSeats + ' valid pass seats of threshold ' + y.threshold +
      (invalidPass > 0 ? ', ' + invalidPass + ' pass seats not counted' : '') + ', ' + y.failSeats + ' fail seats (rejects at ' + y.rejectAt + ')';
    var s = svg('svg', { width: W, height: H + 16, viewBox: '0 0 ' + W + ' ' + (H + 16), role: 'img', 'aria-label': desc });
    s.appendChild(svg('title', {}, desc));
    s.appendChild(svg('rect', { x: pad, y: 4, width: W - 2 * pad, height: H - 8, fill: '#eef0f3', stroke: '#d9dee4' }));
    s.appendChild(svg('rect', { x: pad, y: 4, width: x(y.validPassSeats) - pad, height: H - 8, fill: '#17693a', 'data-part': 'valid-pass' }));
    if (invalidPass > 0) {
      s.appendChild(svg('rect', { x: x(y.validPassSeats), y: 4, width: x(y.validPassSeats + invalidPass) - x(y.validPassSeats), height: H - 8, fill: '#e0a526', 'data-part': 'invalid-pass' }));
    }
    if (y.failSeats > 0) {
      var fw = x(y.failSeats) - pad;
      s.appendChild(svg('rect', { x: W - pad - fw, y: 4, width: fw, height: H - 8, fill: '#a32020', 'data-part': 'fail' }));
    }
    s.appendChild(svg('line', { x1: x(y.threshold), x2: x(y.threshold), y1: 0, y2: H, stroke: '#1d232a', 'stroke-width': 2 }));
    s.appendChild(svg('text', { x: Math.min(x(y.threshold) + 3, W - 150), y: H + 12 }, 'threshold ' + y.threshold));
    s.appendChild(svg('text', { x: pad, y: H + 12 }, '0'));
    s.appendChild(svg('text', { x: W - pad, y: H + 12, 'text-anchor': 'end' }, 'tau ' + y.tau));
    fig.appendChild(s);
    var voters = votes.length;
    fig.appendChild(el('figcaption', null, 'pass ' + y.validPassSeats + ' valid seat(s)' + (invalidPass > 0 ? ' + ' + invalidPass + ' not counted' : '') +
      ' / threshold ' + y.threshold + ' of tau ' + y.tau + '; fail ' + y.failSeats + ' seat(s), rejects at ' + y.rejectAt + '; ' + voters + ' vote(s)'));
    return fig;
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

  function renderDetail(t, now) {
    var box = $('detail');
    clear(box);
    box.hidden = false;
    var h = el('h2', null, 'Task #' + t.taskId + ' ');
    h.appendChild(status(t.status));
    var close = el('button', 'link', 'close (Esc)');
    close.setAttribute('type', 'button');
    close.addEventListener('click', closeDetail);
    h.appendChild(document.createTextNode(' '));
    h.appendChild(close);
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
    box.appendChild(pipeline(t));
    if (t.stageDeadline !== undefined) box.appendChild(deadlineBar(t, now));

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
      box.appendChild(committee(y, a.votes));
      var claims = el('div');
      table(claims, ['claim by', 'winner', 'VRF proof', 'block'], a.claims.map(function (c) {
        var tr = el('tr');
        cell(tr, mono(c.executor));
        cell(tr, c.winner ? el('strong', 'ok', 'winner') : (c.best ? 'was best' : ''));
        cell(tr, verdict(c.vrfProofValid));
        cell(tr, c.block);
        return tr;
      }), 'Claims, attempt ' + a.attempt);
      box.appendChild(claims);
      var votes = el('div', 'votes');
      table(votes, ['verifier', 'verdict', 'seats', 'max seats', 'eligible', 'VRF proof', 'seats check', 'counted', 'block'], a.votes.map(function (v) {
        var tr = el('tr');
        tr.setAttribute('data-verifier', String(v.verifier));
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
      }), 'Votes, attempt ' + a.attempt);
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
    }), 'Events of the task in chain order');
    box.appendChild(tl);
  }

  function closeDetail() {
    var id = selected();
    if (!id) return;
    location.hash = '#';
    focusRow = 'task-' + id;
  }

  // --- charts (inline SVG, from /api/stats) ---------------------------------------------------

  function chart(title, w, h) {
    var fig = el('figure');
    var s = svg('svg', { width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-label': title });
    s.appendChild(svg('title', {}, title));
    fig.appendChild(s);
    fig.appendChild(el('figcaption', null, title));
    return { fig: fig, svg: s };
  }

  function perMinuteChart(st) {
    var W = 360, H = 150, L = 28, B = 18, T = 8;
    var c = chart('Tasks ended per minute (last 30 min, chain time): completed, and failed or expired', W, H);
    c.fig.setAttribute('data-chart', 'per-minute');
    var m = st.perMinute;
    var max = 1;
    m.forEach(function (b) { max = Math.max(max, b.completed + b.ended); });
    var bw = m.length ? (W - L - 4) / m.length : 0;
    var y = function (n) { return (H - B - T) * n / max; };
    c.svg.appendChild(svg('line', { class: 'axis', x1: L, x2: W, y1: H - B, y2: H - B }));
    c.svg.appendChild(svg('text', { x: 2, y: T + 8 }, max));
    c.svg.appendChild(svg('text', { x: 2, y: H - B }, 0));
    m.forEach(function (b, i) {
      var x0 = L + i * bw;
      if (b.completed > 0) {
        var r = svg('rect', { x: x0 + 1, y: H - B - y(b.completed), width: Math.max(1, bw - 2), height: y(b.completed), fill: '#17693a' });
        r.appendChild(svg('title', {}, clock(b.minute).slice(0, 5) + ': ' + b.completed + ' completed'));
        c.svg.appendChild(r);
      }
      if (b.ended > 0) {
        var f = svg('rect', { x: x0 + 1, y: H - B - y(b.completed + b.ended), width: Math.max(1, bw - 2), height: y(b.ended), fill: '#a32020' });
        f.appendChild(svg('title', {}, clock(b.minute).slice(0, 5) + ': ' + b.ended + ' failed or expired'));
        c.svg.appendChild(f);
      }
    });
    if (m.length) {
      c.svg.appendChild(svg('text', { x: L, y: H - 4 }, clock(m[0].minute).slice(0, 5)));
      c.svg.appendChild(svg('text', { x: W, y: H - 4, 'text-anchor': 'end' }, clock(m[m.length - 1].minute).slice(0, 5)));
    }
    return c.fig;
  }

  function latencyChart(st) {
    var rows = st.stageLatency, W = 360, RH = 20, L = 78, H = rows.length * RH + 6;
    var c = chart('Latency by stage: mean time from the previous stage (block times, 1 s resolution)', W, H);
    c.fig.setAttribute('data-chart', 'latency');
    var max = 1000;
    rows.forEach(function (r) { max = Math.max(max, r.meanMs); });
    rows.forEach(function (r, i) {
      var y0 = 3 + i * RH;
      c.svg.appendChild(svg('text', { x: 0, y: y0 + 13 }, PIPE_LABEL[r.stage] || r.stage));
      var w = (W - L - 120) * r.meanMs / max;
      var bar = svg('rect', { x: L, y: y0 + 3, width: Math.max(r.samples ? 1 : 0, w), height: RH - 6, fill: '#2456a6' });
      bar.appendChild(svg('title', {}, r.stage + ': mean ' + r.meanMs + ' ms, max ' + r.maxMs + ' ms over ' + r.samples + ' attempt(s)'));
      c.svg.appendChild(bar);
      c.svg.appendChild(svg('text', { x: L + w + 4, y: y0 + 13 }, r.samples ? secs(r.meanMs) + ' (max ' + secs(r.maxMs) + ', n=' + r.samples + ')' : 'no data'));
    });
    return c.fig;
  }

  function stakeChart(st) {
    var W = 360, H = 150, L = 44, B = 18, T = 8;
    var c = chart('Node stake over time (mETH), with jail (red) and unjail (green) events', W, H);
    c.fig.setAttribute('data-chart', 'stake');
    var ev = st.nodeEvents;
    var legend = el('div', 'legend');
    if (ev.length === 0) {
      c.svg.appendChild(svg('text', { x: L, y: H / 2 }, 'no stake events indexed'));
      return c.fig;
    }
    var t0 = ev[0].time, t1 = Math.max(st.now || 0, ev[ev.length - 1].time, t0 + 1);
    var max = 1n;
    ev.forEach(function (e) { var v = BigInt(e.stake); if (v > max) max = v; });
    var milli = function (wei) { return Number(BigInt(wei) / 1000000000000000n); };
    var maxM = Math.max(1, milli(max.toString()));
    var x = function (t) { return L + (W - L - 6) * (t - t0) / (t1 - t0); };
    var y = function (wei) { return H - B - (H - B - T) * milli(wei) / maxM; };
    c.svg.appendChild(svg('line', { class: 'axis', x1: L, x2: W, y1: H - B, y2: H - B }));
    c.svg.appendChild(svg('text', { x: 0, y: T + 8 }, maxM));
    c.svg.appendChild(svg('text', { x: 0, y: H - B }, 0));
    c.svg.appendChild(svg('text', { x: L, y: H - 4 }, clock(t0)));
    c.svg.appendChild(svg('text', { x: W, y: H - 4, 'text-anchor': 'end' }, clock(t1)));
    var byNode = {}, order = [];
    ev.forEach(function (e) {
      var k = String(e.node).toLowerCase();
      if (!byNode[k]) { byNode[k] = []; order.push(k); }
      byNode[k].push(e);
    });
    order.forEach(function (k, i) {
      var colour = PALETTE[i % PALETTE.length], pts = [], prev = null;
      byNode[k].forEach(function (e) {
        if (prev !== null) pts.push(x(e.time) + ',' + y(prev));
        pts.push(x(e.time) + ',' + y(e.stake));
        prev = e.stake;
      });
      pts.push(x(t1) + ',' + y(prev));
      var line = svg('polyline', { points: pts.join(' '), fill: 'none', stroke: colour, 'stroke-width': 2 });
      line.appendChild(svg('title', {}, byNode[k][0].node + ': ' + eth(prev)));
      c.svg.appendChild(line);
      byNode[k].forEach(function (e) {
        if (e.kind !== 'slashed' && e.kind !== 'unjailed') return;
        var dot = svg('circle', { cx: x(e.time), cy: y(e.stake), r: 5, fill: e.kind === 'slashed' ? '#a32020' : '#17693a', 'data-kind': e.kind });
        dot.appendChild(svg('title', {}, e.node + (e.kind === 'slashed' ? ' slashed ' + eth(e.amount) + ' and jailed (task ' + e.taskId + ')' : ' unjailed') + ' at ' + clock(e.time)));
        c.svg.appendChild(dot);
      });
      var item = el('span');
      var sw = svg('svg', { width: 10, height: 10, 'aria-hidden': 'true' });
      sw.appendChild(svg('rect', { width: 10, height: 10, fill: colour }));
      item.appendChild(sw);
      item.appendChild(document.createTextNode(' '));
      item.appendChild(mono(byNode[k][0].node));
      var jails = byNode[k].filter(function (e) { return e.kind === 'slashed'; }).length;
      if (jails) item.appendChild(el('span', 'bad', ' ' + jails + ' jail(s)'));
      legend.appendChild(item);
    });
    c.fig.appendChild(legend);
    return c.fig;
  }

  function renderCharts(st) {
    var box = $('charts');
    clear(box);
    box.appendChild(perMinuteChart(st));
    box.appendChild(latencyChart(st));
    box.appendChild(stakeChart(st));
  }

  // --- polling -----------------------------------------------------------------------------

  var timer = null;
  var focusDetail = false;
  var focusRow = null;
  // One poll at a time: a refresh asked for while one runs (hash change, filter) runs right after it.
  var running = false;
  var again = false;
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    if (timer) { clearTimeout(timer); timer = null; }
    try {
      await poll();
    } finally {
      running = false;
      if (again) { again = false; refresh(); }
      else timer = setTimeout(refresh, POLL_MS);
    }
  }
  async function poll() {
    {
      var filter = $('filter').value;
      var q = '/api/tasks?limit=100' + (filter ? '&status=' + encodeURIComponent(filter) : '');
      var res;
      try {
        res = await Promise.all([get('/api/summary'), get('/api/nodes'), get(q), get('/api/assets'), get('/api/stats'),
          get('/api/tasks?status=' + OPEN_STATES.join(',') + '&limit=10')]);
      } catch (e) {
        setConnection('api', 'Disconnected: the dashboard does not answer (' + e.message + '). Retrying every ' + POLL_MS / 1000 +
          ' s' + (conn.lastOk ? '; what is shown is as of ' + conn.lastOk : '') + '.');
        return;
      }
      var summary = res[0];
      var now = summary.headTime != null ? summary.headTime : null;
      var live = [];
      for (var i = 0; i < res[5].tasks.length; i++) {
        try { live.push(await get('/api/tasks/' + res[5].tasks[i].taskId)); } catch (e) { live.push(res[5].tasks[i]); }
      }
      renderSummary(summary);
      renderLive(live, now);
      renderTasks(res[2]);
      renderCharts(res[4]);
      renderNodes(res[1].nodes);
      renderAssets(res[3]);
      var id = selected();
      if (id) {
        try { renderDetail(await get('/api/tasks/' + id), now); }
        catch (e) { clear($('detail')); $('detail').hidden = false; $('detail').appendChild(el('p', 'bad', 'task ' + id + ': ' + e.message)); }
        if (focusDetail && $('detail').focus) $('detail').focus();
      } else {
        $('detail').hidden = true;
        if (focusRow) restoreFocus($('tasks'), focusRow);
      }
      focusDetail = false;
      focusRow = null;
      conn.lastOk = new Date().toTimeString().slice(0, 8);
      if (summary.headBlock == null) {
        setConnection('chain', 'Disconnected: the chain does not answer. The index stops at block ' + summary.indexedBlock +
          '; retrying every ' + POLL_MS / 1000 + ' s.');
      } else {
        setConnection('live', '');
      }
    }
  }

  STATES.forEach(function (s) { var o = el('option', null, s); o.value = s; $('filter').appendChild(o); });
  $('filter').addEventListener('change', refresh);
  $('detail').addEventListener('keydown', function (ev) { if (ev.key === 'Escape') { ev.preventDefault(); closeDetail(); } });
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
<header><h1>Ferry</h1><div id="summary" class="kv"></div><span id="conn" class="muted" role="status">connecting</span></header>
<p id="banner" class="banner" role="alert" hidden></p>
<main>
<section aria-labelledby="live-h"><h2 id="live-h">Tasks in progress</h2><div id="live" class="cards"></div></section>
<section id="detail" tabindex="-1" aria-label="Task detail" hidden></section>
<section aria-labelledby="tasks-h"><h2 id="tasks-h">Tasks <span id="taskcount" class="muted"></span></h2>
<label class="muted">status <select id="filter"><option value="">all</option></select></label>
<div id="tasks"></div></section>
<section aria-labelledby="charts-h"><h2 id="charts-h">Activity</h2><div id="charts" class="charts"></div></section>
<section aria-labelledby="nodes-h"><h2 id="nodes-h">Nodes</h2><div id="nodes"></div></section>
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
