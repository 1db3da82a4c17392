// Admin: teams and their members.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage, actionButton } from '../../crud.js';
import { form } from '../../forms.js';
import { page, loading, empty, errorBox, table, announce } from '../../ui.js';

export function teamsPage() {
  return crudPage({
    title: 'Teams',
    singular: 'team',
    path: '/teams',
    updateMethod: 'PATCH',
    intro: 'Teams get full or read-only access to projects and environments.',
    columns: [
      { label: 'Name', render: (t) => h('a', { href: `/admin/teams/${t.id}` }, t.name) },
      { label: 'Description', render: (t) => t.description || '' },
      { label: 'Members', render: (t) => (t.members ?? '') },
    ],
    fields: () => [
      { name: 'name', label: 'Name', required: true },
      { name: 'description', label: 'Description', type: 'textarea', rows: 2 },
    ],
  });
}

export function teamPage({ id }) {
  const body = page('Team');
  const box = h('div');
  body.append(box);
  let alive = true;

  async function reload() {
    clear(box, loading());
    try {
      const [team, members, users] = await Promise.all([
        api.get(`/teams/${id}`),
        api.get(`/teams/${id}/members`).then(api.items),
        api.listAll('/users'),
      ]);
      if (!alive) return;
      document.getElementById('page-title').textContent = `Team ${team.name}`;
      const memberIds = new Set(members.map((m) => m.user_id ?? m.id));
      const candidates = users.filter((u) => !memberIds.has(u.id));
      const add = form({
        id: 'member-form',
        fields: [{ name: 'user_id', label: 'User', type: 'select', valueType: 'number', required: true, placeholderOption: 'Choose a user',
          options: candidates.map((u) => ({ value: u.id, label: u.display_name ? `${u.display_name} (${u.username})` : u.username })) }],
        submitLabel: 'Add member',
        onSubmit: async (v) => {
          await api.put(`/teams/${id}/members/${v.user_id}`, {});
          announce('Member added.');
          reload();
        },
      });
      add.el.classList.add('inline-form');
      clear(box,
        team.description ? h('p', null, team.description) : null,
        h('section', { class: 'card', 'aria-labelledby': 'members-h' },
          h('h2', { id: 'members-h' }, 'Members'),
          members.length === 0 ? empty('No members yet.') : table([
            { label: 'User', render: (m) => m.username || `user ${m.user_id}` },
            { label: 'Name', render: (m) => m.display_name || '' },
            { label: 'Actions', class: 'row-actions', render: (m) => actionButton('Remove', async () => {
              await api.del(`/teams/${id}/members/${m.user_id ?? m.id}`);
              announce('Member removed.');
              reload();
            }, { danger: true, aria: `Remove ${m.username}` }) },
          ], members, { caption: 'Members' }),
          candidates.length ? add.el : null));
    } catch (err) {
      clear(box, errorBox(err));
    }
  }
  reload();
  return () => { alive = false; };
}
