// Sparklines of the fleet table: the last decisions of each visible row, fetched lazily (only
// rows on screen, all of them in one `GET /replicas` call) and kept fresh by the live stream.

import * as api from './api.js';
import { h } from './dom.js';

const POINTS = 40;
const WIDTH = 112;
const HEIGHT = 26;
// Targets per `GET /replicas` call (the API's limit), and calls in flight at once.
const BATCH = 100;
const CONCURRENCY = 2;
const FRESH_MS = 60000;

/** A cache of recent decisions per target, with a fetch queue for visible rows. */
export class Sparklines {
  constructor() {
    this.cache = new Map();
    this.queue = [];
    this.wanted = new Set();
    this.running = 0;
    this.stopped = false;
    this.onUpdate = () => {};
  }

  /** Asks for the series of these targets (the rows now on screen); older requests are dropped. */
  request(targets) {
    this.wanted = new Set(targets.map(api.keyOf));
    const now = Date.now();
    this.queue = targets.filter((t) => {
      const c = this.cache.get(api.keyOf(t));
      return t.state !== 'invalid' && t.state !== 'conflict' && (!c || (!c.live && now - c.at > FRESH_MS));
    });
    this.pump();
  }

  pump() {
    while (!this.stopped && this.running < CONCURRENCY && this.queue.length) {
      const batch = [];
      while (this.queue.length && batch.length < BATCH) {
        const t = this.queue.shift();
        const key = api.keyOf(t);
        if (!this.wanted.has(key) || this.cache.has(key) && this.cache.get(key).pending) continue;
        batch.push([key, t]);
      }
      if (!batch.length) return;
      this.running += 1;
      for (const [key] of batch) this.cache.set(key, { ...(this.cache.get(key) || { points: [] }), pending: true });
      api.get('/replicas', { targets: batch.map(([key]) => key).join(','), limit: POINTS }).then((page) => {
        const items = page.items || [];
        batch.forEach(([key], i) => {
          const points = ((items[i] && items[i].points) || []).map(point).filter(Boolean);
          this.cache.set(key, { points, at: Date.now(), live: false });
          this.onUpdate(key);
        });
      }).catch(() => {
        for (const [key] of batch) this.cache.set(key, { points: [], at: Date.now(), failed: true });
      }).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  /** Appends a streamed decision to a cached series. */
  add(key, decision) {
    const c = this.cache.get(key);
    const p = point(decision);
    if (!c || !p || c.pending) return;
    c.points.push(p);
    if (c.points.length > POINTS) c.points.shift();
    this.onUpdate(key);
  }

  /** The sparkline of a target (an empty placeholder until its data arrives). */
  element(t) {
    const c = this.cache.get(api.keyOf(t));
    if (!c || !c.points || c.points.length < 2) {
      return h('span', { class: 'spark-empty', 'aria-hidden': 'true' });
    }
    return draw(c.points);
  }

  stop() {
    this.stopped = true;
    this.queue = [];
  }
}

function point(d) {
  const fin = d.finalReplicas ?? d.currentReplicas;
  if (fin === null || fin === undefined) return null;
  return { t: d.time, fin, cur: d.currentReplicas ?? fin };
}

function draw(points) {
  const values = points.flatMap((p) => [p.fin, p.cur]);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = Math.max(1, hi - lo);
  const x = (i) => ((i / (points.length - 1)) * (WIDTH - 2) + 1).toFixed(1);
  const y = (v) => (HEIGHT - 3 - ((v - lo) / span) * (HEIGHT - 6)).toFixed(1);
  // Steps, not slopes: replicas change at decisions and hold in between.
  const path = (key) => points.map((p, i) => `${i ? `H${x(i)}V` : `M${x(i)},`}${y(p[key])}`).join('');
  const fin = path('fin');
  const last = points[points.length - 1];
  const first = points[0];
  const label = `desired replicas from ${first.fin} to ${last.fin} over the last ${points.length} decisions (range ${lo}–${hi})`;
  return h('svg:svg', { class: 'spark', width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label },
    h('svg:title', {}, label),
    h('svg:path', { class: 'area', d: `${fin}V${HEIGHT}H${x(0)}Z` }),
    h('svg:path', { class: 'cur', d: path('cur') }),
    h('svg:path', { class: 'fin', d: fin }));
}
