// The "What if…" panel: edit the bounds, windows, rate policies, predictive models or the
// built-in calculation of a target, replay them over its recorded ticks (POST …/replay,
// read-only) and compare.

import * as api from './api.js';
import { h, replace } from './dom.js';

const RANGES = [['1 hour', 3600000], ['6 hours', 6 * 3600000], ['24 hours', 86400000]];

/** A compact duration for the summary (`1h 20m`, `45s`). */
function span(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? ` ${s % 60}s` : ''}`;
  return `${Math.floor(m / 60)}h${m % 60 ? ` ${m % 60}m` : ''}`;
}

/**
 * The request body from the form's fields; throws an Error naming the field on bad input.
 * Exported for the unit tests.
 */
export function candidateFrom(fields) {
  const policy = {};
  const int = (name, label) => {
    const text = (fields[name] || '').trim();
    if (!text) return;
    if (!/^\d+$/.test(text)) throw new Error(`${label} must be a whole number`);
    policy[name] = Number(text);
  };
  int('minReplicas', 'Min replicas');
  int('maxReplicas', 'Max replicas');
  for (const [name, label] of [['upscaleStabilization', 'Up-scale window'], ['downscaleStabilization', 'Down-scale window']]) {
    const text = (fields[name] || '').trim();
    if (text) policy[name] = text;
  }
  for (const [name, label] of [['behavior', 'Behavior'], ['predictive', 'Predictive models']]) {
    const text = (fields[name] || '').trim();
    if (!text) continue;
    try {
      policy[name] = JSON.parse(text);
    } catch {
      throw new Error(`${label} is not valid JSON`);
    }
  }
  // Another built-in calculation: a profile's name, or kubernetesMetricSpecs as JSON.
  const calculation = (fields.calculation || '').trim();
  if (calculation.startsWith('[')) {
    try {
      policy.calculation = { kubernetesMetricSpecs: JSON.parse(calculation) };
    } catch {
      throw new Error('Calculation is not valid JSON');
    }
  } else if (calculation) {
    policy.calculation = { profile: calculation };
  }
  return policy;
}

/** Renders the panel into `el`; `onResult(replay | null)` hands the replay to the chart. */
export function renderWhatIf(el, target, onResult) {
  const spec = target.spec && typeof target.spec.minReplicas === 'number' ? target.spec : null;
  if (!spec) {
    replace(el, h('p', { class: 'muted' }, 'The annotations are invalid: there is no policy to replay from.'));
    return;
  }
  const input = (name, value, attrs = {}) => h('input', { id: `wi-${name}`, name, value: value ?? '', autocomplete: 'off', ...attrs });
  const field = (label, control) => h('label', { class: 'field' }, h('span', {}, label), control);
  const min = input('minReplicas', spec.minReplicas, { inputmode: 'numeric', size: 4 });
  const max = input('maxReplicas', spec.maxReplicas, { inputmode: 'numeric', size: 4 });
  const up = input('upscaleStabilization', spec.upscaleStabilization, { size: 6, placeholder: '0s' });
  const down = input('downscaleStabilization', spec.downscaleStabilization, { size: 6, placeholder: '5m' });
  const behavior = h('textarea', { id: 'wi-behavior', rows: 3, spellcheck: 'false',
    placeholder: '{"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}' });
  const predictive = h('textarea', { id: 'wi-predictive', rows: 3, spellcheck: 'false',
    placeholder: '{"models": [{"name": "trend", "type": "Linear", "linear": {"historySize": 6, "lookAhead": 30000}}]}' });
  if (spec.predictive) predictive.value = JSON.stringify(spec.predictive);
  const calculation = input('calculation', '', { size: 40,
    placeholder: 'a profile, or [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]' });
  const range = h('select', { id: 'wi-range' }, RANGES.map(([label, ms]) => h('option', { value: String(ms) }, label)));
  range.value = String(86400000);
  const result = h('div', { id: 'whatif-result', 'aria-live': 'polite' });
  const run = h('button', { type: 'submit', id: 'whatif-run', class: 'primary' }, 'Replay');
  const clear = h('button', { type: 'button', onclick: () => { replace(result); onResult(null); } }, 'Clear');

  async function submit(ev) {
    ev.preventDefault();
    let policy;
    try {
      policy = candidateFrom({
        minReplicas: min.value, maxReplicas: max.value, upscaleStabilization: up.value,
        downscaleStabilization: down.value, behavior: behavior.value, predictive: predictive.value,
        calculation: calculation.value,
      });
    } catch (e) {
      replace(result, h('div', { class: 'error-box', role: 'alert' }, e.message));
      return;
    }
    run.disabled = true;
    replace(result, h('p', { class: 'muted' }, 'Replaying…'));
    try {
      const now = Date.now();
      const body = { from: now - Number(range.value), to: now + 1, policy };
      const res = await api.write('POST', `${api.targetPath(target)}/replay`, body);
      renderSummary(result, res);
      onResult(res);
    } catch (e) {
      replace(result, h('div', { class: 'error-box', role: 'alert' }, e.message));
      onResult(null);
    } finally {
      run.disabled = false;
    }
  }

  replace(el,
    h('p', { class: 'muted' }, 'Replays the recorded ticks through the same policy code with these settings. Read-only: nothing is scaled.'),
    h('form', { class: 'whatif', onsubmit: submit },
      h('div', { class: 'row' }, field('Min', min), field('Max', max), field('Up window', up), field('Down window', down)),
      field('Behavior (HPA JSON)', behavior),
      field('Predictive models (JSON)', predictive),
      field('Built-in calculation (a profile, or kubernetesMetricSpecs JSON)', calculation),
      h('div', { class: 'row' }, field('Range', range), run, clear)),
    result);
}

function renderSummary(el, res) {
  const { replayed, actual } = res.summary;
  const row = (label, f) => h('tr', {}, h('th', {}, label), h('td', { class: 'num' }, f(replayed)), h('td', { class: 'num' }, f(actual)));
  replace(el,
    h('table', { class: 'whatif-summary', id: 'whatif-summary' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'What if'), h('th', {}, 'Actual'))),
      h('tbody', {},
        row('Scale-ups', (s) => String(s.scaleUps)),
        row('Scale-downs', (s) => String(s.scaleDowns)),
        row('Replica-hours', (s) => s.replicaHours.toFixed(2)),
        row('Highest / lowest', (s) => `${s.highest} / ${s.lowest}`),
        row('Under-provisioned', (s) => span(s.underProvisionedSeconds)),
        row('Over-provisioned', (s) => span(s.overProvisionedSeconds)))),
    h('p', { class: 'muted' }, `${(res.ticks || []).length.toLocaleString()} ticks replayed${res.truncated ? ' (the newest; the range held more)' : ''}; ` +
      'the dashed green curve in the replica chart is the replay.'));
}
