// Pieces every list page shares: a search box, column headers that sort,
// and the empty state of a filtered list. Lists the API pages (deployments,
// users, audit) search, sort and page on the server; small lists (the
// admin catalog) are loaded whole and searched and sorted here.

import { h } from './dom.js';
import { table, empty } from './ui.js';

// searchBox is a labelled search input calling onSearch(text) once the
// user stops typing (or presses Enter).
export function searchBox({ id, label, value = '', placeholder = '', onSearch }) {
  let timer = null;
  const input = h('input', { type: 'search', id, name: 'q', value, placeholder, autocomplete: 'off', spellcheck: 'false' });
  const fire = () => { clearTimeout(timer); onSearch(input.value.trim()); };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(fire, 300); });
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); fire(); } });
  return h('div', { class: 'field search-field' }, h('label', { for: id }, label), input);
}

// sortableTable is table() whose columns with a `sort` key have header
// buttons: clicking one sorts by it ascending, clicking it again
// descending. sort is {key, desc}; onSort(key, desc) applies a choice.
export function sortableTable(columns, rows, { sort = {}, onSort, ...opts }) {
  const el = table(columns, rows, opts);
  const ths = el.querySelectorAll('thead th');
  columns.forEach((c, i) => {
    if (!c.sort) return;
    const th = ths[i];
    const active = sort.key === c.sort;
    th.setAttribute('aria-sort', active ? (sort.desc ? 'descending' : 'ascending') : 'none');
    th.dataset.sort = c.sort;
    th.replaceChildren(h('button', {
      type: 'button', class: ['sort', active ? 'active' : ''],
      title: `Sort by ${c.label.toLowerCase()}`,
      onclick: () => onSort(c.sort, active ? !sort.desc : false),
    }, c.label, h('span', { class: 'sort-arrow', 'aria-hidden': 'true' }, active ? (sort.desc ? ' ▼' : ' ▲') : ' ↕')));
  });
  return el;
}

// noMatches is the empty state of a list whose filters leave nothing,
// with a button clearing them (as opposed to a list that is empty).
export function noMatches(what, onClear) {
  return empty(`No ${what} match these filters.`,
    h('button', { type: 'button', class: 'small', 'data-clear-filters': '', onclick: onClear }, 'Clear filters'));
}

// sortKeyOf is the value a rendered cell sorts by: the time of a <time>
// element, a number when the text is one, otherwise the text.
export function sortKeyOf(node) {
  const wrap = h('div', null, node);
  const t = wrap.querySelector('time[datetime]');
  if (t && t.getAttribute('datetime')) return new Date(t.getAttribute('datetime')).getTime();
  const text = wrap.textContent.trim();
  const n = Number(text.replace(/[%\s]|MiB|CPU/g, ''));
  return text !== '' && !Number.isNaN(n) ? n : text.toLowerCase();
}

// sortRows sorts a small list by what column c shows.
export function sortRows(rows, c, desc) {
  const keyed = rows.map((r) => [sortKeyOf(c.render(r)), r]);
  keyed.sort(([a], [b]) => {
    const cmp = typeof a === 'number' && typeof b === 'number' ? a - b
      : String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
    return desc ? -cmp : cmp;
  });
  return keyed.map(([, r]) => r);
}

// matches tells whether an item's shown text contains every word of q.
export function matches(columns, item, q) {
  if (!q) return true;
  const text = columns.map((c) => h('div', null, c.render(item)).textContent).join(' ').toLowerCase();
  return q.toLowerCase().split(/\s+/).filter(Boolean).every((w) => text.includes(w));
}
