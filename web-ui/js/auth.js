// The sign-in box for hubs that protect reads (`api.protectReads`): asks for the bearer
// token once, keeps it for this tab's session, then retries what failed.

import * as api from './api.js';
import { h, replace } from './dom.js';

/** Whether an API error means "a token is needed (or was refused)". */
export function needsToken(error) {
  return error && (error.status === 401 || error.status === 403);
}

/** Renders the token box into `el`; `retry` runs once a token is entered. */
export function tokenGate(el, error, retry) {
  const input = h('input', { type: 'password', id: 'read-token', autocomplete: 'off', placeholder: 'Bearer token', 'aria-label': 'API token' });
  const form = h('form', { class: 'form token-gate' },
    h('h1', {}, 'This hub needs a token'),
    h('p', { class: 'muted' }, `The API answered: ${error.message}. Enter a token from the hub’s token file; `
      + 'it is kept in this browser tab’s session storage only.'),
    input,
    h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Continue')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!input.value.trim()) return;
    api.setToken(input.value.trim());
    retry();
  });
  replace(el, h('div', { class: 'panel panel-body gate' }, form));
  input.focus();
}
