// The decision history table: one row per decision, newest first; a click opens the
// reason chain, the hook outcomes and the rest of the record.

import { h, replace } from './dom.js';
import { decisionKey } from './api.js';
import { localTime, fullTime, duration, replicas } from './format.js';
import { outcomeBadge, mainReason } from './state.js';

/** Renders the table into `tbody`, keeping rows that were open open. */
export function renderDecisions(tbody, decisions, open, { fresh = new Set() } = {}) {
  const rows = [];
  for (const d of decisions) {
    const id = decisionKey(d);
    const isOpen = open.has(id);
    const toggle = () => {
      if (open.has(id)) open.delete(id);
      else open.add(id);
      renderDecisions(tbody, decisions, open);
    };
    const change = d.finalReplicas !== null && d.finalReplicas !== undefined && d.currentReplicas !== null
      && d.finalReplicas !== d.currentReplicas;
    rows.push(h('tr', {
      class: `drow${isOpen ? ' open' : ''}${fresh.has(id) ? ' fresh' : ''}`, tabindex: '0', 'aria-expanded': String(isOpen),
      'data-id': id, 'data-codes': (Array.isArray(d.reasons) ? d.reasons : []).map((r) => r && r.code).join(' '),
      'data-outcome': d.outcome, onclick: toggle,
      onkeydown: (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          toggle();
          tbody.querySelector(`tr.drow[data-id="${CSS.escape(id)}"]`)?.focus();
        }
      },
    },
    h('td', { class: 'toggle', 'aria-hidden': 'true' }, isOpen ? '▾' : '▸'),
    h('td', { class: 'num', title: fullTime(d.time) }, localTime(d.time)),
    h('td', {}, runTypeLabel(d.runType)),
    h('td', {}, outcomeBadge(d)),
    h('td', { class: 'num reps' }, replicas(d.currentReplicas), h('span', { class: 'arrow' }, '→'),
      h('span', { class: change ? (d.finalReplicas > d.currentReplicas ? 'want-up' : 'want-down') : '' }, replicas(d.finalReplicas))),
    h('td', { class: 'num' }, replicas(d.rawEvaluation)),
    h('td', { class: 'why', title: mainReason(null, d) }, mainReason(null, d))));
    if (isOpen) rows.push(h('tr', { class: 'detail' }, h('td', { colspan: 7 }, detail(d))));
  }
  if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No decisions yet.')));
  replace(tbody, rows);
}

function runTypeLabel(t) {
  return { scaler: 'scheduled', api: 'API', api_dry_run: 'API dry run', override: 'override' }[t] || t || '—';
}

/** The expanded part of a decision row. */
export function detail(d) {
  const reasons = Array.isArray(d.reasons) ? d.reasons : [];
  const hooks = Array.isArray(d.hooks) ? d.hooks : [];
  const metrics = Array.isArray(d.metrics) ? d.metrics : [];
  return h('div', { class: 'decision-detail' },
    h('h3', {}, 'Reason chain'),
    chain(d, reasons),
    h('dl', { class: 'detail-grid' },
      h('dt', {}, 'Decided at'), h('dd', {}, fullTime(d.time)),
      h('dt', {}, 'Metrics'), h('dd', {}, metrics.length
        ? metrics.map((m, i) => [i ? h('br') : null, h('code', {}, `${m.resource}: ${m.value}`)])
        : h('span', { class: 'muted' }, 'none')),
      d.evaluation ? [h('dt', {}, 'Evaluation'), h('dd', {}, h('code', {}, JSON.stringify(d.evaluation)))] : null,
      h('dt', {}, 'Scale call'), h('dd', {}, d.scaled ? d.scaleResult || 'made' : 'not made'),
      d.error ? [h('dt', {}, 'Error'), h('dd', { class: 'status-bad' }, d.error)] : null,
      d.id ? [h('dt', {}, 'Decision id'), h('dd', { class: 'mono' }, String(d.id))] : null),
    h('h3', {}, `Hooks (${hooks.length})`),
    hooks.length ? hookTable(hooks) : h('p', { class: 'muted' }, 'No hooks ran (built-in evaluation or no stage reached).'));
}

function chain(d, reasons) {
  const items = [];
  if (d.rawEvaluation !== null && d.rawEvaluation !== undefined) {
    items.push(h('li', {}, h('span', { class: 'step' }, 'evaluate'),
      h('span', { class: 'fromto num' }, `→ ${d.rawEvaluation}`),
      h('div', {}, `The evaluation asked for ${d.rawEvaluation} replica${d.rawEvaluation === 1 ? '' : 's'}` +
        ` (the workload had ${replicas(d.currentReplicas)}).`)));
  }
  for (const r of reasons) {
    items.push(h('li', { 'data-code': r.code },
      h('span', { class: 'step' }, r.step),
      h('span', { class: 'code' }, r.code),
      h('span', { class: 'fromto num' }, `${r.from} → ${r.to}`),
      h('div', {}, r.message),
      r.detail ? h('div', { class: 'detail' }, detailText(r.detail)) : null));
  }
  if (!reasons.length && d.error) {
    items.push(h('li', {}, h('span', { class: 'step' }, 'failed'), h('div', { class: 'status-bad' }, d.error),
      h('div', { class: 'detail' }, 'The target holds its replicas; the next tick tries again.')));
  } else if (!reasons.length && d.finalReplicas !== null && d.finalReplicas !== undefined) {
    items.push(h('li', {}, h('span', { class: 'step' }, 'policy'),
      h('div', {}, 'No constraint applied: the evaluation is the decision.')));
  }
  if (d.finalReplicas !== null && d.finalReplicas !== undefined) {
    items.push(h('li', {}, h('span', { class: 'step' }, 'result'), h('span', { class: 'fromto num' }, `= ${d.finalReplicas}`),
      h('div', {}, d.outcome === 'shadow' ? 'Shadow mode: recorded, not scaled.'
        : d.scaled ? `Scaled: ${d.scaleResult || 'done'}.` : 'No scale call was needed.')));
  }
  return h('ol', { class: 'chain' }, items);
}

function detailText(detail) {
  switch (detail.kind) {
    case 'bounds':
      return `bounds ${detail.minReplicas}–${detail.maxReplicas}`;
    case 'sample':
      return `bounded by the recommendation of ${detail.replicas} at ${localTime(detail.at)}` +
        ` (window ${duration(detail.windowMs)}); lifts at ${localTime(detail.expiresAt)}`;
    case 'ratePolicy':
      return `rate policy ${detail.policyType} ${detail.value} per ${detail.periodSeconds}s` +
        ` (period started at ${detail.periodStartReplicas} replicas)`;
    case 'scaleUpCap':
      return `no behavior: the HPA's cap of max(${detail.factor} × current, ${detail.minimum}) per tick`;
    case 'prediction':
      return `${detail.decisionType} of the evaluation and ` + (detail.predictions || []).map((p) => (typeof p.replicas === 'number'
        ? `${p.name}: ${p.replicas}` : `${p.name}: ${p.note || 'not its tick'}`)).join(', ');
    case 'activation':
      return detail.valueMilli === undefined ? `no activation value; threshold ${detail.thresholdMilli / 1000}`
        : `activation value ${detail.valueMilli / 1000} against the threshold ${detail.thresholdMilli / 1000}`;
    case 'cooldown':
      return `inactive since ${localTime(detail.inactiveSince)}; cooldown ${duration(detail.cooldownMs)}, zero at ${localTime(detail.zeroAt)}`;
    case 'rateDisabled':
      return 'scaling in this direction is disabled by the profile (selectPolicy: Disabled)';
    case 'override':
      return `set by ${detail.setBy}: “${detail.reason}”${detail.until ? `, until ${localTime(detail.until)}` : ''}`;
    default:
      return JSON.stringify(detail);
  }
}

function hookTable(hooks) {
  return h('table', { class: 'hooks' },
    h('thead', {}, h('tr', {}, ['Stage', 'Kind', 'Status', 'Duration', 'Queued', 'Output / error'].map((c) => h('th', {}, c)))),
    h('tbody', {}, hooks.map((x) => {
      const failed = x.timedOut || x.error || (x.exitCode !== undefined && x.exitCode !== null && x.exitCode !== 0)
        || x.signal || (x.httpStatus && x.httpStatus >= 400);
      return h('tr', {},
        h('td', { class: 'mono' }, x.stage),
        h('td', {}, x.kind),
        h('td', { class: failed ? 'status-bad' : 'status-ok' }, hookStatus(x)),
        h('td', { class: 'num' }, duration(x.durationMs)),
        h('td', { class: 'num' }, x.queuedMs ? duration(x.queuedMs) : '—'),
        h('td', {}, x.error ? h('div', { class: 'status-bad' }, x.error) : null,
          x.stderr ? h('pre', { class: 'stderr' }, x.stderr) : null,
          !x.error && !x.stderr ? h('span', { class: 'muted' }, '—') : null));
    })));
}

function hookStatus(x) {
  if (x.timedOut) return 'timed out';
  if (x.signal) return `killed (signal ${x.signal})`;
  if (x.httpStatus) return `HTTP ${x.httpStatus}`;
  if (x.exitCode !== undefined && x.exitCode !== null) return `exit ${x.exitCode}`;
  return x.error ? 'failed' : 'ok';
}
