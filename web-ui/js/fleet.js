// The fleet view: every target in one virtualised table. Pages come from the API's
// keyset cursor as the viewer scrolls; filter, search and sort run on the server, so
// 10,000 targets cost what one screen of rows costs.

import * as api from './api.js';
import { h, replace, debounce } from './dom.js';
import { relative, fullTime } from './format.js';
import { targetBadges, mainReason } from './state.js';
import { Sparklines } from './sparkline.js';
import { needsToken, tokenGate } from './auth.js';

const ROW = 44;
const OVERSCAN = 8;
const PAGE = 500;
const STATES = ['pending', 'active', 'shadow', 'error', 'invalid', 'conflict', 'removed'];
const COLUMNS = [
  { label: 'Status', sort: 'state' },
  { label: 'Namespace', sort: 'key' },
  { label: 'Kind' },
  { label: 'Name', sort: 'name' },
  { label: 'Replicas', title: 'current → desired' },
  { label: 'Recent decisions', title: 'Desired (blue) and current (grey) replicas of the last 40 decisions' },
  { label: 'Updated', sort: 'updated' },
  { label: 'Why (last decision)' },
];

/** Renders the fleet view into `root`; returns its teardown. */
export function renderFleet(root, { stream, navigate }) {
  const params = new URLSearchParams(location.search);
  const filter = {
    q: params.get('q') || '',
    state: params.get('state') || '',
    namespace: params.get('namespace') || '',
    sort: params.get('sort') || 'key',
  };
  let items = [];
  let index = new Map();
  let nextCursor = null;
  let loading = null;
  let counts = {};
  let generation = 0;
  let error = null;
  const rows = new Map();
  const namespaces = new Set();
  const sparks = new Sparklines();

  const search = h('input', {
    class: 'search', type: 'search', placeholder: 'Search name or namespace  ( / )', value: filter.q,
    'aria-label': 'Search targets by name or namespace', id: 'fleet-search',
  });
  const nsInput = h('input', {
    type: 'text', placeholder: 'Namespace', value: filter.namespace, list: 'ns-list', 'aria-label': 'Namespace filter', size: 14,
  });
  const nsList = h('datalist', { id: 'ns-list' });
  const stateSelect = h('select', { 'aria-label': 'State filter' },
    h('option', { value: '' }, 'All states'), STATES.map((s) => h('option', { value: s, selected: s === filter.state }, s)));
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Filter by state' });
  const headRow = h('div', { class: 'grid-row thead', role: 'row' });
  const canvas = h('div', { class: 'table-canvas', role: 'rowgroup' });
  const scroller = h('div', { class: 'table-scroll', tabindex: '0', 'aria-label': 'Targets' }, canvas);
  const foot = h('div', { class: 'table-foot' });
  const subtitle = h('span', { class: 'sub' });

  replace(root, h('div', { class: 'fleet-page' },
    h('div', { class: 'fleet-head' }, h('h1', {}, 'Fleet'), subtitle),
    h('section', { class: 'panel fleet', 'aria-label': 'Targets' },
      h('div', { class: 'toolbar' }, search, nsInput, nsList, stateSelect,
        h('button', { type: 'button', onclick: clearFilters, title: 'Clear search and filters' }, 'Clear')),
      chips,
      h('div', { role: 'table', 'aria-label': 'Targets', 'aria-rowcount': '-1' }, headRow, scroller),
      foot)));

  function renderHead() {
    replace(headRow, COLUMNS.map((c) => {
      if (!c.sort) return h('div', { class: 'cell', role: 'columnheader', title: c.title }, c.label);
      const active = filter.sort === c.sort;
      return h('div', { class: 'cell', role: 'columnheader' },
        h('button', {
          type: 'button', 'aria-sort': active ? (c.sort === 'updated' ? 'descending' : 'ascending') : 'none',
          title: `Sort by ${c.label.toLowerCase()}`, onclick: () => setFilter({ sort: c.sort }),
        }, c.label));
    }));
  }

  function renderChips() {
    const total = Object.entries(counts).filter(([s]) => s !== 'removed').reduce((a, [, n]) => a + n, 0);
    const chip = (state, label, n) => h('button', {
      type: 'button', class: 'chip', 'aria-pressed': String(filter.state === state), 'data-state': state || 'all',
      onclick: () => setFilter({ state: filter.state === state ? '' : state }),
    }, label, h('span', { class: 'count' }, n.toLocaleString()));
    replace(chips, chip('', 'all', total),
      STATES.filter((s) => counts[s]).map((s) => chip(s, s, counts[s])));
  }

  function setFilter(change) {
    Object.assign(filter, change);
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v && !(k === 'sort' && v === 'key')) p.set(k, v);
    const qs = p.toString();
    history.replaceState(null, '', qs ? `/?${qs}` : '/');
    stateSelect.value = filter.state;
    reload();
  }

  function clearFilters() {
    search.value = '';
    nsInput.value = '';
    setFilter({ q: '', state: '', namespace: '' });
  }

  /** Rows the scroll area is sized for: the known total when no text filter hides some. */
  function expectedRows() {
    if (!nextCursor) return items.length;
    if (!filter.q && !filter.namespace) {
      const n = filter.state ? counts[filter.state] || 0
        : Object.entries(counts).filter(([s]) => s !== 'removed').reduce((a, [, v]) => a + v, 0);
      if (n > items.length) return n;
    }
    return items.length + 1;
  }

  const relist = debounce(async () => {
    const gen = generation;
    try {
      const page = await api.get('/targets', { ...filter, limit: PAGE });
      if (gen !== generation || nextCursor) return;
      items = page.items || [];
      index = new Map(items.map((t, i) => [api.keyOf(t), i]));
      nextCursor = page.nextCursor || null;
      if (page.counts) counts = page.counts;
      for (const el of rows.values()) el.remove();
      rows.clear();
      renderChips();
      paint();
    } catch {
      // The next event tries again.
    }
  }, 1500);

  async function reload() {
    generation += 1;
    items = [];
    index = new Map();
    nextCursor = null;
    loading = null;
    error = null;
    for (const el of rows.values()) el.remove();
    rows.clear();
    scroller.scrollTop = 0;
    renderHead();
    await loadMore(true);
  }

  function loadMore(first = false) {
    if (loading) return loading;
    if (!first && !nextCursor) return Promise.resolve();
    const gen = generation;
    const query = {
      q: filter.q, state: filter.state, namespace: filter.namespace, sort: filter.sort,
      limit: PAGE, cursor: first ? undefined : nextCursor,
    };
    loading = api.get('/targets', query).then((page) => {
      if (gen !== generation) return;
      for (const t of page.items || []) {
        index.set(api.keyOf(t), items.length);
        items.push(t);
        namespaces.add(t.namespace);
      }
      nextCursor = page.nextCursor || null;
      if (page.counts) counts = page.counts;
      renderChips();
      renderNamespaces();
    }).catch((e) => {
      if (gen !== generation) return;
      error = e.message;
      if (needsToken(e)) {
        generation += 1;
        // Through the router, so this view is torn down (listeners, ticker, subscription)
        // before the fleet renders again with the token.
        tokenGate(root, e, () => navigate(location.pathname + location.search, { replaceState: true }));
      }
    }).finally(() => {
      if (gen === generation) {
        loading = null;
        paint();
      }
    });
    return loading;
  }

  function renderNamespaces() {
    if (nsList.childElementCount === namespaces.size) return;
    replace(nsList, [...namespaces].sort().map((n) => h('option', { value: n })));
  }

  function row(t, i) {
    const cur = t.currentReplicas;
    const want = t.desiredReplicas;
    const known = typeof want === 'number' && typeof cur === 'number';
    const wantClass = known && want > cur ? 'want-up' : known && want < cur ? 'want-down' : '';
    const d = t.lastDecision;
    const when = d ? d.time : t.updatedAt;
    const el = h('a', {
      class: 'trow grid-row', role: 'row', href: api.targetRoute(t), style: `top:${i * ROW}px`,
      'data-key': api.keyOf(t), 'aria-rowindex': i + 1,
    },
    h('div', { class: 'cell badges', role: 'cell' }, targetBadges(t, 2)),
    h('div', { class: 'cell ns', role: 'cell', title: t.namespace }, t.namespace),
    h('div', { class: 'cell kind', role: 'cell' }, t.kind),
    h('div', { class: 'cell name', role: 'cell', title: t.name }, t.name),
    h('div', { class: 'cell reps', role: 'cell', title: 'current → desired replicas' },
      h('span', {}, cur ?? '—'), h('span', { class: 'arrow', 'aria-label': 'to' }, '→'),
      h('span', { class: wantClass }, want ?? '—')),
    h('div', { class: 'cell spark-cell', role: 'cell' }, sparks.element(t)),
    h('div', { class: 'cell time', role: 'cell', title: fullTime(when) }, when ? relative(when) : '—'),
    h('div', { class: 'cell reason', role: 'cell', title: mainReason(t) }, mainReason(t)));
    return el;
  }

  function placeholder(i) {
    return h('div', { class: 'trow grid-row', style: `top:${i * ROW}px`, 'aria-busy': 'true' },
      h('div', { class: 'cell muted' }, error ? '' : 'loading…'));
  }

  function paint() {
    const total = expectedRows();
    canvas.style.height = `${total * ROW}px`;
    const top = scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((top + scroller.clientHeight) / ROW) + OVERSCAN);
    for (const [i, el] of rows) {
      if (i < first || i > last || (el.getAttribute('aria-busy') && i < items.length)) {
        el.remove();
        rows.delete(i);
      }
    }
    for (let i = first; i <= last; i += 1) {
      if (rows.has(i)) continue;
      const el = i < items.length ? row(items[i], i) : placeholder(i);
      rows.set(i, el);
      canvas.append(el);
    }
    if (last >= items.length - OVERSCAN && nextCursor && !loading) loadMore();
    if (items.length === 0 && !loading) {
      canvas.style.height = 'auto';
      replace(canvas, h('div', { class: 'empty' }, error ? `Could not load targets: ${error}`
        : 'No targets match. Workloads opt in with the annotation scalehub.io/enabled: "true".'));
      rows.clear();
    } else if (canvas.querySelector('.empty')) {
      canvas.querySelector('.empty').remove();
    }
    const more = nextCursor ? ' · scroll for more' : '';
    const expected = expectedRows();
    subtitle.textContent = nextCursor
      ? (expected > items.length + 1 ? `${expected.toLocaleString()} targets` : `${items.length.toLocaleString()}+ targets`)
      : `${items.length.toLocaleString()} target${items.length === 1 ? '' : 's'}`;
    replace(foot,
      h('span', {}, `Showing ${items.length ? `${first + 1}–${Math.min(last + 1, items.length)}` : '0'} of ${items.length.toLocaleString()} loaded${more}`),
      h('span', {}, 'Times in your local time zone · click a row for its decisions'));
    sparks.request(items.slice(first, Math.min(last + 1, items.length)));
  }

  function repaintRow(key, flash) {
    const i = index.get(key);
    if (i === undefined || !rows.has(i)) return;
    const el = row(items[i], i);
    if (flash) el.classList.add('flash');
    rows.get(i).replaceWith(el);
    rows.set(i, el);
  }

  let frame = 0;
  scroller.addEventListener('scroll', () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      paint();
    });
  });
  // "/" jumps to the search box, as on most list pages.
  const onKey = (ev) => {
    if (ev.key === '/' && !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement?.tagName || '')) {
      ev.preventDefault();
      search.focus();
    }
  };
  document.addEventListener('keydown', onKey);
  const onResize = debounce(paint, 100);
  window.addEventListener('resize', onResize);
  search.addEventListener('input', debounce(() => setFilter({ q: search.value.trim() }), 250));
  nsInput.addEventListener('change', () => setFilter({ namespace: nsInput.value.trim() }));
  stateSelect.addEventListener('change', () => setFilter({ state: stateSelect.value }));
  sparks.onUpdate = (key) => {
    const i = index.get(key);
    const el = i !== undefined && rows.get(i);
    if (el && !el.getAttribute('aria-busy')) el.querySelector('.spark-cell').replaceChildren(sparks.element(items[i]));
  };

  const unsubscribe = stream.subscribe((type, data) => {
    if (type === 'resync') {
      // Events were missed while the stream was down: list again, unless the reader has
      // scrolled into a long list.
      if (!nextCursor && items.length < PAGE) relist();
      return;
    }
    const key = api.eventKey(data);
    if (!key) return;
    const k = api.keyOf(key);
    const i = index.get(k);
    if (type === 'decision') {
      sparks.add(k, data);
      if (i === undefined) return;
      const t = items[i];
      items[i] = { ...t, lastDecision: data, desiredReplicas: data.finalReplicas ?? t.desiredReplicas };
      repaintRow(k, data.outcome === 'scaled');
    } else if (type === 'target' && i !== undefined) {
      items[i] = { ...items[i], ...data, lastDecision: data.lastDecision ?? items[i].lastDecision };
      repaintRow(k, false);
    } else if (type === 'target') {
      // A target this list has not seen: list again, unless the list is long (then it is
      // the reader's scroll position that matters more than one new row).
      if (!nextCursor && items.length < PAGE) relist();
    }
  });
  // Relative times ("12 s ago") age; refresh the visible rows now and then.
  const ticker = setInterval(() => {
    for (const [i, el] of rows) {
      if (i >= items.length) continue;
      const t = items[i];
      const when = t.lastDecision ? t.lastDecision.time : t.updatedAt;
      const cell = el.querySelector('.cell.time');
      if (cell && when) cell.textContent = relative(when);
    }
  }, 5000);

  renderHead();
  renderChips();
  reload();
  setTimeout(() => search.focus({ preventScroll: true }), 0);

  return () => {
    unsubscribe();
    clearInterval(ticker);
    window.removeEventListener('resize', onResize);
    document.removeEventListener('keydown', onKey);
    sparks.stop();
    generation += 1;
  };
}
