// Admin: secrets. Values are write-only: the API never returns them, so the
// form only ever sets a new value.

import { h } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage } from '../../crud.js';
import { timeEl } from '../../ui.js';

export function secretsPage() {
  return crudPage({
    title: 'Secrets',
    singular: 'secret',
    path: '/secrets',
    intro: 'Referenced in pipelines as ${secrets.NAME}. Values are encrypted and can be replaced but never read back.',
    context: async () => ({ projects: await api.listAll('/projects') }),
    columns: [
      { label: 'Name', render: (s) => h('code', null, s.name) },
      { label: 'Scope', render: (s) => s.project_id ? (s.project || `project ${s.project_id}`) : 'global' },
      { label: 'Value', render: () => h('span', { class: 'muted', 'aria-label': 'hidden value' }, '••••••••') },
      { label: 'Updated', render: (s) => timeEl(s.updated_at) },
    ],
    fields: (item, ctx) => [
      { name: 'name', label: 'Name', required: true, readonly: Boolean(item), placeholder: 'db_password' },
      { name: 'project_id', label: 'Project', type: 'select', valueType: 'number', optional: true, readonly: Boolean(item),
        placeholderOption: 'Global (every project)', options: ctx.projects.map((p) => ({ value: p.id, label: p.name })) },
      { name: 'value', label: item ? 'New value' : 'Value', type: 'password', required: true, help: 'Write-only: it is never displayed again.' },
    ],
    // On edit only the value changes.
    toBody: (v, item) => (item ? { value: v.value } : v),
  });
}
