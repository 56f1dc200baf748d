// Rows for the target page's charts: recorded decisions, and the ticks of the series between
// them. Kept apart from chart.js (which loads uPlot) so node can test it.

/** Decisions that carry replica numbers, oldest first. Override bookkeeping rows carry none,
 * and dry runs never applied what they decided, so neither belongs on the lines. */
export function chartable(decisions) {
  return decisions.filter((d) => d.runType !== 'override' && d.runType !== 'api_dry_run'
    && (d.currentReplicas !== null || d.finalReplicas !== null))
    .slice().sort((a, b) => a.time - b.time || a.id - b.id);
}

/** Rows for the charts: the recorded decisions, and between them the ticks of the series
 * that changed nothing (and so left no row). Such a tick said what the decision before it
 * said, so it carries that decision's reasons (the stabilisation hold band stays drawn). */
export function chartRows(decisions, points) {
  const rows = chartable(decisions);
  if (!points || !points.length) return rows;
  // A decision row and the tick's point share their time; the point holds the prediction.
  const predicted = new Map(points.filter((p) => typeof p.predicted === 'number').map((p) => [p.time, p.predicted]));
  for (const d of rows) {
    if (predicted.has(d.time)) d.predicted = predicted.get(d.time);
  }
  const at = new Set(rows.map((d) => d.time));
  const extra = [];
  let i = 0;
  let last = null;
  for (const p of points) {
    while (i < rows.length && rows[i].time <= p.time) last = rows[i++];
    if (at.has(p.time)) continue;
    extra.push({
      id: 0, time: p.time, runType: 'scaler', outcome: p.outcome,
      currentReplicas: p.currentReplicas, finalReplicas: p.finalReplicas, rawEvaluation: p.rawEvaluation,
      predicted: p.predicted, metrics: p.metrics, reasons: last ? last.reasons : [],
    });
  }
  return chartable([...rows, ...extra]);
}

