// The audit log with filters (actor, action, target, time range): readable
// action names, links to the targets, details as a small table. Admins see
// every entry; users see the entries about projects and environments they
// hold a grant on (the API filters).

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import * as session from '../../session.js';
import { form } from '../../forms.js';
import { page, loading, empty, errorBox, table, pager, timeEl } from '../../ui.js';
import { actionName, targetLink, targetLabel, detailRows } from '../../audit-names.js';

export function auditPage(_params, q) {
  const admin = session.isAdmin();
  const body = page('Audit log', {
    subtitle: admin ? 'Who did what, when, to what.' : 'Who did what, when, to the deployments, projects and environments you have access to.',
  });
  const filters = Object.fromEntries(q.entries());
  const list = h('div');
  let pageNo = Number(filters.page || 1);
  delete filters.page;

  const f = form({
    id: 'audit-filters',
    fields: [
      { name: 'actor', label: 'Actor', optional: true, placeholder: 'username' },
      { name: 'action', label: 'Action', optional: true, placeholder: 'deployment.create or deployment.*' },
      { name: 'target_type', label: 'Target type', optional: true, placeholder: 'deployment' },
      { name: 'since', label: 'From', type: 'datetime-local', optional: true },
      { name: 'until', label: 'To', type: 'datetime-local', optional: true },
    ],
    values: filters,
    submitLabel: 'Filter',
    onSubmit: async (v) => {
      for (const k of Object.keys(filters)) delete filters[k];
      Object.assign(filters, v);
      pageNo = 1;
      history.replaceState(null, '', location.pathname + api.query(filters));
      await reload();
    },
  });
  f.el.classList.add('filters');
  body.append(f.el, list);

  // datetime-local values are local time; the API wants RFC 3339.
  const toRFC = (v) => (v ? new Date(v).toISOString() : undefined);

  const target = (r) => {
    const label = targetLabel(r);
    const href = targetLink(r, admin);
    return href ? h('a', { href, 'data-target': r.target_type }, label) : label;
  };
  const details = (r) => {
    const rows = detailRows(r.detail);
    if (!rows.length) return '';
    return h('table', { class: 'kv' }, h('tbody', null, rows.map(([k, v]) => h('tr', null,
      h('th', { scope: 'row' }, k.replace(/_/g, ' ')), h('td', null, v)))));
  };

  const started = api.newest();
  async function reload() {
    const current = started();
    clear(list, loading());
    try {
      const data = await api.get('/audit' + api.query({ ...filters, since: toRFC(filters.since), until: toRFC(filters.until), page: pageNo, per_page: 50 }));
      if (!current()) return; // filters changed meanwhile: the newer answer draws
      const rows = api.items(data);
      const filtered = Object.values(filters).some(Boolean);
      clear(list, rows.length === 0 ? empty(filtered ? 'No audit entries match these filters.' : 'No audit entries yet.') : [
        table([
          { label: 'When', render: (r) => timeEl(r.created_at) },
          { label: 'Actor', render: (r) => r.actor || r.actor_name || (r.actor_id ? `user ${r.actor_id}` : 'system') },
          { label: 'Action', render: (r) => h('span', { class: 'audit-action', title: r.action, 'data-action-code': r.action }, actionName(r.action)) },
          { label: 'Target', render: target },
          { label: 'From', render: (r) => r.client_addr || '' },
          { label: 'Details', render: details },
        ], rows, { caption: 'Audit entries', rowAttrs: (r) => ({ 'data-audit-id': r.id }) }),
        pager(data, (p) => { pageNo = p; reload(); }),
      ]);
    } catch (err) {
      if (current()) clear(list, errorBox(err));
    }
  }
  reload();
}
