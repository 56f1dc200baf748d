// The override panel: the active override with a clear button, and the form that sets one.
// The bearer token is asked for once and kept in sessionStorage (this tab only).

import * as api from './api.js';
import { h, replace, toast } from './dom.js';
import { localTime, relative, fullTime } from './format.js';

const DURATIONS = [['15m', '15 minutes'], ['30m', '30 minutes'], ['1h', '1 hour'], ['4h', '4 hours'], ['8h', '8 hours'],
  ['1d', '1 day'], ['7d', '7 days'], ['until', 'until a time…']];

/** What an override does, in words. */
export function describeOverride(o) {
  if (!o) return '';
  const kind = overrideKind(o);
  if (kind === 'pin') return `Pinned at ${o.replicas} replica${o.replicas === 1 ? '' : 's'}`;
  if (kind === 'bounds') return `Bounds narrowed to ${o.minReplicas ?? '…'}–${o.maxReplicas ?? '…'}`;
  const dir = o.paused || o.pauseDirection || 'both';
  return dir === 'both' ? 'Scaling paused' : `Scaling ${dir} paused`;
}

/** `pin`, `bounds` or `pause`, from the API's `type` or from the fields that are set. */
export function overrideKind(o) {
  const declared = o.type || o.kind;
  if (declared === 'pin' || declared === 'bounds' || declared === 'pause') return declared;
  if (o.replicas !== null && o.replicas !== undefined) return 'pin';
  if (o.minReplicas != null || o.maxReplicas != null) return 'bounds';
  return 'pause';
}

/** Renders the panel body into `el`; `onChange` runs after a successful write. */
export function renderOverride(el, target, onChange) {
  const o = target.override;
  const active = o ? h('div', { class: 'override-active', 'data-testid': 'active-override' },
    h('div', { class: 'what' }, describeOverride(o)),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Until'), h('dd', { title: fullTime(o.until) }, o.until ? `${localTime(o.until)} (${relative(o.until)})` : 'cleared by hand'),
      h('dt', {}, 'Reason'), h('dd', {}, o.reason || '—'),
      h('dt', {}, 'Set by'), h('dd', {}, `${o.author || '?'} at ${localTime(o.createdAt)}`)),
    h('div', { style: 'margin-top:10px' },
      h('button', { type: 'button', class: 'danger', id: 'clear-override', onclick: clear }, 'Clear override'))) : null;

  async function clear(ev) {
    const button = ev.currentTarget;
    const token = await ensureToken(el);
    if (!token) return;
    button.disabled = true;
    try {
      await api.write('DELETE', `${api.targetPath(target)}/override`, undefined, token);
      toast('Override cleared', 'ok');
      onChange();
    } catch (e) {
      if (e.status === 401) api.setToken('');
      toast(`Could not clear the override: ${e.message}`, 'error');
      button.disabled = false;
    }
  }

  const hub = api.hubInfo();
  if (hub && hub.writesEnabled === false) {
    // Say so up front rather than after the reader has filled in the form.
    replace(el, active, h('p', { class: 'muted', id: 'writes-disabled' },
      'This hub accepts no writes: it was started without a token file (',
      h('code', {}, 'api.tokenFile'), '), so overrides cannot be set here. The REST API explains the same with 403.'));
    return;
  }
  replace(el, active, overrideForm(target, onChange, Boolean(o)));
}

/** The token of this session, or the one typed into the form's token field. */
async function ensureToken(root) {
  const field = root.querySelector('input[name="token"]');
  const typed = field && field.value.trim();
  if (typed) {
    api.setToken(typed);
    return typed;
  }
  const stored = api.getToken();
  if (stored) return stored;
  toast('Enter an API token first (it is kept for this browser tab only).', 'error');
  if (field) field.focus();
  return '';
}

function overrideForm(target, onChange, replacing) {
  const spec = target.spec && typeof target.spec.minReplicas === 'number' ? target.spec : {};
  const errorLine = h('div', { class: 'form-error', role: 'alert' });
  const action = (value, label, checked) => h('label', {},
    h('input', { type: 'radio', name: 'action', value, checked }), label);
  const num = (name, label, value) => h('div', { class: 'row' },
    h('label', { for: `ov-${name}` }, label),
    h('input', { id: `ov-${name}`, name, type: 'number', min: 0, step: 1, value: value ?? '', inputmode: 'numeric' }));
  const pinFields = h('div', { class: 'row', 'data-for': 'pin' }, num('replicas', 'Replicas', target.override?.replicas ?? target.currentReplicas));
  const boundFields = h('div', { class: 'row2', 'data-for': 'bounds', hidden: true },
    num('minReplicas', 'Min replicas', spec.minReplicas), num('maxReplicas', 'Max replicas', spec.maxReplicas));
  const pauseFields = h('div', { class: 'row', 'data-for': 'pause', hidden: true },
    h('label', { for: 'ov-paused' }, 'Direction'),
    h('select', { id: 'ov-paused', name: 'paused' },
      h('option', { value: 'both' }, 'both directions'), h('option', { value: 'down' }, 'scale-down only'),
      h('option', { value: 'up' }, 'scale-up only')));
  const untilInput = h('input', { type: 'datetime-local', name: 'untilLocal', hidden: true, 'aria-label': 'Until (local time)' });
  const durationSelect = h('select', { id: 'ov-duration', name: 'duration' },
    DURATIONS.map(([v, l]) => h('option', { value: v, selected: v === '1h' }, l)));
  durationSelect.addEventListener('change', () => {
    untilInput.hidden = durationSelect.value !== 'until';
  });
  const stored = api.getToken();
  const tokenRow = stored
    ? h('div', { class: 'token-line' }, 'API token kept for this tab.',
      h('button', { type: 'button', class: 'link', onclick: (ev) => {
        api.setToken('');
        ev.currentTarget.closest('.token-line').replaceWith(tokenField());
      } }, 'Forget it'))
    : tokenField();

  const form = h('form', { class: 'form', id: 'override-form', novalidate: true },
    h('div', { class: 'seg', role: 'radiogroup', 'aria-label': 'Override kind' },
      action('pin', 'Pin replicas', true), action('bounds', 'Narrow bounds', false), action('pause', 'Pause', false)),
    pinFields, boundFields, pauseFields,
    h('div', { class: 'row' }, h('label', { for: 'ov-duration' }, 'For'), durationSelect, untilInput,
      h('span', { class: 'hint' }, 'Overrides always expire; the hub records who set them.')),
    h('div', { class: 'row' }, h('label', { for: 'ov-reason' }, 'Reason'),
      h('input', { id: 'ov-reason', name: 'reason', type: 'text', required: true, maxlength: 500, placeholder: 'e.g. incident 4711: hold for the migration' })),
    tokenRow,
    errorLine,
    h('div', {}, h('button', { type: 'submit', class: 'primary', id: 'set-override' }, replacing ? 'Replace override' : 'Set override')));

  form.addEventListener('change', (ev) => {
    if (ev.target.name !== 'action') return;
    for (const part of form.querySelectorAll('[data-for]')) part.hidden = part.dataset.for !== ev.target.value;
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errorLine.textContent = '';
    let body;
    try {
      body = bodyOf(form);
    } catch (e) {
      errorLine.textContent = e.message;
      return;
    }
    const token = await ensureToken(form);
    if (!token) {
      errorLine.textContent = 'An API token is required to set overrides.';
      return;
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      await api.write('PUT', `${api.targetPath(target)}/override`, body, token);
      toast(`Override set: ${describeOverride({ ...body, pauseDirection: body.paused })}`, 'ok');
      onChange();
    } catch (e) {
      if (e.status === 401) {
        api.setToken('');
        errorLine.textContent = `The token was refused (${e.message}). Enter it again.`;
      } else {
        errorLine.textContent = e.message;
      }
      submit.disabled = false;
    }
  });
  return form;
}

function tokenField() {
  return h('div', { class: 'row' }, h('label', { for: 'ov-token' }, 'API token'),
    h('input', { id: 'ov-token', name: 'token', type: 'password', autocomplete: 'off', placeholder: 'Bearer token from the hub’s token file' }),
    h('span', { class: 'hint' }, 'Kept in this browser tab’s session storage only; never sent anywhere but this hub.'));
}

/** The request body of the form, or an error that says what to fix. */
function bodyOf(form) {
  const f = new FormData(form);
  const int = (name, label) => {
    const raw = String(f.get(name) ?? '').trim();
    if (!/^\d+$/.test(raw)) throw new Error(`${label} must be a whole number of replicas.`);
    return Number(raw);
  };
  const body = {};
  const kind = f.get('action');
  if (kind === 'pin') body.replicas = int('replicas', 'Replicas');
  else if (kind === 'bounds') {
    body.minReplicas = int('minReplicas', 'Min replicas');
    body.maxReplicas = int('maxReplicas', 'Max replicas');
    if (body.minReplicas > body.maxReplicas) throw new Error('Min replicas must not be above max replicas.');
  } else body.paused = String(f.get('paused') || 'both');
  const duration = String(f.get('duration'));
  if (duration === 'until') {
    const local = String(f.get('untilLocal') || '');
    const at = local ? new Date(local) : null;
    if (!at || Number.isNaN(at.getTime())) throw new Error('Pick the time the override ends.');
    if (at.getTime() <= Date.now()) throw new Error('The end time must be in the future.');
    body.until = at.toISOString();
  } else {
    body.duration = duration;
  }
  const reason = String(f.get('reason') || '').trim();
  if (!reason) throw new Error('Say why: the reason is recorded with the override.');
  body.reason = reason;
  return body;
}
