// Login page.

import { h, clear } from '../dom.js';
import * as session from '../session.js';
import { form } from '../forms.js';

export function loginPage(_q, onDone) {
  document.title = 'Log in · NullOps';
  const main = document.getElementById('main');
  const f = form({
    id: 'login-form',
    fields: [
      { name: 'username', label: 'Username', required: true, autocomplete: 'username' },
      { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
    ],
    submitLabel: 'Log in',
    onSubmit: async ({ username, password }) => {
      await session.login(username, password);
      onDone();
    },
  });
  clear(main, h('section', { class: 'login card' },
    h('h1', { id: 'page-title', tabindex: '-1' }, 'Log in to Null', h('span', { class: 'accent' }, 'Ops')),
    h('p', { class: 'muted' }, 'On-demand QA environments.'),
    f.el));
  f.control('username').focus();
}
