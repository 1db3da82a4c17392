// Admin: local user accounts.

import { h } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage } from '../../crud.js';
import { timeEl, badge } from '../../ui.js';

export function usersPage() {
  return crudPage({
    title: 'Users',
    singular: 'user',
    path: '/users',
    updateMethod: 'PATCH',
    // The server searches, sorts and pages users.
    serverList: true,
    searchPlaceholder: 'username or name',
    columns: [
      { label: 'Username', sort: 'username', render: (u) => h('strong', null, u.username) },
      { label: 'Name', sort: 'name', render: (u) => u.display_name || '' },
      { label: 'Role', sort: 'role', render: (u) => h('span', { class: 'tag' }, u.role) },
      { label: 'Status', sort: 'status', render: (u) => badge(u.active === false ? 'inactive' : 'active') },
      { label: 'Created', sort: 'created', render: (u) => timeEl(u.created_at) },
    ],
    fields: (item) => [
      { name: 'username', label: 'Username', required: true, readonly: Boolean(item), autocomplete: 'off' },
      { name: 'display_name', label: 'Display name' },
      { name: 'role', label: 'Role', type: 'select', options: [{ value: 'user', label: 'User (developer, QA)' }, { value: 'admin', label: 'Admin (DevOps)' }], default: 'user' },
      { name: 'password', label: item ? 'New password' : 'Password', type: 'password', required: !item, optional: Boolean(item),
        help: item ? 'Leave empty to keep the current password. A new one ends the user\'s sessions and revokes their API tokens.' : 'At least 12 characters, not only spaces, not a common password.' },
      ...(item ? [{ name: 'active', label: 'Active (can log in)', type: 'checkbox',
        help: 'Turning this off ends the user\'s sessions and revokes their API tokens for good.' }] : []),
    ],
    // PATCH changes profile, role and status; a new password goes through
    // its own endpoint (PUT /users/{id}/password).
    toBody: (v, item) => {
      if (!item) return v;
      const { username, password, ...rest } = v;
      return rest;
    },
    afterUpdate: async (v, item) => {
      if (v.password) await api.put(`/users/${item.id}/password`, { password: v.password });
    },
  });
}
