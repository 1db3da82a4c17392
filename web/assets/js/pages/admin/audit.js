// Admin: the audit log with filters (actor, action, target, time range).

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { form } from '../../forms.js';
import { page, loading, empty, errorBox, table, pager, timeEl } from '../../ui.js';

export function auditPage(_params, q) {
  const body = page('Audit log', { subtitle: 'Who did what, when, to what.' });
  const filters = Object.fromEntries(q.entries());
  const list = h('div');
  let pageNo = Number(filters.page || 1);
  delete filters.page;

  const f = form({
    id: 'audit-filters',
    fields: [
      { name: 'actor', label: 'Actor', optional: true, placeholder: 'username' },
      { name: 'action', label: 'Action', optional: true, placeholder: 'deployment.create' },
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
      history.replaceState(null, '', '/admin/audit' + api.query(filters));
      await reload();
    },
  });
  f.el.classList.add('filters');
  body.append(f.el, list);

  // datetime-local values are local time; the API wants RFC 3339.
  const toRFC = (v) => (v ? new Date(v).toISOString() : undefined);

  async function reload() {
    clear(list, loading());
    try {
      const data = await api.get('/audit' + api.query({ ...filters, since: toRFC(filters.since), until: toRFC(filters.until), page: pageNo, per_page: 50 }));
      const rows = api.items(data);
      const filtered = Object.values(filters).some(Boolean);
      clear(list, rows.length === 0 ? empty(filtered ? 'No audit entries match these filters.' : 'No audit entries yet.') : [
        table([
          { label: 'When', render: (r) => timeEl(r.created_at) },
          { label: 'Actor', render: (r) => r.actor || r.actor_name || (r.actor_id ? `user ${r.actor_id}` : 'system') },
          { label: 'Action', render: (r) => h('code', null, r.action) },
          { label: 'Target', render: (r) => [r.target_type, r.target_id ? ` #${r.target_id}` : ''].join('') },
          { label: 'From', render: (r) => r.client_addr || '' },
          { label: 'Detail', render: (r) => (r.detail && Object.keys(r.detail).length ? h('code', { class: 'small' }, JSON.stringify(r.detail)) : '') },
        ], rows, { caption: 'Audit entries' }),
        pager(data, (p) => { pageNo = p; reload(); }),
      ]);
    } catch (err) {
      clear(list, errorBox(err));
    }
  }
  reload();
}
