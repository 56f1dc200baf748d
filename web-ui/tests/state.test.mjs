// Rules of the state badges and the formatting helpers (node --test web-ui/tests/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { badgeKeys, mainReason } from '../js/state.js';
import { metricNumber, duration } from '../js/format.js';

const decision = (over = {}) => ({
  id: 1, time: 1, runType: 'scaler', outcome: 'unchanged', currentReplicas: 3, finalReplicas: 3,
  rawEvaluation: 3, reasons: [], error: null, ...over,
});
const target = (over = {}) => ({
  namespace: 'shop', kind: 'Deployment', name: 'web', state: 'active', currentReplicas: 3, desiredReplicas: 3,
  override: null, error: null, lastDecision: decision(), ...over,
});
const reason = (step, code, message = code) => ({ step, code, message, from: 1, to: 2 });

test('a target whose evaluation matches its replicas is stable', () => {
  assert.deepEqual(badgeKeys(target()), ['stable']);
});

test('invalid annotations outrank everything and explain themselves', () => {
  const t = target({ state: 'invalid', error: 'scalehub.io/min-replicas: "five" is not a whole number', lastDecision: null });
  assert.deepEqual(badgeKeys(t), ['invalid']);
  assert.match(mainReason(t), /five/);
});

test('a conflict with an HPA is its own badge', () => {
  assert.deepEqual(badgeKeys(target({ state: 'conflict', error: 'HPA owns it' })), ['conflict']);
});

test('a failed tick is a hook error and the error is the reason', () => {
  const t = target({ state: 'error', lastDecision: decision({ outcome: 'error', error: 'evaluate hook exited with status 1', finalReplicas: null }) });
  assert.deepEqual(badgeKeys(t), ['hook-error']);
  assert.equal(mainReason(t), 'evaluate hook exited with status 1');
});

test('wanting more replicas than the workload has is scaling up, fewer is scaling down', () => {
  assert.deepEqual(badgeKeys(target({ desiredReplicas: 5 })), ['scaling']);
  assert.deepEqual(badgeKeys(target({ desiredReplicas: 1 })), ['scaling-down']);
});

test('reason codes name the held states', () => {
  const withCode = (step, code) => target({ lastDecision: decision({ reasons: [reason(step, code)] }) });
  assert.deepEqual(badgeKeys(withCode('stabilise', 'ScaleDownStabilized')), ['stabilised']);
  assert.deepEqual(badgeKeys(withCode('rate', 'ScaleUpLimit')), ['rate-limited']);
  assert.deepEqual(badgeKeys(withCode('clamp', 'TooFewReplicas')), ['at-min']);
  assert.deepEqual(badgeKeys(withCode('clamp', 'TooManyReplicas')), ['at-max']);
  assert.deepEqual(badgeKeys(withCode('disabled', 'ScalingDisabled')), ['disabled']);
});

test('a target on its fallback says so rather than only "hook error"', () => {
  const d = { outcome: 'scaled', finalReplicas: 4, currentReplicas: 1, reasons: [{ step: 'fallback', code: 'FallbackReplicas' }] };
  assert.deepEqual(badgeKeys(target({ state: 'error', lastDecision: d })), ['fallback']);
  assert.deepEqual(badgeKeys(target({ state: 'error', lastDecision: { outcome: 'error', reasons: [] } })), ['hook-error']);
});

test('overrides and shadow mode are shown beside the state', () => {
  const t = target({ state: 'shadow', override: { kind: 'pin', replicas: 3 }, desiredReplicas: 4 });
  assert.deepEqual(badgeKeys(t), ['scaling', 'overridden', 'shadow']);
});

test('a target without decisions is pending', () => {
  assert.deepEqual(badgeKeys(target({ lastDecision: null })), ['pending']);
});

test('the main reason is the last step of the chain', () => {
  const d = decision({ reasons: [reason('clamp', 'TooManyReplicas', 'lowered to 12'), reason('rate', 'ScaleUpLimit', 'rate limit allows 4')] });
  assert.equal(mainReason(target({ lastDecision: d })), 'rate limit allows 4');
  assert.equal(mainReason(target()), 'evaluation asks for 3, as now');
});

test('metric values chart by their first number', () => {
  assert.equal(metricNumber('cpu: 2300m over 3 ready pods'), 2300);
  assert.equal(metricNumber('0.75'), 0.75);
  assert.equal(metricNumber('{"queue": -4}'), -4);
  assert.equal(metricNumber('no numbers'), null);
  assert.equal(metricNumber(undefined), null);
});

test('durations read as people say them', () => {
  assert.equal(duration(850), '850 ms');
  assert.equal(duration(2400), '2.4 s');
  assert.equal(duration(300000), '5m');
  assert.equal(duration(5400000), '1h 30m');
});
