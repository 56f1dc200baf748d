// Entry point: the router (History API; the hub serves index.html for every app route),
// the hub summary in the top bar and the live-stream indicator.

// Uncaught errors are kept where the browser tests can read them.
window.__errors = [];
window.addEventListener('error', (ev) => window.__errors.push(String(ev.message || ev)));
window.addEventListener('unhandledrejection', (ev) => window.__errors.push(String(ev.reason && ev.reason.message || ev.reason)));

import * as api from './api.js';
import { h, replace } from './dom.js';
import { timeZone } from './format.js';
import { renderFleet } from './fleet.js';
import { renderTarget } from './target.js';
import { needsToken } from './auth.js';

const stream = new api.Stream();
// For the browser tests: the live stream's listeners show whether views tear down.
window.__scalehub = { stream };
const app = document.getElementById('app');
let teardown = null;

/** Navigates within the app without a page load. */
export function navigate(url, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

function route() {
  if (teardown) teardown();
  teardown = null;
  const path = location.pathname;
  const m = path.match(/^\/targets\/([^/]+)\/([^/]+)\/([^/]+)\/?$/);
  const crumbs = document.getElementById('crumbs');
  if (m) {
    const [ns, kind, name] = m.slice(1).map(decodeURIComponent);
    replace(crumbs, h('a', { href: '/', 'data-link': true }, 'Fleet'), h('span', { class: 'sep' }, '/'),
      h('span', {}, `${ns} / ${kind} / ${name}`));
    document.title = `${name} · scalehub`;
    stream.connect({ namespace: ns, kind, name });
    teardown = renderTarget(app, { namespace: ns, kind, name }, { stream, navigate });
  } else {
    replace(crumbs, h('span', {}, 'Fleet'));
    document.title = 'scalehub';
    stream.connect({});
    teardown = renderFleet(app, { stream, navigate });
  }
  app.focus({ preventScroll: true });
}

// Same-origin links marked data-link (and app routes in general) are handled here.
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest('a[href]');
  if (!a || a.target || a.origin !== location.origin || a.hasAttribute('download')) return;
  if (!(a.pathname === '/' || a.pathname.startsWith('/targets/'))) return;
  ev.preventDefault();
  if (a.href !== location.href) navigate(a.pathname + a.search);
});
window.addEventListener('popstate', route);

async function refreshHub() {
  const box = document.getElementById('hub-summary');
  try {
    const hub = await api.get('/hub');
    api.setHubInfo(hub);
    const total = Object.values(hub.targets || {}).reduce((a, b) => a + b, 0);
    const role = hub.leader ? 'Leader' : 'Standby';
    replace(box,
      h('span', { class: `role ${hub.leader ? 'leader' : 'standby'}`, title: hub.leader
        ? 'This hub holds the lease and scales targets'
        : 'Another hub holds the lease; this one only serves the API' },
      h('span', { class: 'role-dot', 'aria-hidden': 'true' }), role),
      h('span', { title: 'Hub identity' }, hub.identity || ''),
      h('span', { class: 'num', title: 'Managed targets' }, `${total.toLocaleString()} targets`),
      h('span', { title: `Times are shown in ${timeZone}` }, `v${hub.version || '?'} · ${timeZone}`));
  } catch (e) {
    // A 401/403 is a hub that answered: it wants a token (the view asks for it).
    const text = needsToken(e) ? 'token needed' : 'hub unreachable';
    const title = needsToken(e) ? `The hub answered ${e.status}: ${e.message}` : `No answer from the hub: ${e.message}`;
    replace(box, h('span', { class: 'role standby', title }, h('span', { class: 'role-dot', 'aria-hidden': 'true' }), text));
  }
}
window.addEventListener('scalehub:token', refreshHub);

stream.onStatus((status) => {
  const el = document.getElementById('live');
  el.className = `live is-${status}`;
  el.querySelector('.live-text').textContent = status === 'live' ? 'live' : status === 'connecting' ? 'reconnecting' : 'offline';
});

// The first view waits for the hub's answer, so it knows whether writes are enabled.
refreshHub().finally(route);
setInterval(refreshHub, 15000);
