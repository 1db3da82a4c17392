// Admin: container registries (credentials are write-only) with a
// test-connection action.

import { h } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage, actionButton } from '../../crud.js';
import { announce } from '../../ui.js';

export function registriesPage() {
  return crudPage({
    title: 'Registries',
    singular: 'registry',
    path: '/registries',
    intro: 'Container registries services and plugins pull from. Passwords are stored encrypted and never shown again.',
    columns: [
      { label: 'Name', render: (r) => h('strong', null, r.name) },
      { label: 'URL', render: (r) => h('code', null, r.url) },
      { label: 'Username', render: (r) => r.username || h('span', { class: 'muted' }, 'anonymous') },
      { label: 'Flags', render: (r) => [r.is_default ? h('span', { class: 'tag' }, 'default') : null, r.insecure ? h('span', { class: 'tag warn' }, 'plain HTTP') : null] },
    ],
    deleteBlocked: (r) => (r.is_default ? 'The default registry cannot be deleted: images without a registry name are pulled from it.' : ''),
    fields: (item) => [
      { name: 'name', label: 'Name', required: true },
      { name: 'url', label: 'URL', required: true, placeholder: 'https://registry.example.com or 127.0.0.1:5000' },
      { name: 'username', label: 'Username', optional: false },
      { name: 'password', label: 'Password', type: 'password', optional: true,
        help: item && item.has_password ? 'Leave empty to keep the stored password.' : 'Stored encrypted; never displayed again.' },
      { name: 'insecure', label: 'Plain HTTP (insecure, for loopback registries)', type: 'checkbox' },
    ],
    extraActions: (r) => [actionButton('Test connection', async () => {
      const res = await api.post(`/registries/${r.id}/test`, {});
      const msg = (res && (res.message || (res.ok === false ? res.error : null))) || 'Connection works.';
      announce(`${r.name}: ${msg}`, res && res.ok === false ? 'error' : 'ok');
    }, { aria: `Test connection to ${r.name}` })],
  });
}
