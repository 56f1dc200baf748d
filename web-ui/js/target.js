// The target view: header with state and numbers, the replica and metric charts, the
// decision history, the override panel, the stabilisation state and the parsed spec.

import * as api from './api.js';
import { h, replace, toast } from './dom.js';
import { relative, fullTime, replicas, timeZone } from './format.js';
import { targetBadges, mainReason } from './state.js';
import { replicaChart, metricChart, chartRows } from './chart.js';
import { renderDecisions } from './decisions.js';
import { renderOverride } from './override.js';
import { renderSpec, renderStabilisation } from './panels.js';
import { renderWhatIf } from './whatif.js';
import { needsToken, tokenGate } from './auth.js';

const HISTORY = 200;

/** Renders one target into `root`; returns its teardown. */
export function renderTarget(root, key, { stream }) {
  let target = null;
  let decisions = [];
  /** Every tick of the last day (the series), for the charts. */
  let points = [];
  let nextBefore = null;
  let charts = [];
  let overrideSig = null;
  /** The last "What if…" replay, drawn over the replica chart. */
  let replay = null;
  let whatIfShown = false;
  let stopped = false;
  const open = new Set();
  const fresh = new Set();

  const head = h('div', { class: 'target-head' });
  const errorBox = h('div');
  const chartBox = h('div', { class: 'chart-box', id: 'replica-chart', role: 'img', 'aria-label': 'Replicas over time' });
  const metricBox = h('div', { class: 'chart-box', id: 'metric-chart' });
  const tbody = h('tbody');
  const olderButton = h('button', { type: 'button', onclick: loadOlder }, 'Load older decisions');
  const decisionCount = h('span', { class: 'muted' });
  const overrideBody = h('div', { class: 'panel-body', id: 'override-panel' });
  const stabBody = h('div', { class: 'panel-body' });
  const specBody = h('div', { class: 'panel-body' });
  const whatIfBody = h('div', { class: 'panel-body', id: 'whatif-panel' });
  const swatch = (color, dashed) => h('span', { class: 'key-swatch', style: dashed
    ? `background: repeating-linear-gradient(90deg, ${color} 0 4px, transparent 4px 7px); height: 3px; vertical-align: 2px`
    : `background:${color}` });

  replace(root, h('div', { class: 'loading muted' }, 'Loading…'));

  function layout() {
    replace(root, head, errorBox,
      h('div', { class: 'target-grid' },
        h('div', { class: 'col' },
          h('section', { class: 'panel', 'aria-labelledby': 'h-replicas' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-replicas' }, 'Replicas over time'),
              h('span', { class: 'right muted' }, `times in ${timeZone}`)),
            chartBox,
            h('div', { class: 'chart-note' },
              h('span', {}, swatch('rgba(86,180,233,.45)'), 'held by a stabilisation window (from the evaluation to the value let through)'),
              h('span', {}, swatch('rgba(204,121,167,.35)'), 'override active'),
              h('span', {}, swatch('#8a96a3', true), 'min / max from the annotations'),
              h('span', {}, swatch('#009E73', true), 'what-if replay'))),
          h('section', { class: 'panel', 'aria-labelledby': 'h-metrics' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-metrics' }, 'Metric values'),
              h('span', { class: 'right muted' }, 'as the metric stage reported them (first number of each value)')),
            metricBox),
          h('section', { class: 'panel', 'aria-labelledby': 'h-decisions' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-decisions' }, 'Decisions'), decisionCount,
              h('span', { class: 'right muted' }, 'click a row for its reason chain and hooks')),
            h('div', { class: 'decisions-scroll' },
              h('table', { class: 'dtable', id: 'decisions' },
                h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Time'), h('th', {}, 'Run'), h('th', {}, 'Outcome'),
                  h('th', {}, 'Replicas'), h('th', { title: 'What the evaluation asked for, before policy' }, 'Raw'),
                  h('th', {}, 'Why'))),
                tbody)),
            h('div', { class: 'table-foot' }, olderButton, h('span', {}, 'Newest first')))),
        h('div', { class: 'col' },
          h('section', { class: 'panel', 'aria-labelledby': 'h-override' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-override' }, 'Override')), overrideBody),
          h('section', { class: 'panel', 'aria-labelledby': 'h-whatif' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-whatif' }, 'What if…')), whatIfBody),
          h('section', { class: 'panel', 'aria-labelledby': 'h-stab' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-stab' }, 'Stabilisation')), stabBody),
          h('section', { class: 'panel', 'aria-labelledby': 'h-spec' },
            h('div', { class: 'panel-head' }, h('h2', { id: 'h-spec' }, 'Spec')), specBody))));
  }

  function renderHead() {
    const t = target;
    const d = t.lastDecision;
    const spec = t.spec && typeof t.spec.minReplicas === 'number' ? t.spec : null;
    const stat = (label, value, title) => h('div', { class: 'stat', title }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
    replace(head,
      h('div', { class: 'target-title' },
        h('div', { class: 'path' }, `${t.namespace} · ${t.kind}`),
        h('h1', {}, h('span', { id: 'target-name' }, t.name), h('span', { class: 'badges', id: 'target-badges' }, targetBadges(t, 4))),
        h('div', { class: 'muted', style: 'margin-top:4px' }, mainReason(t))),
      h('div', { class: 'stats' },
        stat('Current', h('span', { id: 'stat-current' }, replicas(t.currentReplicas)), 'Replicas the workload has now'),
        stat('Desired', h('span', { id: 'stat-desired' }, replicas(t.desiredReplicas)), 'Replicas the last decision asked for'),
        stat('Bounds', spec ? h('span', {}, `${spec.minReplicas}–${spec.maxReplicas}`) : '—', 'min–max from the annotations'),
        stat('Interval', spec ? String(spec.interval) : '—', 'Tick period'),
        stat('Last decision', d ? h('span', { title: fullTime(d.time) }, relative(d.time)) : '—', d ? fullTime(d.time) : 'none yet'),
        h('div', { class: 'stat stat-action' }, h('button', {
          type: 'button', id: 'dry-run', onclick: dryRun, disabled: t.state === 'invalid' || t.state === 'conflict',
          title: 'Runs the metric and evaluate stages and the policy now, as the CPA API’s dry run: nothing is scaled and the stabilisation state is left alone',
        }, 'Evaluate now (dry run)'))));
    replace(errorBox, t.error ? h('div', { class: 'error-box', role: 'alert', id: 'target-error' },
      h('strong', {}, t.state === 'invalid' ? 'Invalid annotations — this target is never scaled.'
        : t.state === 'conflict' ? 'Conflict — ' : 'Error — '),
      h('span', {}, t.error)) : null);
  }

  function renderSide(force) {
    const sig = JSON.stringify(target.override || null);
    if (force || sig !== overrideSig) {
      overrideSig = sig;
      renderOverride(overrideBody, target, refresh);
    }
    renderStabilisation(stabBody, target);
    renderSpec(specBody, target);
    // The form keeps what the reader typed: rendered once per page.
    if (!whatIfShown) {
      whatIfShown = true;
      renderWhatIf(whatIfBody, target, (res) => {
        replay = res;
        // For the browser test: what the chart was handed.
        if (window.__scalehub) window.__scalehub.lastReplay = res;
        for (const c of charts) c.update();
      });
    }
  }

  function renderTable() {
    renderDecisions(tbody, decisions, open, { fresh });
    fresh.clear();
    olderButton.hidden = !nextBefore;
    decisionCount.textContent = `${decisions.length.toLocaleString()} shown`;
  }

  function buildCharts() {
    for (const c of charts) c.destroy();
    charts = [];
    const get = () => ({
      decisions: chartRows(decisions, points),
      spec: target.spec,
      overrides: overridePeriods(),
      replay,
    });
    charts.push(replicaChart(chartBox, get));
    const m = metricChart(metricBox, get);
    if (m) charts.push(m);
    else replace(metricBox, h('div', { class: 'empty' }, 'No numeric metric values recorded yet.'));
  }

  function overridePeriods() {
    const seen = new Set();
    const list = [];
    for (const o of [target.override, ...(target.overrideHistory || [])]) {
      // The active override (from memory, no id) is also in the history: one period each.
      if (!o || seen.has(o.createdAt)) continue;
      seen.add(o.createdAt);
      list.push(o);
    }
    return list;
  }

  async function load() {
    try {
      const [t, page, series] = await Promise.all([
        api.get(api.targetPath(key)),
        api.get(`${api.targetPath(key)}/decisions`, { limit: HISTORY }),
        api.get(`${api.targetPath(key)}/series`).catch(() => ({ points: [] })),
      ]);
      if (stopped) return;
      target = t;
      decisions = page.items || [];
      points = series.points || [];
      nextBefore = page.nextBefore ?? null;
      layout();
      renderHead();
      renderSide(true);
      renderTable();
      buildCharts();
    } catch (e) {
      if (stopped) return;
      if (needsToken(e)) {
        tokenGate(root, e, load);
        return;
      }
      replace(root, h('div', { class: 'panel empty' },
        h('h1', {}, e.status === 404 ? 'No such target' : 'Could not load the target'),
        h('p', {}, `${key.namespace} / ${key.kind} / ${key.name}: ${e.message}`),
        h('p', {}, h('a', { href: '/', 'data-link': true }, '← back to the fleet'))));
    }
  }

  async function dryRun(ev) {
    const button = ev.currentTarget;
    button.disabled = true;
    try {
      // A dry run runs the target's hooks, so it needs a token that may write: the session's,
      // or the one typed into the override form.
      const typed = document.getElementById('ov-token');
      const token = (typed && typed.value.trim()) || undefined;
      const res = await api.write('POST', `${api.targetPath(key)}/evaluation`, undefined, token, { dry_run: 'true' });
      toast(`Dry run: the evaluation asks for ${res.targetReplicas} replica${res.targetReplicas === 1 ? '' : 's'} now (nothing scaled).`, 'ok');
      refresh();
    } catch (e) {
      toast(`Dry run failed: ${e.message}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  /** Re-reads the target and the newest decisions (after a write, or now and then). */
  async function refresh() {
    try {
      const since = points.length ? points[points.length - 1].time + 1 : undefined;
      const [t, page, series] = await Promise.all([
        api.get(api.targetPath(key)),
        api.get(`${api.targetPath(key)}/decisions`, { limit: 50 }),
        api.get(`${api.targetPath(key)}/series`, since === undefined ? {} : { from: since }).catch(() => ({ points: [] })),
      ]);
      if (stopped || !target) return;
      target = t;
      merge(page.items || []);
      // A page left open keeps one day of ticks, like the first load.
      const dayAgo = Date.now() - 86400000;
      points = points.concat(series.points || []).filter((p) => p.time >= dayAgo);
      renderHead();
      renderSide(false);
      renderTable();
      for (const c of charts) c.update();
    } catch {
      // The next refresh or stream event brings it back.
    }
  }

  /** Adds decisions, newest first; a stored row replaces the streamed copy of itself. */
  function merge(newer) {
    const byKey = new Map(decisions.map((d) => [api.decisionKey(d), d]));
    for (const d of newer) {
      const k = api.decisionKey(d);
      const had = byKey.get(k);
      if (!had) fresh.add(k);
      if (!had || (!had.id && d.id)) byKey.set(k, d);
    }
    decisions = [...byKey.values()].sort((a, b) => b.time - a.time || b.id - a.id);
  }

  async function loadOlder() {
    if (!nextBefore) return;
    olderButton.disabled = true;
    try {
      const page = await api.get(`${api.targetPath(key)}/decisions`, { limit: HISTORY, before: nextBefore });
      merge(page.items || []);
      fresh.clear();
      nextBefore = page.nextBefore ?? null;
      renderTable();
      for (const c of charts) c.update();
    } finally {
      olderButton.disabled = false;
    }
  }

  const same = (k) => k && k.namespace === key.namespace && k.name === key.name && kindMatches(k.kind);
  const kindMatches = (kind) => !target || kind === target.kind;
  const unsubscribe = stream.subscribe((type, data) => {
    if (type === 'resync') {
      refresh();
      return;
    }
    if (!target || !same(api.eventKey(data))) return;
    if (type === 'decision') {
      merge([data]);
      target = { ...target, lastDecision: data, desiredReplicas: data.finalReplicas ?? target.desiredReplicas };
      renderHead();
      renderTable();
      for (const c of charts) c.update();
      // Override set/cleared/expired decisions change the panel too.
      if (data.runType === 'override') refresh();
    } else if (type === 'target') {
      target = { ...target, ...data, lastDecision: data.lastDecision ?? target.lastDecision };
      renderHead();
      renderSide(false);
    }
  });
  const poll = setInterval(refresh, 15000);

  load();
  return () => {
    stopped = true;
    unsubscribe();
    clearInterval(poll);
    for (const c of charts) c.destroy();
  };
}

