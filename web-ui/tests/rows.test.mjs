// The charts' rows: recorded decisions plus the series' ticks between them (node --test web-ui/tests/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartRows } from '../js/rows.js';

const decision = (time, over = {}) => ({
  id: time, time, runType: 'scaler', outcome: 'unchanged', currentReplicas: 2, finalReplicas: 2,
  rawEvaluation: 2, reasons: [{ step: 'stabilise', from: 1, to: 2 }], metrics: [], ...over,
});
const point = (time, over = {}) => ({
  time, currentReplicas: 2, finalReplicas: 2, rawEvaluation: 1, outcome: 'unchanged', metrics: [], ...over,
});

test('ticks between decisions become rows that carry the reasons of the decision before them', () => {
  const rows = chartRows([decision(10), decision(40, { reasons: [] })], [point(10), point(25), point(40), point(55)]);
  assert.deepEqual(rows.map((r) => r.time), [10, 25, 40, 55]);
  assert.equal(rows[1].id, 0);
  assert.deepEqual(rows[1].reasons, [{ step: 'stabilise', from: 1, to: 2 }], 'the hold band continues');
  assert.deepEqual(rows[3].reasons, [], 'after the second decision, its reasons');
  assert.equal(rows[0].id, 10, 'a recorded decision wins over the tick at its time');
});

test('dry runs and override rows stay off the chart, and no series means the decisions alone', () => {
  const rows = chartRows([decision(10), decision(20, { runType: 'api_dry_run' }), decision(30, { runType: 'override' })], []);
  assert.deepEqual(rows.map((r) => r.time), [10]);
  assert.deepEqual(chartRows([], [point(5)]).map((r) => r.time), [5]);
});

test('a decision row takes the prediction of the tick at its time', () => {
  const rows = chartRows([decision(10)], [point(10, { predicted: 5 }), point(25, { predicted: 6 })]);
  assert.equal(rows[0].predicted, 5);
  assert.equal(rows[1].predicted, 6);
});
