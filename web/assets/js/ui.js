// Reusable pieces of page UI: headings, loading/empty/error states, tables,
// the confirmation dialog, status announcements, and time formatting.

import { h, clear } from './dom.js';

// page renders the standard page frame into the main element and returns
// the body element to fill.
export function page(title, { actions = [], subtitle } = {}) {
  const main = document.getElementById('main');
  document.title = `${title} · NullOps`;
  const body = h('div', { class: 'page-body' });
  clear(main,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', { id: 'page-title', tabindex: '-1' }, title), subtitle ? h('p', { class: 'muted' }, subtitle) : null),
      h('div', { class: 'actions' }, actions)),
    body);
  return body;
}

export function loading(label = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
}

export function empty(message, action) {
  return h('div', { class: 'empty' }, h('p', null, message), action || null);
}

// errorBox shows an API error in the server's own words.
export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'error-box', role: 'alert' }, msg);
}

// table builds an accessible data table. columns: [{label, render(row) -> node|string, class}].
export function table(columns, rows, { caption, rowAttrs } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', null,
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', null, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : null,
        columns.map((c) => h('td', { class: c.class, 'data-label': c.label }, c.render(r))))))));
}

// pager renders previous/next controls for a paged list response. A list
// whose server stopped counting (total_capped: more than total items) shows
// "Page 1 of 40+ (1,000+ total)" and always offers the next page.
export function pager(data, onPage) {
  if (!data || typeof data.total !== 'number' || !data.per_page) return null;
  const capped = data.total_capped === true;
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  const total = capped ? `${data.total.toLocaleString('en-US')}+` : `${data.total}`;
  if (pages <= 1 && !capped) return h('p', { class: 'muted small' }, `${total} total`);
  const p = data.page || 1;
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: p <= 1, onclick: () => onPage(p - 1) }, '← Previous'),
    h('span', null, `Page ${p} of ${pages}${capped ? '+' : ''} (${total} total)`),
    h('button', { type: 'button', disabled: p >= pages && !capped, onclick: () => onPage(p + 1) }, 'Next →'));
}

// confirmDialog asks a yes/no question in a modal <dialog> and resolves to
// true when confirmed. Escape or Cancel resolve false; focus returns to the
// element that opened it.
export function confirmDialog(message, { confirmLabel = 'Confirm', danger = false, title = 'Are you sure?' } = {}) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-title' },
      h('h2', { id: 'dlg-title' }, title),
      h('p', null, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', value: 'cancel', onclick: () => dlg.close('cancel') }, 'Cancel'),
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', value: 'ok', onclick: () => dlg.close('ok') }, confirmLabel)));
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.focus) opener.focus();
      resolve(dlg.returnValue === 'ok');
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// modal shows arbitrary content in a dialog; returns {dialog, close}.
// beforeClose (optional) is asked when the user dismisses the dialog with
// Escape or ×; it resolves to true to let it close.
export function modal(title, content, { onClose, beforeClose } = {}) {
  const opener = document.activeElement;
  const dismiss = async () => {
    if (beforeClose && !(await beforeClose())) return;
    dlg.close();
  };
  const dlg = h('dialog', { class: 'dialog wide', 'aria-labelledby': 'modal-title' },
    h('div', { class: 'dialog-head' },
      h('h2', { id: 'modal-title' }, title),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', onclick: dismiss }, '×')),
    content);
  if (beforeClose) {
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); dismiss(); });
  }
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (opener && opener.focus) opener.focus();
    if (onClose) onClose();
  });
  document.body.append(dlg);
  dlg.showModal();
  return { dialog: dlg, close: () => dlg.close() };
}

// announce shows a short status message (and reads it to screen readers).
// Confirmations fade after a few seconds; errors stay until closed, so
// they can be read and copied.
export function announce(message, kind = 'ok') {
  const region = document.getElementById('toasts');
  const el = h('div', { class: ['toast', kind], role: kind === 'error' ? 'alert' : 'status' }, h('span', { class: 'toast-text' }, message));
  if (kind === 'error') {
    el.append(h('button', { type: 'button', class: 'icon toast-close', 'aria-label': 'Close this message', onclick: () => el.remove() }, '×'));
  } else {
    setTimeout(() => el.remove(), 5000);
  }
  region.append(el);
}

// copyText puts text on the clipboard and says so. Without the Clipboard
// API (plain-HTTP origins other than localhost) it falls back to copying a
// selected, off-screen text area.
export async function copyText(text, what = 'Copied.') {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
    } else {
      const ta = h('textarea', { class: 'sr-only', readonly: true }, text);
      document.body.append(ta);
      ta.select();
      const ok = document.execCommand('copy');
      ta.remove();
      if (!ok) throw new Error('copy refused');
    }
    announce(what);
    return true;
  } catch {
    announce('Copy failed; select the text instead.', 'error');
    return false;
  }
}

// copyButton is a small button copying text (e.g. a URL).
export function copyButton(text, { label = 'Copy', aria, what } = {}) {
  return h('button', { type: 'button', class: 'small copy', 'aria-label': aria || `Copy ${text}`, 'data-copy': text,
    onclick: () => copyText(text, what) }, label);
}

export function badge(status) {
  return h('span', { class: ['badge', 'st-' + String(status || 'unknown').replace(/[^a-z_-]/gi, '')] }, status || 'unknown');
}

// ---- time -----------------------------------------------------------------

export function formatTime(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return d.toLocaleString();
}

export function timeEl(ts) {
  return h('time', { datetime: ts || '' }, formatTime(ts));
}

export function formatDuration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const ss = seconds % 60;
  if (d > 0) return `${d}d ${hh}h ${mm}m`;
  if (hh > 0) return `${hh}h ${mm}m ${ss}s`;
  return `${mm}m ${ss}s`;
}

// Countdowns share one ticking interval; elements removed from the page
// stop being updated automatically.
const countdowns = new Set();
let ticker = null;

function tick() {
  for (const el of countdowns) {
    if (!el.isConnected) { countdowns.delete(el); continue; }
    updateCountdown(el);
  }
  if (countdowns.size === 0) { clearInterval(ticker); ticker = null; }
}

function updateCountdown(el) {
  const left = (new Date(el.dataset.expires).getTime() - Date.now()) / 1000;
  el.textContent = left > 0 ? formatDuration(left) : 'expiring now';
  el.classList.toggle('soon', left < 3600);
}

// countdown shows the time left until ts, updated every second.
export function countdown(ts) {
  if (!ts) return h('span', { class: 'muted' }, '—');
  const el = h('time', { class: 'countdown', datetime: ts, title: 'Auto-cleanup at ' + formatTime(ts), dataset: { expires: ts } });
  updateCountdown(el);
  countdowns.add(el);
  if (!ticker) ticker = setInterval(tick, 1000);
  return el;
}

export function formatBytes(n) {
  if (!n && n !== 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// loadInto shows a loading state in el, awaits fn(), and renders its result
// or the error. Returns the result (or undefined on error).
export async function loadInto(el, fn) {
  clear(el, loading());
  try {
    const nodes = await fn();
    clear(el, nodes);
    return nodes;
  } catch (err) {
    clear(el, errorBox(err));
    return undefined;
  }
}
