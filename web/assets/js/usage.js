// The deployment page's resource graphs: CPU and memory of each service over
// the deployment's life (the server keeps one sample per 15 s for 24 h, see
// docs/architecture.md, "Usage history"), drawn as inline SVG and extended
// by polling for newer samples while the deployment lives.

import { h, s, clear } from './dom.js';
import * as api from './api.js';
import { formatBytes, formatTime } from './ui.js';

// The viewBox is as wide as the chart is on screen (so text keeps its
// size on a phone); H is fixed.
const H = 170;
const GAP = 12; // between the two charts, as .usage-charts sets it
const MIN_CHART = 280; // narrower than this, the charts stack
const PAD = { left: 64, right: 10, top: 10, bottom: 24 };

// usageSection returns {el, stop} for deployment id; current() is the
// deployment as the page knows it (its status decides whether to poll).
export function usageSection(id, current) {
  const body = h('div', { id: 'usage', 'aria-live': 'off' });
  const el = h('section', { class: 'card', 'aria-labelledby': 'usage-h' },
    h('div', { class: 'section-head' }, h('h2', { id: 'usage-h' }, 'Resource usage'),
      h('span', { class: 'muted small', id: 'usage-note' }, 'one point per 15 s, the last 24 h; CPU 100% = one core')),
    body);
  const series = new Map(); // service → [[t, cpu, mem], …]
  let step = 15;
  let windowSec = 86400;
  let last = 0; // newest point's time (unix seconds)
  let timer = null;
  let stopped = false;
  let loaded = false;

  const live = () => ['deploying', 'running', 'offline'].includes(current().status);

  async function load() {
    try {
      const q = last ? api.query({ since: new Date(last * 1000).toISOString() }) : '';
      const u = await api.get(`/deployments/${id}/usage${q}`);
      if (stopped) return;
      step = u.step_seconds || step;
      windowSec = u.window_seconds || windowSec;
      const cutoff = Date.parse(u.to) / 1000 - windowSec;
      for (const sv of u.services || []) {
        // The server keeps one sample per slot and overwrites the newest
        // slot until it ends: a newer sample replaces the one of its slot.
        const fresh = sv.points || [];
        const slots = new Set(fresh.map((p) => Math.floor(p[0] / step)));
        const pts = (series.get(sv.service) || []).filter((p) => p[0] > cutoff && !slots.has(Math.floor(p[0] / step))).concat(fresh);
        series.set(sv.service, pts);
        if (pts.length) last = Math.max(last, pts[pts.length - 1][0]);
      }
      loaded = true;
      draw();
    } catch (err) {
      if (!loaded) clear(body, h('p', { class: 'muted small' }, `Usage history unavailable: ${err.message}`));
    }
  }

  function draw() {
    const dep = current();
    if (dep.status === 'deleted') {
      clear(body, h('p', { class: 'muted small', id: 'usage-empty' }, 'The usage history was removed with the deployment.'));
      return;
    }
    if (series.size === 0 || [...series.values()].every((p) => p.length === 0)) {
      clear(body, h('p', { class: 'muted small', id: 'usage-empty' },
        live() ? 'No samples yet: the agent measures each running service container, and a point is kept every 15 s.' : 'No samples were recorded.'));
      return;
    }
    const now = Date.now() / 1000;
    const created = dep.created_at ? Date.parse(dep.created_at) / 1000 : now;
    // The deployment's life, at most the window: from its creation (or the
    // first sample) to now, or to the last sample once it stopped.
    const first = Math.min(...[...series.values()].filter((p) => p.length).map((p) => p[0][0]));
    const end = live() ? Math.max(now, last) : last;
    const start = Math.max(Math.min(created, first), end - windowSec);
    const bw = body.clientWidth || 600;
    const W = Math.max(240, Math.floor(bw >= 2 * MIN_CHART + GAP ? (bw - GAP) / 2 : bw));
    clear(body, [...series.keys()].sort().map((svc) => {
      const pts = series.get(svc);
      return h('div', { class: 'usage-service', 'data-service': svc },
        h('h3', null, svc),
        h('div', { class: 'usage-charts' },
          chart(svc, 'cpu', 'CPU', pts, 1, start, end, W, (v) => `${v.toFixed(v < 10 ? 1 : 0)}%`),
          chart(svc, 'memory', 'Memory', pts, 2, start, end, W, (v) => formatBytes(v))));
    }));
  }

  // chart draws one metric (column col of the points) between t0 and t1.
  function chart(svc, metric, label, pts, col, t0, t1, W, fmt) {
    const values = pts.map((p) => p[col]);
    const peak = values.length ? Math.max(...values) : 0;
    const now = values.length ? values[values.length - 1] : null;
    const top = niceCeil(Math.max(peak, metric === 'cpu' ? 1 : 1048576), metric === 'memory');
    const pw = W - PAD.left - PAD.right;
    const ph = H - PAD.top - PAD.bottom;
    const span = Math.max(t1 - t0, step);
    const x = (t) => PAD.left + ((t - t0) / span) * pw;
    const y = (v) => PAD.top + ph - (v / top) * ph;
    // A gap longer than a few steps (node away, container not there) breaks the line.
    let d = '';
    let prev = null;
    for (const p of pts) {
      const cmd = prev === null || p[0] - prev > step * 2.5 ? 'M' : 'L';
      d += `${cmd}${x(p[0]).toFixed(1)} ${y(p[col]).toFixed(1)} `;
      prev = p[0];
    }
    const grid = [0, 0.5, 1].map((f) => {
      const v = top * f;
      return [s('line', { class: 'usage-grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
        s('text', { class: 'usage-tick', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v))];
    });
    const times = [t0, (t0 + t1) / 2, t1].map((t, i) => s('text', { class: 'usage-tick', x: x(t), y: H - 6,
      'text-anchor': ['start', 'middle', 'end'][i] }, clock(t, t1 - t0)));
    const desc = `${label} of ${svc} from ${formatTime(new Date(t0 * 1000).toISOString())} to ${formatTime(new Date(t1 * 1000).toISOString())}: `
      + (now === null ? 'no samples' : `now ${fmt(now)}, peak ${fmt(peak)}, ${pts.length} points`);
    const lone = pts.length === 1 ? s('circle', { class: `usage-line ${metric}`, cx: x(pts[0][0]), cy: y(pts[0][col]), r: 3 }) : null;
    const summary = now === null ? 'no samples' : `now ${fmt(now)} · peak ${fmt(peak)}`;
    const readout = h('span', { class: 'muted small', 'data-now': '' }, summary);
    // Pointing at the chart reads the nearest sample out in the caption.
    const cursor = s('line', { class: 'usage-cursor', x1: 0, x2: 0, y1: PAD.top, y2: PAD.top + ph, visibility: 'hidden' });
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'usage-svg', role: 'img', 'aria-label': desc,
      'data-service': svc, 'data-metric': metric, 'data-points': String(pts.length), 'data-last': now === null ? '' : String(now) },
    s('title', null, desc),
    grid, times,
    s('line', { class: 'usage-axis', x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + ph }),
    d ? s('path', { class: `usage-line ${metric}`, d: d.trim() }) : null, lone, cursor);
    if (pts.length) {
      svg.addEventListener('pointermove', (ev) => {
        const r = svg.getBoundingClientRect();
        const t = t0 + (((ev.clientX - r.left) * (W / r.width) - PAD.left) / pw) * span;
        let best = pts[0];
        for (const p of pts) if (Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        cursor.setAttribute('x1', x(best[0]));
        cursor.setAttribute('x2', x(best[0]));
        cursor.setAttribute('visibility', 'visible');
        readout.textContent = `${clock(best[0], 0)}: ${fmt(best[col])}`;
      });
      svg.addEventListener('pointerleave', () => { cursor.setAttribute('visibility', 'hidden'); readout.textContent = summary; });
    }
    return h('figure', { class: 'usage-chart' },
      h('figcaption', null, h('strong', null, label), ' ', readout), svg);
  }

  function schedule() {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(async () => {
      if (live()) await load(); else draw();
      schedule();
    }, step * 1000);
  }

  // A new window width redraws the charts at their new size.
  let resizing = null;
  const onResize = () => { clearTimeout(resizing); resizing = setTimeout(() => { if (loaded && !stopped) draw(); }, 150); };
  window.addEventListener('resize', onResize);

  clear(body, h('p', { class: 'muted small' }, 'Loading usage…'));
  load().then(schedule);
  return { el, stop: () => { stopped = true; clearTimeout(timer); clearTimeout(resizing); window.removeEventListener('resize', onResize); } };
}

// niceCeil rounds v up to 1, 2 or 5 × a power of ten (of 1024 for bytes,
// in MiB and GiB steps) so the axis labels are round.
function niceCeil(v, bytes) {
  const base = bytes ? 1048576 : 1;
  const x = v / base;
  const p = 10 ** Math.floor(Math.log10(x));
  const m = x / p;
  const n = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
  return n * p * base;
}

// clock labels a time: hours and minutes, with the date over a day.
function clock(t, span) {
  const d = new Date(t * 1000);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: span < 600 ? '2-digit' : undefined });
  return span > 86400 ? `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${hm}` : hm;
}
