// A generic admin page for one REST collection: a searchable table sorted
// by any column, a "New" button opening a form in a dialog, edit and delete
// per row. Pages for registries, services, plugins, etc. configure it with
// their columns and fields. Small collections are loaded whole and searched
// and sorted here; a collection the server searches, sorts and pages
// (serverList) asks it for one page at a time.

import { h, clear } from './dom.js';
import * as api from './api.js';
import { form } from './forms.js';
import { page, loading, empty, errorBox, pager, confirmDialog, modal, announce } from './ui.js';
import { searchBox, sortableTable, noMatches, sortRows, matches } from './lists.js';

// crudPage options:
//   title, singular, path ("/registries"),
//   columns: [{label, render(item)}],
//   fields(item, ctx) -> field specs (item null when creating),
//   context() -> Promise of data the fields need (e.g. registries list),
//   toBody(values, item) -> request body (default: values),
//   updateMethod: 'PUT' | 'PATCH' | null (null: no edit),
//   extraActions(item, reload, ctx) -> nodes for the row,
//   afterCreate(created, reload) -> optional follow-up (e.g. show a token),
//   deleteBlocked(item) -> why the item cannot be deleted (the Delete
//     button is then disabled and says so), or a falsy value,
//   intro: text under the title, emptyText,
//   serverList: the API takes ?q=, ?sort=, ?order= and pages; columns then
//     name their server sort key in `sort` (columns without one do not sort).
export function crudPage(opts) {
  const updateMethod = opts.updateMethod === undefined ? 'PUT' : opts.updateMethod;
  const newBtn = h('button', { type: 'button', class: 'primary', id: 'new-' + opts.singular.replace(/\s+/g, '-') }, 'New ' + opts.singular);
  const body = page(opts.title, { actions: [newBtn], subtitle: opts.intro });
  const list = h('div', { class: 'list' });
  const noun = opts.title.toLowerCase();
  const tools = h('div', { class: 'list-tools' }, searchBox({
    id: 'list-search', label: 'Search', placeholder: opts.searchPlaceholder || '',
    onSearch: (text) => { if (text === search) return; search = text; pageNo = 1; if (opts.serverList) reload(); else draw(); },
  }));
  body.append(tools, list);
  let ctx = {};
  let ctxReady = Promise.resolve(); // the form needs ctx: a click before it loaded waits
  let pageNo = 1;
  let alive = true;
  let search = '';
  let sort = { key: '', desc: false };
  let all = []; // every item (client-side lists) or the current page
  let lastData = null;

  const actionsColumn = {
    label: 'Actions', class: 'row-actions', render: (item) => [
      ...(opts.extraActions ? opts.extraActions(item, reload, ctx) : []),
      updateMethod ? h('button', { type: 'button', class: 'small', onclick: () => openForm(item) , 'aria-label': `Edit ${label(item)}` }, 'Edit') : null,
      opts.noDelete ? null : deleteButton(item),
    ],
  };
  // Client-side lists sort by any column (by what it shows).
  const columns = opts.serverList ? opts.columns : opts.columns.map((c) => ({ ...c, sort: c.label }));

  async function reload() {
    if (!all.length) clear(list, loading());
    try {
      ctxReady = opts.context ? opts.context().then((c) => { ctx = c; }) : Promise.resolve();
      await ctxReady;
      if (opts.serverList) {
        lastData = await api.get(opts.path + api.query({ page: pageNo, per_page: 50, ...(opts.listQuery || {}),
          q: search, sort: sort.key, order: sort.desc ? 'desc' : '' }));
        all = api.items(lastData);
      } else {
        all = await api.listAll(opts.path, opts.listQuery || {});
      }
      if (!alive) return;
      draw();
    } catch (err) {
      clear(list, errorBox(err));
    }
  }

  function draw() {
    let rows = all;
    if (!opts.serverList) {
      rows = all.filter((item) => matches(opts.columns, item, search));
      const col = columns.find((c) => c.sort === sort.key);
      if (col) rows = sortRows(rows, col, sort.desc);
    }
    if (rows.length === 0) {
      clear(list, search ? noMatches(noun, () => { search = ''; tools.querySelector('input').value = ''; pageNo = 1; if (opts.serverList) reload(); else draw(); })
        : empty(opts.emptyText || `No ${noun} yet.`));
      return;
    }
    clear(list, sortableTable([...columns, actionsColumn], rows, {
      caption: opts.title, rowAttrs: (r) => ({ 'data-name': r.name || r.username || String(r.id) }),
      sort, onSort: (key, desc) => { sort = { key, desc }; pageNo = 1; if (opts.serverList) reload(); else draw(); },
    }),
    opts.serverList ? pager(lastData, (p) => { pageNo = p; reload(); })
      : h('p', { class: 'muted small', id: 'list-count' }, rows.length === all.length ? `${all.length} total` : `${rows.length} of ${all.length}`));
  }

  async function openForm(item) {
    try {
      await ctxReady;
    } catch (err) {
      announce(`Cannot open the form: ${err.message}`, 'error');
      return;
    }
    let dlg;
    const f = form({
      id: opts.singular.replace(/\s+/g, '-') + '-form',
      fields: opts.fields(item, ctx),
      values: item || {},
      submitLabel: item ? 'Save' : 'Create',
      onCancel: () => dlg.close(),
      onSubmit: async (values) => {
        const payload = opts.toBody ? opts.toBody(values, item) : values;
        if (item) {
          await api.request(updateMethod, `${opts.path}/${item.id}`, payload);
          if (opts.afterUpdate) await opts.afterUpdate(values, item);
          dlg.close();
          announce(`${opts.singular} saved.`);
          reload();
        } else {
          const created = await api.post(opts.path, payload);
          dlg.close();
          announce(`${opts.singular} created.`);
          await reload();
          if (opts.afterCreate) opts.afterCreate(created, reload);
        }
      },
    });
    dlg = modal(item ? `Edit ${opts.singular} ${label(item)}` : `New ${opts.singular}`, f.el).dialog;
    const first = f.el.querySelector('input:not([disabled]),select:not([disabled]),textarea:not([disabled])');
    if (first) first.focus();
  }

  function deleteButton(item) {
    const why = opts.deleteBlocked ? opts.deleteBlocked(item) : '';
    if (!why) return h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${label(item)}`, onclick: () => remove(item) }, 'Delete');
    const id = `why-${opts.singular.replace(/\s+/g, '-')}-${item.id}`;
    return [
      h('button', { type: 'button', class: 'small danger', disabled: true, title: why, 'aria-describedby': id, 'aria-label': `Delete ${label(item)}` }, 'Delete'),
      h('span', { class: 'muted small delete-blocked', id }, why),
    ];
  }

  async function remove(item) {
    const ok = await confirmDialog(`Delete ${opts.singular} "${label(item)}"? This cannot be undone.`, { confirmLabel: 'Delete', danger: true });
    if (!ok) return;
    try {
      await api.del(`${opts.path}/${item.id}`);
      announce(`${opts.singular} deleted.`);
      reload();
    } catch (err) {
      announce(err.message, 'error');
    }
  }

  newBtn.addEventListener('click', () => openForm(null));
  reload();
  return () => { alive = false; };
}

// label names an item in buttons and dialogs.
const label = (item) => item.name || item.username || String(item.id);

// actionButton runs an API call from a row button, announcing the result.
export function actionButton(label, fn, { danger = false, confirm, aria } = {}) {
  const b = h('button', { type: 'button', class: ['small', danger ? 'danger' : ''], 'aria-label': aria }, label);
  b.addEventListener('click', async () => {
    if (confirm && !(await confirmDialog(confirm, { confirmLabel: label, danger }))) return;
    b.disabled = true;
    try { await fn(); } catch (err) { announce(err.message, 'error'); } finally { b.disabled = false; }
  });
  return b;
}
