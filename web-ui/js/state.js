// Badges: what state a target is in, derived from its `state`, its override and the
// last decision's outcome and reason codes. Every badge has a text label and an icon;
// colour (Okabe–Ito, see app.css) only reinforces them.

import { h } from './dom.js';

/** Badge definitions: label, icon path (12×12 viewBox) and a sentence for the tooltip. */
export const BADGES = {
  scaling: { label: 'scaling', icon: 'M6 1 10 5H7.5v6h-3V5H2z', title: 'The hub wants more replicas than the workload has' },
  'scaling-down': { label: 'scaling', icon: 'M6 11 2 7h2.5V1h3v6H10z', title: 'The hub wants fewer replicas than the workload has' },
  stable: { label: 'stable', icon: 'M1.5 6.5 4.5 9.5 10.5 2.5', stroke: true, title: 'The evaluation matches the current replicas' },
  stabilised: { label: 'stabilised', icon: 'M1 4h10M1 8h10', stroke: true, title: 'A stabilisation window holds the replicas' },
  'at-min': { label: 'at min', icon: 'M6 1v7M3 5l3 3 3-3M1.5 10.5h9', stroke: true, title: 'The evaluation is below the minimum; clamped to it' },
  'at-max': { label: 'at max', icon: 'M6 11V4M3 7l3-3 3 3M1.5 1.5h9', stroke: true, title: 'The evaluation is above the maximum; clamped to it' },
  'rate-limited': { label: 'rate-limited', icon: 'M6 1a5 5 0 1 0 .01 0M6 3v3l2 1.5', stroke: true, title: 'A rate policy slowed the change' },
  overridden: { label: 'overridden', icon: 'M4 1h4l-.7 4 2.2 2H2.5l2.2-2zM6 7v4.5', title: 'An operator override is active' },
  shadow: { label: 'shadow', icon: 'M6 1a5 5 0 0 0 0 10z M6 1a5 5 0 0 1 0 10', title: 'Shadow mode: decides and records, never scales' },
  disabled: { label: 'disabled', icon: 'M6 1v4.5M3.2 3a4 4 0 1 0 5.6 0', stroke: true, title: 'Replicas are 0 with a non-zero minimum: autoscaling is off' },
  fallback: { label: 'fallback', icon: 'M6 1 11.5 11h-11zM3.5 8.5h5', title: 'Metrics or hooks keep failing: the profile\'s fallback count stands in for the evaluation' },
  'hook-error': { label: 'hook error', icon: 'M6 1 11.5 11h-11zM6 4.5v3M6 9v.6', title: 'The last tick failed; replicas are held' },
  invalid: { label: 'invalid', icon: 'M2 2l8 8M10 2l-8 8', stroke: true, title: 'Invalid annotations: never scaled' },
  conflict: { label: 'conflict', icon: 'M1 4h8l-2-2M11 8H3l2 2', stroke: true, title: 'Another autoscaler (an HPA) owns this workload' },
  removed: { label: 'removed', icon: 'M2 6h8', stroke: true, title: 'The workload opted out or was deleted' },
  pending: { label: 'pending', icon: 'M2.5 6h.01M6 6h.01M9.5 6h.01', stroke: true, title: 'No decision yet' },
  // Decision outcomes that are not target states.
  unchanged: { label: 'unchanged', icon: 'M1.5 6.5 4.5 9.5 10.5 2.5', stroke: true, title: 'No change was needed' },
  held: { label: 'held', icon: 'M3 2v8M9 2v8', stroke: true, title: 'A change was wanted but held' },
  error: { label: 'error', icon: 'M6 1 11.5 11h-11zM6 4.5v3M6 9v.6', title: 'The tick failed' },
  dry_run: { label: 'dry run', icon: 'M2 6h8M6 2v8', stroke: true, title: 'A dry run through the API: nothing scaled' },
  override_set: { label: 'override set', icon: 'M4 1h4l-.7 4 2.2 2H2.5l2.2-2zM6 7v4.5', title: 'An operator set an override' },
  override_cleared: { label: 'override cleared', icon: 'M2 2l8 8M10 2l-8 8', stroke: true, title: 'An operator cleared the override' },
  override_expired: { label: 'override expired', icon: 'M6 1a5 5 0 1 0 .01 0M6 3v3l2 1.5', stroke: true, title: 'The override reached its expiry' },
};

/** Colour class of each badge (see app.css): one hue per meaning. */
const TONE = {
  scaling: 'blue', 'scaling-down': 'blue', stable: 'green', unchanged: 'green', stabilised: 'sky',
  'at-min': 'orange', 'at-max': 'orange', 'rate-limited': 'sky', overridden: 'purple', override_set: 'purple',
  override_cleared: 'purple', override_expired: 'purple', shadow: 'grey', disabled: 'grey', held: 'sky',
  'hook-error': 'red', fallback: 'orange', error: 'red', invalid: 'red', conflict: 'yellow', removed: 'grey', pending: 'grey', dry_run: 'grey',
};

/** The reason codes of a decision. */
export function reasonCodes(d) {
  return Array.isArray(d && d.reasons) ? d.reasons.map((r) => r && r.code).filter(Boolean) : [];
}

/** The badge keys of a target, most important first. */
export function badgeKeys(t) {
  const d = t.lastDecision;
  const codes = reasonCodes(d);
  const keys = [];
  if (t.state === 'removed') keys.push('removed');
  else if (t.state === 'invalid') keys.push('invalid');
  else if (t.state === 'conflict') keys.push('conflict');
  else if (codes.includes('FallbackReplicas')) keys.push('fallback');
  else if (t.state === 'error' || (d && d.outcome === 'error')) keys.push('hook-error');
  else if (!d) keys.push('pending');
  else if (d.outcome === 'disabled' || codes.includes('ScalingDisabled')) keys.push('disabled');
  else if (isChange(t, d)) keys.push(direction(t, d) < 0 ? 'scaling-down' : 'scaling');
  else if (codes.includes('ScaleUpStabilized') || codes.includes('ScaleDownStabilized')) keys.push('stabilised');
  else if (codes.includes('ScaleUpLimit') || codes.includes('ScaleDownLimit')) keys.push('rate-limited');
  else if (codes.includes('TooFewReplicas')) keys.push('at-min');
  else if (codes.includes('TooManyReplicas')) keys.push('at-max');
  else keys.push('stable');
  if (t.override) keys.push('overridden');
  if (t.state === 'shadow') keys.push('shadow');
  return keys;
}

function isChange(t, d) {
  // What the target has now against what the hub wants: a finished scale is no longer "scaling".
  // A shadow target never scales, so there this reads as "would scale".
  const want = t.desiredReplicas ?? d.finalReplicas;
  const have = t.currentReplicas ?? d.currentReplicas;
  return want !== null && want !== undefined && have !== null && have !== undefined && want !== have;
}

function direction(t, d) {
  const want = t.desiredReplicas ?? d.finalReplicas ?? 0;
  const have = t.currentReplicas ?? d.currentReplicas ?? 0;
  return Math.sign(want - have);
}

/** One badge element. */
export function badge(key, extraTitle) {
  const def = BADGES[key] || { label: key.replace(/_/g, ' '), icon: 'M6 3v6', stroke: true, title: key };
  const icon = h('svg:svg', { class: 'badge-icon', viewBox: '0 0 12 12', width: 12, height: 12, 'aria-hidden': 'true' },
    h('svg:path', { d: def.icon, class: def.stroke ? 'stroke' : 'fill' }));
  const title = extraTitle ? `${def.title}. ${extraTitle}` : def.title;
  return h('span', { class: `badge tone-${TONE[key] || 'grey'}`, title, 'data-badge': key }, icon, def.label);
}

/** The badges of a target. */
export function targetBadges(t, limit = 3) {
  return badgeKeys(t).slice(0, limit).map((k) => badge(k));
}

/** The decision's outcome as a badge. */
export function outcomeBadge(d) {
  const key = d.outcome === 'scaled' && (d.finalReplicas ?? 0) < (d.currentReplicas ?? 0) ? 'scaling-down'
    : d.outcome === 'scaled' ? 'scaling' : d.outcome || 'unchanged';
  const b = badge(key);
  if (d.outcome === 'scaled') b.lastChild.textContent = 'scaled';
  return b;
}

/** The one sentence that best explains a decision (or a target without one). */
export function mainReason(t, d = t && t.lastDecision) {
  if (t && (t.state === 'invalid' || t.state === 'conflict') && t.error) return t.error;
  if (!d) return t && t.error ? t.error : 'waiting for the first decision';
  if (d.error) return d.error;
  const reasons = Array.isArray(d.reasons) ? d.reasons : [];
  // The last step that changed or pinned the value is what the final number comes from.
  const last = reasons[reasons.length - 1];
  if (last && last.message) return last.message;
  if (d.rawEvaluation !== null && d.rawEvaluation !== undefined) {
    return d.rawEvaluation === d.currentReplicas
      ? `evaluation asks for ${d.rawEvaluation}, as now`
      : `evaluation asks for ${d.rawEvaluation}`;
  }
  return d.outcome || '';
}
