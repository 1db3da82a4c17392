// The log viewer of the deployment page: one log at a time, chosen from the
// services and steps. Service logs stream from the agent (follow/pause),
// step logs come from the stored journal plus live step.log events. Every
// line keeps its time (the agent's Docker time for services, the journal's
// for steps); the viewer shows or hides the times, filters lines by a
// search, wraps long lines or not, and downloads what it holds. A log can
// be opened by itself in a new tab (?log=step:NAME on the deployment's page).

import { h, clear } from '../dom.js';
import * as api from '../api.js';
import { streamLines } from '../stream.js';

const MAX_LOG_LINES = 5000;
const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (.*)$/s;

// formatStamp shows a time as local "YYYY-MM-DD HH:MM:SS.mmm".
export function formatStamp(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// logPanel(dep, {services, steps, current}): services() and steps() list
// what can be shown, current() is the deployment as last seen.
export function logPanel(depId, listServices, listSteps, current0) {
  const select = h('select', { id: 'log-source', 'aria-label': 'Log source' });
  const followBtn = h('button', { type: 'button', id: 'log-follow', 'aria-pressed': 'true' }, 'Pause');
  const stampsBox = h('input', { type: 'checkbox', id: 'log-times', checked: true });
  const wrapBtn = h('button', { type: 'button', id: 'log-wrap', 'aria-pressed': 'true' }, 'Wrap lines');
  const search = h('input', { type: 'search', id: 'log-search', placeholder: 'Search the log', 'aria-label': 'Search the log', autocomplete: 'off', spellcheck: 'false' });
  const downloadBtn = h('button', { type: 'button', id: 'log-download', disabled: true }, 'Download');
  const aloneLink = h('a', { id: 'log-alone', target: '_blank', rel: 'noopener', hidden: true }, 'Open in a new tab ↗');
  const count = h('span', { class: 'muted small', id: 'log-count', 'aria-live': 'polite' });
  const out = h('pre', { class: 'log', id: 'log-output', tabindex: '0', 'aria-label': 'Log output', 'aria-live': 'off' });
  const state = h('p', { class: 'muted small', id: 'log-state', role: 'status' });
  const el = h('section', { class: 'card', 'aria-labelledby': 'logs-h', id: 'logs' },
    h('div', { class: 'section-head' }, h('h2', { id: 'logs-h' }, 'Logs'),
      h('div', { class: 'inline' }, h('label', { for: 'log-source' }, 'Source'), select, followBtn)),
    h('div', { class: 'log-tools inline' }, search, count,
      h('label', { class: 'check' }, stampsBox, ' Times'), wrapBtn, downloadBtn, aloneLink),
    state, out);
  let following = true;
  let current = '';
  let abort = null;
  let lines = []; // {at, text} with text ending in "\n"
  let held = []; // lines received while paused, shown on resume
  let filter = '';

  const shows = (l) => !filter || l.text.toLowerCase().includes(filter);
  const render = (l) => (stampsBox.checked && l.at ? formatStamp(l.at) + '  ' : '') + l.text;

  function updateCount() {
    const shown = filter ? lines.filter(shows).length : lines.length;
    count.textContent = filter ? `${shown} of ${lines.length} lines` : (lines.length ? `${lines.length} lines` : '');
    downloadBtn.disabled = lines.length === 0;
  }

  // redraw renders every line held (after a filter or option change).
  function redraw() {
    out.textContent = lines.filter(shows).map(render).join('');
    updateCount();
    if (following) out.scrollTop = out.scrollHeight;
  }

  function push(l) {
    lines.push(l);
    // Bound memory: drop the oldest half when the log gets long.
    if (lines.length > MAX_LOG_LINES) {
      lines = lines.slice(-MAX_LOG_LINES / 2);
      redraw();
      return;
    }
    if (shows(l)) out.append(document.createTextNode(render(l)));
    updateCount();
    if (following) out.scrollTop = out.scrollHeight;
  }

  const add = (l) => { if (following) push(l); else held.push(l); };

  // addText splits a chunk into lines that all get the time at.
  function addText(text, at) {
    for (const t of text.split(/(?<=\n)/)) {
      if (t) add({ at, text: t.endsWith('\n') ? t : t + '\n' });
    }
  }

  // addStamped takes a service log line that may start with its time.
  function addStamped(line) {
    const m = STAMP.exec(line);
    add(m ? { at: m[1], text: m[2] + '\n' } : { at: '', text: line + '\n' });
  }

  function fillSources() {
    const opts = [
      ...listServices().map((sv) => ['service:' + sv.id, `Service ${sv.id}`]),
      // Every step has a stored log: a plugin's stderr, a service's image
      // pull and health attempts.
      ...listSteps().map((st) => ['step:' + st.id, st.kind === 'component' ? `Step ${st.id}` : `Step ${st.id} (start of the service)`]),
    ];
    clear(select, h('option', { value: '' }, opts.length ? 'Choose a log' : 'No logs yet'),
      opts.map(([v, l]) => h('option', { value: v, selected: v === current }, l)));
    if (!current) explainDeleted();
  }

  // A deleted deployment has no containers left to stream from: say so
  // rather than offering a stream the server must refuse.
  function explainDeleted() {
    const dep = current0();
    if (dep.status !== 'deleted') return;
    state.textContent = 'This deployment was deleted: its service containers and their logs are gone.'
      + (listSteps().length ? ' The stored output of its steps remains: choose a step.' : '');
    state.dataset.deleted = 'true';
  }

  async function open(source) {
    if (abort) abort.abort();
    abort = null;
    current = source;
    fillSources();
    select.value = source;
    lines = [];
    held = [];
    redraw();
    aloneLink.hidden = !source;
    if (source) aloneLink.href = `/deployments/${depId}?log=${encodeURIComponent(source)}`;
    if (!source) { state.textContent = ''; explainDeleted(); return; }
    const [kind, name] = [source.slice(0, source.indexOf(':')), source.slice(source.indexOf(':') + 1)];
    if (kind === 'service' && current0().status === 'deleted') { explainDeleted(); return; }
    if (kind === 'step') {
      state.textContent = `Step ${name}: stored output, then live.`;
      try {
        const rows = api.items(await api.get(`/deployments/${depId}/steps/${encodeURIComponent(name)}/logs` + api.query({ limit: 5000 })));
        if (current !== source) return;
        for (const r of rows) addText(r.chunk, r.at);
      } catch (err) {
        state.textContent = `Step ${name}: ${err.message}`;
      }
      return;
    }
    abort = new AbortController();
    const ctl = abort;
    state.textContent = `Service ${name}: connecting…`;
    try {
      let first = true;
      await streamLines(`/deployments/${depId}/logs` + api.query({ service: name, follow: 'true', tail: 200, timestamps: 'true' }), (line) => {
        if (first) { state.textContent = `Service ${name}: streaming live.`; first = false; }
        addStamped(line);
      }, ctl.signal);
      if (current === source) state.textContent = `Service ${name}: stream ended.`;
    } catch (err) {
      if (err.name !== 'AbortError' && current === source) state.textContent = `Service ${name}: ${err.message}`;
    }
  }

  // download saves the lines held (all of them, not only those the search
  // shows), with their times in UTC when times are shown.
  function download() {
    const text = lines.map((l) => (stampsBox.checked && l.at ? new Date(l.at).toISOString() + ' ' : '') + l.text).join('');
    const name = `${(current0().name || 'deployment')}-${current.replace(':', '-')}.log`;
    const a = h('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/plain' })), download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { filter = search.value.trim().toLowerCase(); redraw(); }, 200);
  });
  stampsBox.addEventListener('change', redraw);
  wrapBtn.addEventListener('click', () => {
    const on = wrapBtn.getAttribute('aria-pressed') !== 'true';
    wrapBtn.setAttribute('aria-pressed', String(on));
    out.classList.toggle('nowrap', !on);
  });
  downloadBtn.addEventListener('click', download);
  select.addEventListener('focus', fillSources);
  select.addEventListener('change', () => open(select.value));
  followBtn.addEventListener('click', () => {
    following = !following;
    followBtn.textContent = following ? 'Pause' : 'Follow';
    followBtn.setAttribute('aria-pressed', String(following));
    state.dataset.paused = String(!following);
    if (following) {
      for (const l of held) push(l);
      held = [];
      out.scrollTop = out.scrollHeight;
    }
  });
  // Scrolling up pauses following; scrolling back to the end resumes.
  out.addEventListener('scroll', () => {
    const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    if (atEnd !== following) followBtn.click();
  });
  fillSources();

  return {
    el,
    open,
    get source() { return current; },
    stepChunk(stepId, chunk, at) {
      if (current !== 'step:' + stepId) return;
      addText(chunk, at || new Date().toISOString());
    },
    stop() { if (abort) abort.abort(); },
  };
}
