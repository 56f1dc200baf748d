// The target page's charts (uPlot): replicas over time, with the stabilisation hold,
// the min/max bounds and override periods drawn under the lines; and the metric values.

import uPlot from '/vendor/uplot-1.6.32/uPlot.esm.js';
import { metricNumber } from './format.js';
import { overrideKind } from './override.js';
import { chartable } from './rows.js';

export { chartRows } from './rows.js';

/** Series colours: Okabe–Ito, in an order where neighbours stay distinct for every vision type. */
export const PALETTE = ['#0072B2', '#E69F00', '#CC79A7', '#009E73', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
const CURRENT = '#0072B2';
const DESIRED = '#E69F00';
const RAW = '#CC79A7';
const HOLD = 'rgba(86, 180, 233, 0.28)';
const OVERRIDE = 'rgba(204, 121, 167, 0.13)';
const OVERRIDE_EDGE = 'rgba(204, 121, 167, 0.9)';

/** A what-if replay's curve. */
const REPLAY = '#009E73';
/** The predictive models' combination with the evaluation. */
const PREDICTED = '#7b3fb5';
const stepped = uPlot.paths.stepped({ align: 1 });

/** The stabilise step of a decision, if it acted: `from` is what it got, `to` what it let through. */
function hold(d) {
  return (Array.isArray(d.reasons) ? d.reasons : []).find((r) => r && r.step === 'stabilise') || null;
}

function sizeOf(el, height) {
  return { width: Math.max(320, Math.floor(el.clientWidth || 800) - 8), height };
}

/** Keeps a chart as wide as its box. */
function autosize(u, el, height) {
  const ro = new ResizeObserver(() => u.setSize(sizeOf(el, height)));
  ro.observe(el);
  return () => ro.disconnect();
}

/** The replicas chart. `get()` returns the current {decisions, spec, overrides}; call `update()` after changes. */
export function replicaChart(el, get) {
  const height = 260;
  let rows = [];
  let ctx = get();
  // A predictive target also shows what its models and the evaluation combined to.
  const predictive = Boolean(ctx.spec && ctx.spec.predictive);

  function data() {
    ctx = get();
    rows = chartable(ctx.decisions);
    const columns = [
      rows.map((d) => d.time / 1000),
      rows.map((d) => d.currentReplicas),
      rows.map((d) => d.finalReplicas),
      rows.map((d) => (d.rawEvaluation === null || d.rawEvaluation === undefined ? null : d.rawEvaluation)),
    ];
    if (predictive) columns.push(rows.map((d) => (typeof d.predicted === 'number' ? d.predicted : null)));
    return columns;
  }

  function drawUnder(u) {
    const { ctx: c } = u;
    const { left, top, width, height: h } = u.bbox;
    const x = (t) => u.valToPos(t, 'x', true);
    const y = (v) => u.valToPos(v, 'y', true);
    c.save();
    c.beginPath();
    c.rect(left, top, width, h);
    c.clip();
    // Override periods: full-height tint with an edge at the start.
    const xmin = u.scales.x.min;
    const xmax = u.scales.x.max;
    for (const o of ctx.overrides || []) {
      const start = o.createdAt / 1000;
      const endMs = o.endedAt ?? o.until ?? Date.now();
      const end = Math.min(endMs, o.until ?? endMs) / 1000;
      if (end < xmin || start > xmax) continue;
      const x0 = Math.max(left, x(start));
      const x1 = Math.min(left + width, x(end));
      c.fillStyle = OVERRIDE;
      c.fillRect(x0, top, Math.max(1, x1 - x0), h);
      c.fillStyle = OVERRIDE_EDGE;
      c.fillRect(x0, top, 2 * devicePixelRatio, h);
      c.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      const text = `override: ${overrideLabel(o)}`;
      // Keep the label inside the plot even when the period starts near its right edge.
      const tx = Math.max(left + 4, Math.min(x0 + 5 * devicePixelRatio, left + width - c.measureText(text).width - 4));
      c.fillStyle = '#8a3569';
      c.fillText(text, tx, top + 13 * devicePixelRatio);
    }
    // Stabilisation hold: between what the window let through and what the evaluation wanted.
    c.fillStyle = HOLD;
    rows.forEach((d, i) => {
      const r = hold(d);
      if (!r) return;
      const x0 = x(d.time / 1000);
      const next = rows[i + 1];
      const x1 = next ? x(next.time / 1000) : x0 + 6 * devicePixelRatio;
      const y0 = y(Math.max(r.from, r.to));
      const y1 = y(Math.min(r.from, r.to));
      c.fillRect(x0, y0, Math.max(2, x1 - x0), Math.max(2, y1 - y0));
    });
    // A what-if replay: its replica curve, stepped and dashed.
    const replayed = ctx.replay && Array.isArray(ctx.replay.ticks) ? ctx.replay.ticks : [];
    if (replayed.length) {
      c.save();
      c.setLineDash([6 * devicePixelRatio, 3 * devicePixelRatio]);
      c.lineWidth = 2 * devicePixelRatio;
      c.strokeStyle = REPLAY;
      c.beginPath();
      replayed.forEach((t, i) => {
        const px = x(t.time / 1000);
        const py = y(t.replicas);
        if (i === 0) {
          c.moveTo(px, py);
        } else {
          c.lineTo(px, y(replayed[i - 1].replicas));
          c.lineTo(px, py);
        }
      });
      c.stroke();
      c.restore();
    }
    // Bounds from the annotations.
    const spec = ctx.spec || {};
    c.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
    c.lineWidth = devicePixelRatio;
    c.strokeStyle = '#8a96a3';
    c.fillStyle = '#5d6875';
    c.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    for (const [label, v] of [['max', spec.maxReplicas], ['min', spec.minReplicas]]) {
      if (typeof v !== 'number') continue;
      const py = y(v);
      c.beginPath();
      c.moveTo(left, py);
      c.lineTo(left + width, py);
      c.stroke();
      c.fillText(`${label} ${v}`, left + width - 44 * devicePixelRatio, py - 4 * devicePixelRatio);
    }
    c.restore();
  }

  const opts = {
    ...sizeOf(el, height),
    class: 'replica-chart',
    cursor: { focus: { prox: 24 } },
    legend: { live: true },
    scales: {
      x: { time: true },
      y: {
        range: (u, min, max) => {
          const spec = ctx.spec || {};
          const hi = Math.max(max ?? 1, typeof spec.maxReplicas === 'number' ? spec.maxReplicas : 0);
          return [0, Math.ceil(hi + 1)];
        },
      },
    },
    axes: [
      { stroke: '#4a5360', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#dfe3e8' } },
      {
        stroke: '#4a5360', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#dfe3e8' },
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: (u, vals) => vals.map((v) => String(v)), size: 44,
        label: 'replicas', labelSize: 18, labelFont: '12px system-ui, sans-serif',
      },
    ],
    series: [
      { label: 'Time', value: (u, v) => (v === null ? '—' : new Date(v * 1000).toLocaleString()) },
      { label: 'Current', stroke: CURRENT, width: 2, paths: stepped, spanGaps: true, points: { show: false } },
      { label: 'Desired', stroke: DESIRED, width: 2.5, paths: stepped, spanGaps: true, points: { show: false } },
      {
        label: 'Raw evaluation', stroke: RAW, width: 1.5, dash: [4, 4], spanGaps: true,
        points: { show: true, size: 5, fill: RAW, stroke: RAW },
      },
      ...(predictive ? [{
        label: 'Prediction', stroke: PREDICTED, width: 1.5, dash: [2, 3], spanGaps: true,
        points: { show: true, size: 4, fill: PREDICTED, stroke: PREDICTED },
      }] : []),
    ],
    hooks: { drawClear: [drawUnder] },
  };
  const u = new uPlot(opts, data(), el);
  const stop = autosize(u, el, height);
  return {
    update: () => u.setData(data()),
    destroy: () => {
      stop();
      u.destroy();
    },
  };
}

function overrideLabel(o) {
  const kind = overrideKind(o);
  if (kind === 'pin') return `pinned at ${o.replicas}`;
  if (kind === 'bounds') return `bounds ${o.minReplicas ?? '…'}–${o.maxReplicas ?? '…'}`;
  return `paused ${o.paused || o.pauseDirection || 'both'}`;
}

/** Numeric metric series per resource name (at most 8; the rest are summed into "other"). */
function metricSeries(decisions) {
  const rows = chartable(decisions);
  const names = new Map();
  for (const d of rows) {
    for (const m of Array.isArray(d.metrics) ? d.metrics : []) {
      if (m && metricNumber(m.value) !== null) names.set(m.resource, (names.get(m.resource) || 0) + 1);
    }
  }
  const top = [...names.entries()].sort((a, b) => b[1] - a[1]).map(([n]) => n);
  const shown = top.slice(0, 7);
  const other = top.length > 8;
  if (!other && top.length === 8) shown.push(top[7]);
  const cols = shown.map((name) => rows.map((d) => {
    const m = (d.metrics || []).find((x) => x && x.resource === name);
    return m ? metricNumber(m.value) : null;
  }));
  if (other) {
    const rest = new Set(top.slice(7));
    cols.push(rows.map((d) => (d.metrics || []).filter((x) => x && rest.has(x.resource))
      .reduce((a, x) => a + (metricNumber(x.value) || 0), 0)));
    shown.push(`other (${rest.size})`);
  }
  return { x: rows.map((d) => d.time / 1000), names: shown, cols };
}

/** The metrics chart; returns null when no metric value is numeric. */
export function metricChart(el, get) {
  const height = 180;
  let series = metricSeries(get().decisions);
  if (!series.names.length) return null;
  const make = () => new uPlot({
    ...sizeOf(el, height),
    class: 'metric-chart',
    scales: { x: { time: true } },
    axes: [
      { stroke: '#4a5360', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#dfe3e8' } },
      { stroke: '#4a5360', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#dfe3e8' }, size: 60 },
    ],
    series: [
      { label: 'Time', value: (u, v) => (v === null ? '—' : new Date(v * 1000).toLocaleString()) },
      ...series.names.map((name, i) => ({
        label: name, stroke: PALETTE[i % PALETTE.length], width: 1.8, spanGaps: true, points: { show: false },
      })),
    ],
  }, [series.x, ...series.cols], el);
  let u = make();
  let stop = autosize(u, el, height);
  return {
    update: () => {
      const next = metricSeries(get().decisions);
      if (next.names.join('\n') !== series.names.join('\n')) {
        // The set of series changed (e.g. per-pod metrics after a scale): rebuild the chart.
        series = next;
        stop();
        u.destroy();
        u = make();
        stop = autosize(u, el, height);
      } else {
        series = next;
        u.setData([series.x, ...series.cols]);
      }
    },
    destroy: () => {
      stop();
      u.destroy();
    },
  };
}
