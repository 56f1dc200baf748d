// Formatting of times, durations and numbers, always in the viewer's locale and time zone.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });

/** The viewer's time zone name, shown once in the UI so local times are unambiguous. */
export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';

/** A compact local time: "14:03:12" today, "Mar 3, 14:03:12" otherwise. */
export function localTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
}

/** The full local date and time with its zone, for tooltips. */
export function fullTime(ms) {
  return ms === null || ms === undefined ? '' : fullFmt.format(new Date(ms));
}

/** "12 sec. ago", "in 43 min." relative to now. */
export function relative(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return '—';
  const secs = Math.round((ms - now) / 1000);
  const abs = Math.abs(secs);
  if (abs < 60) return relFmt.format(secs, 'second');
  if (abs < 3600) return relFmt.format(Math.round(secs / 60), 'minute');
  if (abs < 86400) return relFmt.format(Math.round(secs / 3600), 'hour');
  return relFmt.format(Math.round(secs / 86400), 'day');
}

/** A duration in milliseconds as "850 ms", "2.4 s", "5m", "1h 30m". */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  const mins = Math.floor(ms / 60000);
  if (mins < 60) return `${mins}m${ms % 60000 ? ` ${Math.round((ms % 60000) / 1000)}s` : ''}`;
  const hours = Math.floor(mins / 60);
  return `${hours}h${mins % 60 ? ` ${mins % 60}m` : ''}`;
}

/** A replica count, or a dash when unknown. */
export function replicas(n) {
  return n === null || n === undefined ? '—' : String(n);
}

/** The first number in a metric value ("2300m over 3 ready pods" → 2300), or null. */
export function metricNumber(value) {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const m = value.match(/-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/i);
  return m ? Number(m[0]) : null;
}
