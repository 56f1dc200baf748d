// The REST API client: JSON reads, authorised writes and the live event stream.

const BASE = '/api/v1';
const TOKEN_KEY = 'scalehub.token';

let hub = null;

/** The last `/api/v1/hub` answer (version, leader, writesEnabled, readsProtected), or null. */
export function hubInfo() {
  return hub;
}

/** Remembers the hub's answer for the views. */
export function setHubInfo(info) {
  hub = info;
}

/** An API failure, with the HTTP status and the server's `error` message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The API path of one target. */
export function targetPath(t) {
  return `${BASE}/targets/${encodeURIComponent(t.namespace)}/${encodeURIComponent(t.kind)}/${encodeURIComponent(t.name)}`;
}

/** The dashboard route of one target. */
export function targetRoute(t) {
  return `/targets/${encodeURIComponent(t.namespace)}/${encodeURIComponent(t.kind)}/${encodeURIComponent(t.name)}`;
}

/** A target's identity as one string, e.g. for maps. */
export function keyOf(t) {
  return `${t.namespace}/${t.kind}/${t.name}`;
}

async function request(method, path, { params, body, token, signal } = {}) {
  const url = new URL(path.startsWith('/api') ? path : BASE + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const stored = token === undefined ? getToken() : token;
  if (stored) headers.Authorization = `Bearer ${stored}`;
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the hub is not reachable');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const message = (data && data.error) || text.trim() || res.statusText;
    throw new ApiError(res.status, message);
  }
  return data;
}

/** GET a JSON document. */
export function get(path, params, signal) {
  return request('GET', path, { params, signal });
}

/** PUT/POST/DELETE with the session's token (or `token`), and optional query parameters. */
export function write(method, path, body, token, params) {
  return request(method, path, { body, token, params });
}

/** The token kept for this browser tab's session (never in localStorage or cookies). */
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

/** Remembers or forgets the token for this session. */
export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage may be disabled; the token is then asked for on every write.
  }
  window.dispatchEvent(new Event('scalehub:token'));
}

/** The target key of a stream event's payload, whichever way the server nests it. */
export function eventKey(data) {
  const t = data && (data.target && data.target.namespace ? data.target : data.key && data.key.namespace ? data.key : data);
  return t && t.namespace ? { namespace: t.namespace, kind: t.kind, name: t.name } : null;
}

/**
 * The live stream: one EventSource at a time, shared by the views. `connect(params)` (re)opens
 * it with the API's filters (a target page asks for its own target only). Listeners get
 * ('decision' | 'target', payload), and ('resync', {}) when the stream reopened after a gap (the
 * hub ended it with an `end` event because this page fell behind, or the connection dropped):
 * events were missed, refetch. Status listeners get 'live' | 'connecting' | 'offline'.
 */
export class Stream {
  constructor() {
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.source = null;
    this.query = null;
  }

  connect(params = {}) {
    if (typeof EventSource === 'undefined') return;
    const url = new URL(`${BASE}/stream`, location.origin);
    for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
    if (this.source && this.query === url.search) return;
    if (this.source) this.source.close();
    this.query = url.search;
    this.setStatus('connecting');
    const source = new EventSource(url);
    this.source = source;
    let opened = false;
    source.onopen = () => {
      this.setStatus('live');
      if (opened) for (const fn of this.listeners) fn('resync', {});
      opened = true;
    };
    // EventSource reconnects by itself; only report the gap.
    source.onerror = () => this.setStatus(source.readyState === EventSource.CLOSED ? 'offline' : 'connecting');
    for (const type of ['decision', 'target']) {
      source.addEventListener(type, (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        for (const fn of this.listeners) fn(type, data);
      });
    }
  }

  setStatus(status) {
    this.status = status;
    for (const fn of this.statusListeners) fn(status);
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Adds a status listener. */
  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status || 'offline');
  }
}

/** A decision's identity in the page. Streamed decisions carry id 0 (sent before the
 * commit), so the time and run type identify it until the stored row replaces it. */
export function decisionKey(d) {
  return `${d.time}|${d.runType}`;
}
