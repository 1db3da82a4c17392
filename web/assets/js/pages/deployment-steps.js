// The steps of a deployment's pipeline: when each ran and for how long,
// its attempts, its message and the outputs it handed to later steps, with
// secret values masked (the agent reports them as ${secrets.NAME}).

import { h } from '../dom.js';
import { badge, timeEl, formatDuration, table } from '../ui.js';

const SECRET_REF = /\$\{secrets\.([^}]+)\}/g;

// stepDuration is how long a step ran (so far, while it runs), or ''.
export function stepDuration(st, now = Date.now()) {
  if (!st || !st.started_at) return '';
  const end = st.finished_at ? new Date(st.finished_at).getTime() : (st.status === 'running' ? now : NaN);
  const secs = (end - new Date(st.started_at).getTime()) / 1000;
  if (Number.isNaN(secs) || secs < 0) return '';
  return secs < 60 ? `${secs.toFixed(secs < 10 ? 1 : 0)}s` : formatDuration(secs);
}

// maskedValue shows an output value with each secret reference as a mask
// naming the secret, never a value.
export function maskedValue(v) {
  const parts = [];
  let last = 0;
  for (const m of String(v).matchAll(SECRET_REF)) {
    parts.push(String(v).slice(last, m.index),
      h('span', { class: 'secret-mask', title: `the value of secret ${m[1]}`, 'data-secret': m[1] }, '••••', h('span', { class: 'small' }, ` ${m[1]}`)));
    last = m.index + m[0].length;
  }
  parts.push(String(v).slice(last));
  return h('code', { class: 'output-value' }, parts);
}

// Durations of running steps tick every second; elements removed from the
// page stop being updated.
const ticking = new Set();
let ticker = null;

function tick() {
  for (const el of ticking) {
    if (!el.isConnected) { ticking.delete(el); continue; }
    el.textContent = el.dataset.prefix + stepDuration({ started_at: el.dataset.since, status: 'running' });
  }
  if (ticking.size === 0) { clearInterval(ticker); ticker = null; }
}

// durationEl shows how long a step took, or has been running so far.
function durationEl(st, prefix = '') {
  const el = h('span', { class: 'step-took' }, prefix + (stepDuration(st) || '—'));
  if (st.status === 'running' && st.started_at && !st.finished_at) {
    Object.assign(el.dataset, { since: st.started_at, prefix });
    ticking.add(el);
    if (!ticker) ticker = setInterval(tick, 1000);
  }
  return el;
}

// stepsTable lists every step with its status, start, duration and
// outputs; onShow(id) selects one (details and log).
export function stepsTable(steps, onShow) {
  return table([
    { label: 'Step', render: (st) => h('strong', null, st.id) },
    { label: 'Kind', render: (st) => st.kind || '' },
    { label: 'Status', render: (st) => [badge(st.status || 'pending'), st.attempt > 1 ? h('span', { class: 'muted small' }, ` attempt ${st.attempt}`) : null] },
    { label: 'Started', render: (st) => (st.started_at ? timeEl(st.started_at) : '—') },
    { label: 'Duration', class: 'step-duration', render: (st) => (stepDuration(st) ? durationEl(st) : '—') },
    { label: 'Outputs', render: (st) => (st.outputs && Object.keys(st.outputs).length ? String(Object.keys(st.outputs).length) : '—') },
    { label: '', class: 'row-actions', render: (st) => h('button', { type: 'button', class: 'small', 'aria-label': `Show step ${st.id}`, 'data-show-step': st.id, onclick: () => onShow(st.id) }, 'Show') },
  ], steps, { caption: 'Steps', rowAttrs: (st) => ({ 'data-step': st.id, 'data-status': st.status || 'pending' }) });
}

// stepDetails is the detail of one step: status, times, duration,
// message and outputs.
export function stepDetails(st) {
  const outs = Object.entries(st.outputs || {}).sort(([a], [b]) => a.localeCompare(b));
  const dur = stepDuration(st);
  return h('div', { class: 'step-details', 'data-step': st.id },
    h('p', null, h('strong', null, st.id), ' ', badge(st.status),
      st.attempt > 1 ? ` attempt ${st.attempt}` : '',
      st.started_at ? [' · started ', timeEl(st.started_at)] : null,
      st.finished_at ? [' · finished ', timeEl(st.finished_at)] : null,
      dur ? [' · ', durationEl(st, st.status === 'running' ? 'running for ' : 'took ')] : null,
      st.message ? h('span', { class: st.status === 'failed' ? 'field-error' : 'muted' }, ' — ' + st.message) : null),
    outs.length ? h('dl', { class: 'facts step-outputs', 'aria-label': `Outputs of ${st.id}` },
      outs.map(([k, v]) => [h('dt', null, k), h('dd', null, maskedValue(v))])) : null);
}
