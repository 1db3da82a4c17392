// Admin: the nodes of an environment. Adding a node (or rotating its
// token) shows the agent token once, with the docker run (or
// docker-compose) command that starts the agent. Status, thumbprints and
// reserved vs capacity vs used bars refresh every few seconds while the page
// is open.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { form } from '../../forms.js';
import { actionButton } from '../../crud.js';
import { loading, empty, errorBox, table, badge, modal, announce, timeEl, confirmDialog } from '../../ui.js';
import { nodeBars } from './node-bars.js';

export function nodesSection(envId) {
  const addBtn = h('button', { type: 'button', class: 'primary', id: 'new-node' }, 'Add node');
  const list = h('div');
  const el = h('section', { class: 'card', 'aria-labelledby': 'nodes-h' },
    h('div', { class: 'section-head' }, h('h2', { id: 'nodes-h' }, 'Nodes'), addBtn), list);
  let timer = null;
  let first = true;

  // reload redraws the list; the periodic refresh (force false) leaves it
  // alone while a row button has keyboard focus.
  async function reload(force = false) {
    if (first) clear(list, loading());
    first = false;
    try {
      const nodes = api.items(await api.get(`/environments/${envId}/nodes` + api.query({ per_page: 100 })));
      if (nodes.length === 0) {
        clear(list, empty('No nodes yet. Add one, then start the agent on that machine with the command shown.'));
        return;
      }
      // Do not redraw under the user's keyboard focus inside the table.
      if (force !== true && list.contains(document.activeElement) && document.activeElement.tagName === 'BUTTON') return;
      clear(list, table([
        { label: 'Node', render: (n) => [h('strong', null, n.name), h('div', { class: 'muted small' }, `${n.host}:${n.port}`)] },
        { label: 'Labels', render: labelList },
        { label: 'Status', render: (n) => [badge(n.status), n.enabled === false && n.status !== 'revoked' ? [' ', badge('draining')] : null,
          n.status_reason ? h('div', { class: 'muted small' }, n.status_reason) : null,
          n.unreachable_since && n.status !== 'online' ? h('div', { class: 'muted small' }, 'unreachable since ', timeEl(n.unreachable_since)) : null,
          n.token_rotation_pending ? h('div', { class: 'small', 'data-token-pending': 'rotation' }, badge('token rotation pending'),
            ' The agent still accepts only the previous token; the rotation completes when it next connects.') : null,
          n.token_revoke_pending ? h('div', { class: 'small', 'data-token-pending': 'revocation' }, badge('revocation pending'),
            ' The agent is told when it next connects; until then it still accepts the revoked token.') : null] },
        { label: 'Thumbprint', render: thumbprint },
        { label: 'Reserved / capacity / used', render: capacity },
        { label: 'Agent', render: (n) => [n.agent_version || '—', n.last_seen_at ? h('div', { class: 'muted small' }, 'seen ', timeEl(n.last_seen_at)) : null] },
        { label: 'Actions', class: 'row-actions', render: (n) => actions(n) },
      ], nodes, { caption: 'Nodes', rowAttrs: (n) => ({ 'data-name': n.name }) }));
    } catch (err) {
      clear(list, errorBox(err));
    }
  }

  function actions(n) {
    const out = [h('button', { type: 'button', class: 'small', 'aria-label': `Edit ${n.name}`, 'data-node-edit': n.name, onclick: () => edit(n) }, 'Edit')];
    const changed = n.status === 'untrusted' || (n.seen_thumbprint && n.expected_thumbprint && n.seen_thumbprint !== n.expected_thumbprint);
    if (changed) {
      out.push(actionButton('Approve thumbprint', async () => {
        await api.post(`/nodes/${n.id}/approve-thumbprint`, { thumbprint: n.seen_thumbprint });
        announce(`New thumbprint of ${n.name} approved.`);
        reload(true);
      }, { confirm: `Trust node ${n.name} with the certificate ${n.seen_thumbprint}? Only approve it if you regenerated the agent's certificate yourself.`, aria: `Approve thumbprint of ${n.name}` }));
    }
    if (n.enabled === false) {
      out.push(actionButton('Enable', async () => { await api.post(`/nodes/${n.id}/enable`, {}); announce(`${n.name} enabled.`); reload(true); }, { aria: `Enable ${n.name}` }));
    } else {
      out.push(actionButton('Disable', async () => { await api.post(`/nodes/${n.id}/disable`, {}); announce(`${n.name} disabled: it drains (no new deployments; existing ones keep running and can be deleted).`); reload(true); }, { aria: `Disable ${n.name}` }));
    }
    out.push(actionButton('Rotate token', async () => {
      const res = await api.post(`/nodes/${n.id}/rotate-token`, {});
      const pending = res.node && res.node.token_rotation_pending;
      showToken(n, res, n.revoked || n.status === 'revoked'
        ? 'The agent refuses every token since the revocation. Restart it with this new one:'
        : pending
          ? 'A running agent is switched to the new token at once and refuses the old one; an offline agent when it next connects (the node shows "token rotation pending" until then). Use the new token when you next restart the agent:'
          : 'Restart the agent with the new token:');
      reload(true);
    }, { confirm: `Issue a new token for ${n.name}? The agent is handed the new token over its connection (now, or when it next connects) and refuses the old one from then on.`, aria: `Rotate token of ${n.name}` }));
    if (!n.revoked && n.status !== 'revoked') {
      out.push(actionButton('Revoke', async () => { await api.post(`/nodes/${n.id}/revoke`, {}); announce(`Token of ${n.name} revoked; the agent is disconnected and refuses every token until it is started with a new one.`); reload(true); },
        { danger: true, confirm: `Revoke the token of ${n.name}? The agent is disconnected immediately and refuses every token until it is restarted with a new one.`, aria: `Revoke token of ${n.name}` }));
    }
    out.push(h('button', { type: 'button', class: 'small', 'aria-label': `Channel events of ${n.name}`, 'data-node-events': n.name, onclick: () => channelEvents(n) }, 'Events'));
    out.push(actionButton('Delete', async () => { await api.del(`/nodes/${n.id}`); announce(`${n.name} deleted.`); reload(true); },
      { danger: true, confirm: `Delete node ${n.name}? It must not run deployments any more.`, aria: `Delete ${n.name}` }));
    return out;
  }

  // edit changes what PATCH /nodes/:id accepts; the agent is redialled
  // at the new address and checked against the new thumbprint.
  function edit(n) {
    let dlg;
    const f = form({
      id: 'node-edit-form',
      fields: nodeFields(true),
      values: n,
      onCancel: () => dlg.close(),
      onSubmit: async (v) => {
        await api.patch(`/nodes/${n.id}`, { ...v, expected_thumbprint: v.expected_thumbprint || '' });
        dlg.close();
        announce(`Node ${v.name} saved.`);
        reload(true);
      },
    });
    dlg = modal(`Edit node ${n.name}`, f.el).dialog;
    f.control('name').focus();
  }

  addBtn.addEventListener('click', () => {
    let dlg;
    const f = form({
      id: 'node-form',
      fields: nodeFields(false),
      submitLabel: 'Add node',
      onCancel: () => dlg.close(),
      onSubmit: async (v) => {
        const res = await api.post(`/environments/${envId}/nodes`, v);
        dlg.close();
        showToken(res.node || res || v, res, 'Start the agent on the node with this command. The token is shown only this once:');
        reload(true);
      },
    });
    dlg = modal('Add node', f.el).dialog;
    f.control('name').focus();
  });

  reload(true);
  timer = setInterval(() => reload(false), 5000);
  return { el, stop: () => clearInterval(timer) };
}

function nodeFields(editing) {
  return [
    { name: 'name', label: 'Name', required: true, placeholder: 'node-1' },
    { name: 'host', label: 'Host name or IP address', required: true, help: 'Where the control plane reaches the agent.' },
    { name: 'port', label: 'Agent port', type: 'number', required: true, min: 1, max: 65535, default: 5000 },
    { name: 'expected_thumbprint', label: 'Certificate thumbprint (optional)', optional: true,
      help: editing
        ? 'SHA-256 of the agent certificate. Empty: trust the next certificate the agent presents.'
        : 'SHA-256 of the agent certificate. Leave empty to trust the first certificate the agent presents.' },
    { name: 'labels', label: 'Labels', type: 'keyvalue', addLabel: '+ Add label', keyPlaceholder: 'tier', valuePlaceholder: 'qa', help: 'Matched by project node selectors.' },
  ];
}

function labelList(n) {
  const entries = Object.entries(n.labels || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'plain labels' }, entries.map(([k, v]) => h('li', null, h('code', { class: 'tag' }, `${k}=${v}`))));
}

function thumbprint(n) {
  const short = (t) => (t ? t.slice(0, 16) + '…' : '—');
  const out = [h('code', { title: n.expected_thumbprint || '' }, short(n.expected_thumbprint))];
  if (n.seen_thumbprint && n.seen_thumbprint !== n.expected_thumbprint) {
    out.push(h('div', { class: 'warn small' }, 'presented: ', h('code', { title: n.seen_thumbprint }, short(n.seen_thumbprint))));
  }
  return out;
}

// capacity: reserved vs capacity vs used bars, and the CPU other
// processes use (what placement counts besides reservations).
function capacity(n) {
  const u = n.usage || {};
  return [nodeBars(n),
    u.other_cpus ? h('div', { class: 'muted small', title: 'Placement counts CPU reservations, and the CPU other processes use (smoothed) only within the environment\'s CPU overcommit.' },
      `${Number(u.other_cpus).toFixed(2)} CPU used by other processes`) : null];
}

// channelEvents shows the node's channel history: connections the agent
// refused or replaced, this server's connections the agent refused, token
// rotations and revocations as they reached the agent.
async function channelEvents(n) {
  const body = h('div', { class: 'node-events' }, loading());
  modal(`Channel events of ${n.name}`, body);
  try {
    const items = api.items(await api.get(`/nodes/${n.id}/events` + api.query({ per_page: 100 })));
    if (items.length === 0) {
      clear(body, empty('No channel events: no connection was refused or replaced, no token was rotated or revoked.'));
      return;
    }
    clear(body, table([
      { label: 'When', render: (e) => timeEl(e.at) },
      { label: 'What', render: (e) => badge(e.kind.replaceAll('_', ' ')) },
      { label: 'Reported by', render: (e) => e.source },
      { label: 'Caller', render: (e) => e.remote ? h('span', { class: 'mono' }, e.remote) : '—' },
      { label: 'Details', render: (e) => e.message || '—' },
    ], items, { caption: `Channel events of ${n.name}`, rowAttrs: (e) => ({ 'data-kind': e.kind }) }));
  } catch (err) {
    clear(body, errorBox(err));
  }
}

// showToken displays the one-time agent token with the two ways to start
// the agent: docker run on the node, or — for the docker-compose.yml
// installation on one machine — the .env update and `docker-compose up`.
// The server supplies both commands; the fallbacks build the same ones.
function showToken(node, res, lead) {
  const token = res.token || res.agent_token || '';
  const cmd = res.docker_run || res.command || [
    'docker run -d --name nullops-agent --restart unless-stopped \\',
    `  -p ${node.port || 5000}:5000 \\`,
    `  -e AGENT_TOKEN=${token} \\`,
    '  -v /var/run/docker.sock:/var/run/docker.sock \\',
    '  -v /var/lib/nullops-agent:/data \\',
    '  nullops/agent:latest',
  ].join('\n');
  const compose = res.compose || `sed -i "s/^AGENT_TOKEN=.*/AGENT_TOKEN=${token}/" .env && docker-compose up -d agent`;
  const copy = (text) => () => navigator.clipboard.writeText(text).then(() => announce('Copied.'), () => announce('Copy failed; select the text instead.', 'error'));
  const content = h('div', { class: 'token-box' },
    h('p', null, lead),
    h('label', { for: 'agent-token' }, 'Agent token'),
    h('div', { class: 'inline' }, h('input', { id: 'agent-token', class: 'mono', readonly: true, value: token }), h('button', { type: 'button', onclick: copy(token) }, 'Copy')),
    h('label', { for: 'agent-command' }, 'Command (docker run on the node)'),
    h('pre', { id: 'agent-command', class: 'mono', tabindex: '0' }, cmd),
    h('label', { for: 'agent-compose-command' }, 'Or, for the docker-compose.yml installation (run next to docker-compose.yml)'),
    h('pre', { id: 'agent-compose-command', class: 'mono', tabindex: '0' }, compose),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: copy(cmd) }, 'Copy command'),
      h('button', { type: 'button', onclick: copy(compose) }, 'Copy compose command'),
      h('button', { type: 'button', class: 'primary', onclick: async () => {
        if (await askCopied()) m.close();
      } }, 'Done')));
  // Escape and × ask too: closing by accident loses the token for good.
  const askCopied = () => confirmDialog('The token cannot be shown again. Did you copy it?', { confirmLabel: 'Yes, close' });
  const m = modal(`Agent token for ${node.name || 'the node'}`, content, { beforeClose: askCopied });
}
