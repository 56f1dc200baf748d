// Side panels of the target view: the stabilisation state and the parsed spec.

import { h, replace } from './dom.js';
import { localTime, fullTime, duration } from './format.js';

/** The stabilisation windows and what they hold right now. */
export function renderStabilisation(el, t) {
  const s = t.stabilisation;
  if (!s) {
    replace(el, h('p', { class: 'muted' }, 'No stabilisation state yet (it starts with the first decision).'));
    return;
  }
  const now = Date.now();
  const recs = Array.isArray(s.recommendations) ? s.recommendations : [];
  const inWindow = (ms) => recs.filter((r) => ms > 0 && r.at > now - ms);
  const down = inWindow(s.downscaleWindowMs);
  const up = inWindow(s.upscaleWindowMs);
  const floor = down.length ? { ...down.reduce((a, r) => (r.replicas >= a.replicas ? r : a)) } : null;
  const ceiling = up.length ? { ...up.reduce((a, r) => (r.replicas <= a.replicas ? r : a)) } : null;
  // The hub's own figures win over the ones derived here from the samples.
  if (floor && typeof s.lowerBound === 'number') floor.replicas = s.lowerBound;
  if (ceiling && typeof s.upperBound === 'number') ceiling.replicas = s.upperBound;
  const line = (label, windowMs, bound, words) => [
    h('dt', {}, label),
    h('dd', {}, !windowMs ? 'off (0s)' : bound
      ? h('span', { title: fullTime(bound.at) }, `${duration(windowMs)}: ${words} ${bound.replicas} (from ${localTime(bound.at)}, lifts ${localTime(bound.at + windowMs)})`)
      : `${duration(windowMs)}: no recommendation in the window`),
  ];
  const ups = Array.isArray(s.scaleUpEvents) ? s.scaleUpEvents.length : 0;
  const downs = Array.isArray(s.scaleDownEvents) ? s.scaleDownEvents.length : 0;
  replace(el,
    h('dl', { class: 'kv' },
      line('Down-scale', s.downscaleWindowMs, floor, 'no lower than'),
      line('Up-scale', s.upscaleWindowMs, ceiling, 'no higher than'),
      h('dt', {}, 'Rate events'), h('dd', {}, `${ups} up, ${downs} down in the rate periods`)),
    recs.length ? h('details', { style: 'margin-top:10px' },
      h('summary', {}, `Recommendations in memory (${recs.length})`),
      h('table', { class: 'windows' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Replicas'))),
        h('tbody', {}, recs.slice(-12).reverse().map((r) => h('tr', {},
          h('td', { class: 'num', title: fullTime(r.at) }, localTime(r.at)), h('td', { class: 'num' }, r.replicas)))))) : null);
}

/** `+0.05 / −0.1` (or `±0.1` when both directions agree). */
function toleranceText(t) {
  return t.scaleUp === t.scaleDown ? `±${t.scaleUp}` : `+${t.scaleUp} / −${t.scaleDown}`;
}

/** The parsed spec (or, for an invalid target, its raw annotations). */
export function renderSpec(el, t) {
  const spec = t.spec || {};
  const parsed = typeof spec.minReplicas === 'number';
  // Where each setting came from: the annotation, the profile, or the CPA's or HPA's default.
  const sources = spec.sources || {};
  const from = (...keys) => {
    const names = [...new Set(keys.map((k) => sources[k]).filter(Boolean))];
    return names.length ? names.join(' / ').replaceAll('-', ' ') : null;
  };
  const rows = parsed ? [
    ['Profile', spec.profile, spec.lineage ? `${spec.lineage.toUpperCase()} defaults` : null], ['Mode', spec.mode],
    ['Run mode', spec.runMode, from('runMode')],
    ['Min / max', `${spec.minReplicas} / ${spec.maxReplicas}`, from('minReplicas', 'maxReplicas')],
    ['Interval', spec.interval, from('interval')],
    ...(spec.startTime ? [['Start time', spec.startTime, from('startTime')]] : []),
    ['Down-scale window', spec.downscaleStabilization, from('downscaleStabilization')],
    ['Up-scale window', spec.upscaleStabilization, from('upscaleStabilization')],
    ...(spec.lineage === 'hpa' && spec.tolerance ? [['Tolerance', toleranceText(spec.tolerance)]] : []),
    ...(spec.scaleToZero && spec.minReplicas === 0 ? [['Scale to zero',
      `active above ${spec.scaleToZero.activationThresholdMilli / 1000}; 1 → 0 after ${spec.scaleToZero.cooldownPeriod} inactive`]] : []),
    ['Rate limits', spec.rateLimits ? 'behavior (below)'
      : spec.lineage === 'hpa' ? 'no behavior: a scale-up reaches at most max(2 × current, 4) per tick (HPA)' : 'none (CPA)'],
    ...Object.entries(spec.params || {}).map(([k, v]) => [`param.${k}`, v]),
  ] : Object.entries(spec).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  replace(el,
    t.error ? h('div', { class: 'error-box', role: 'note' }, h('span', {}, t.error)) : null,
    parsed ? null : h('p', { class: 'muted' }, 'The annotations could not be parsed; they are shown as found on the workload.'),
    h('dl', { class: 'kv', id: 'spec' }, rows.map(([k, v, source]) => [h('dt', {}, k),
      h('dd', {}, h('code', {}, String(v ?? '—')), source ? h('span', { class: 'muted source' }, ` ${source}`) : null)])),
    spec.rateLimits ? h('details', { style: 'margin-top:10px' }, h('summary', {}, 'Rate limits'),
      h('pre', { class: 'json' }, JSON.stringify(spec.rateLimits, null, 2))) : null,
    h('details', { style: 'margin-top:10px' }, h('summary', {}, 'Raw JSON'),
      h('pre', { class: 'json' }, JSON.stringify(spec, null, 2))),
    h('dl', { class: 'kv', style: 'margin-top:10px' },
      h('dt', {}, 'First seen'), h('dd', { title: fullTime(t.firstSeen) }, localTime(t.firstSeen)),
      h('dt', {}, 'UID'), h('dd', {}, h('code', {}, t.uid || '—'))));
}
