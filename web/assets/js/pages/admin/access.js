// Team grants on a project or an environment (full or read access). Shared
// by the project and environment pages.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { form } from '../../forms.js';
import { loading, empty, errorBox, table, announce } from '../../ui.js';
import { actionButton } from '../../crud.js';

// accessSection renders the grants of `path` ("/projects/3/access").
export function accessSection(path, what) {
  const box = h('section', { class: 'card', 'aria-labelledby': 'access-h' },
    h('h2', { id: 'access-h' }, 'Team access'),
    h('p', { class: 'muted' }, `Members of these teams can see (read) or also create and delete (full) deployments of this ${what}.`));
  const list = h('div');
  box.append(list);
  let teams = [];

  async function reload() {
    clear(list, loading());
    try {
      teams = await api.listAll('/teams');
      const grants = api.items(await api.get(path));
      const teamName = (g) => g.team || g.team_name || (teams.find((t) => t.id === g.team_id) || {}).name || `team ${g.team_id}`;
      const addForm = form({
        id: 'grant-form',
        fields: [
          { name: 'team_id', label: 'Team', type: 'select', valueType: 'number', required: true, placeholderOption: 'Choose a team',
            options: teams.map((t) => ({ value: t.id, label: t.name })) },
          { name: 'level', label: 'Access', type: 'select', options: [{ value: 'full', label: 'Full access' }, { value: 'read', label: 'Read-only' }], default: 'full' },
        ],
        submitLabel: 'Grant',
        onSubmit: async (v) => {
          await api.put(`${path}/${v.team_id}`, { level: v.level });
          announce('Access granted.');
          reload();
        },
      });
      addForm.el.classList.add('inline-form');
      clear(list,
        grants.length === 0 ? empty('No team has access yet; only admins can see it.')
          : table([
            { label: 'Team', render: (g) => teamName(g) },
            { label: 'Access', render: (g) => h('span', { class: 'tag' }, g.level === 'full' ? 'full access' : 'read-only') },
            { label: 'Actions', class: 'row-actions', render: (g) => actionButton('Remove', async () => {
              await api.del(`${path}/${g.team_id}`);
              announce('Access removed.');
              reload();
            }, { danger: true, aria: `Remove access of ${teamName(g)}` }) },
          ], grants, { caption: 'Team access' }),
        teams.length ? addForm.el : h('p', { class: 'muted' }, 'Create a team first to grant access.'));
    } catch (err) {
      clear(list, errorBox(err));
    }
  }
  reload();
  return box;
}
