// The signed-in user's account: who they are and their API tokens for the
// CLI and CI (the token itself is shown once).

import { h, clear } from '../dom.js';
import * as api from '../api.js';
import * as session from '../session.js';
import { form } from '../forms.js';
import { actionButton } from '../crud.js';
import { page, loading, empty, errorBox, table, timeEl, modal, announce, confirmDialog } from '../ui.js';

export function accountPage() {
  const user = session.current();
  const body = page('Account', { subtitle: `${user.display_name || user.username} · ${user.role}` });
  const list = h('div');
  const f = form({
    id: 'token-form',
    fields: [
      { name: 'name', label: 'Token name', required: true, placeholder: 'ci' },
      { name: 'expires_at', label: 'Expires (optional)', type: 'datetime-local', optional: true },
    ],
    submitLabel: 'Create token',
    onSubmit: async (v) => {
      if (v.expires_at) v.expires_at = new Date(v.expires_at).toISOString();
      const res = await api.post('/tokens', v);
      f.el.reset();
      // The token is shown once: closing (Escape, ×, Done) asks first.
      const askCopied = () => confirmDialog('The token cannot be shown again. Did you copy it?', { confirmLabel: 'Yes, close' });
      const m = modal('New API token', h('div', { class: 'token-box' },
        h('p', null, 'Copy the token now; it is shown only once. Use it as Authorization: Bearer <token>.'),
        h('label', { for: 'new-token' }, 'Token'),
        h('div', { class: 'inline' }, h('input', { id: 'new-token', class: 'mono', readonly: true, value: res.token || '' }),
          h('button', { type: 'button', onclick: () => navigator.clipboard.writeText(res.token || '').then(() => announce('Copied.'), () => announce('Copy failed; select the text instead.', 'error')) }, 'Copy')),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: async () => { if (await askCopied()) m.close(); } }, 'Done'))),
      { beforeClose: askCopied });
      reload();
    },
  });
  f.el.classList.add('inline-form');
  body.append(h('section', { class: 'card', 'aria-labelledby': 'tokens-h' },
    h('h2', { id: 'tokens-h' }, 'API tokens'),
    h('p', { class: 'muted' }, 'Tokens act with your permissions from the command line and CI.'),
    list, f.el));

  const pw = form({
    id: 'password-form',
    fields: [
      { name: 'current_password', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password' },
      { name: 'new_password', label: 'New password', type: 'password', required: true, help: 'At least 12 characters, not only spaces, not a common password.' },
      { name: 'revoke_tokens', label: 'Also revoke all my API tokens', type: 'checkbox', help: 'Changing your password keeps your API tokens unless this is ticked; tick it if the password may have leaked.' },
    ],
    submitLabel: 'Change password',
    onSubmit: async (v) => {
      await api.put('/me/password', v);
      pw.el.reset();
      announce(v.revoke_tokens ? 'Password changed. Your other sessions were signed out and your API tokens revoked.' : 'Password changed. Your other sessions were signed out; your API tokens still work.');
      if (v.revoke_tokens) reload();
    },
  });
  body.append(h('section', { class: 'card', 'aria-labelledby': 'pw-h' }, h('h2', { id: 'pw-h' }, 'Password'), pw.el));

  async function reload() {
    clear(list, loading());
    try {
      const rows = api.items(await api.get('/tokens'));
      clear(list, rows.length === 0 ? empty('No API tokens.') : table([
        { label: 'Name', render: (t) => t.name },
        { label: 'Prefix', render: (t) => h('code', null, t.prefix || '') },
        { label: 'Created', render: (t) => timeEl(t.created_at) },
        { label: 'Last used', render: (t) => timeEl(t.last_used_at) },
        { label: 'Expires', render: (t) => (t.expires_at ? timeEl(t.expires_at) : 'never') },
        { label: 'Actions', class: 'row-actions', render: (t) => (t.revoked_at ? h('span', { class: 'muted' }, 'revoked') : actionButton('Revoke', async () => {
          await api.del(`/tokens/${t.id}`);
          announce('Token revoked.');
          reload();
        }, { danger: true, confirm: `Revoke token "${t.name}"? Anything using it stops working.`, aria: `Revoke token ${t.name}` })) },
      ], rows, { caption: 'API tokens' }));
    } catch (err) {
      clear(list, errorBox(err));
    }
  }
  reload();
}
