// Helpers shared by the deployment pages: links, permissions, actions.

import { h } from '../dom.js';
import * as api from '../api.js';
import { confirmDialog, announce, copyButton, copyText } from '../ui.js';

// links returns [{service, url}] from a deployment's urls (service -> link,
// the same in list rows and the detail).
export function links(d) {
  return Object.entries(d.urls || {}).map(([service, url]) => ({ service, url }));
}

// A deployment that failed (rolled back), is being deleted or is deleted
// runs nothing: no live links, health, countdown or Extend.
const DEAD = new Set(['failed', 'deleting', 'deleted']);
export const isDead = (d) => DEAD.has(d.status);

// linkList shows the ingress links: live ones open the service; those of a
// dead deployment are plain text that says why nothing answers there.
export function linkList(d) {
  const ls = links(d);
  if (!ls.length) return h('span', { class: 'muted' }, '—');
  if (isDead(d)) {
    return h('ul', { class: 'plain links dead' }, ls.map((l) => h('li', { title: `Not reachable: the deployment is ${d.status}` },
      h('span', { class: 'dead-link', 'data-dead-link': l.service }, l.service), h('span', { class: 'sr-only' }, ` (not reachable: ${d.status})`))));
  }
  // Each link in full (QA pastes them into tickets), with a copy button.
  return h('ul', { class: 'plain links' }, ls.map((l) => h('li', { class: 'link-line', 'data-service': l.service },
    h('span', { class: 'link-service' }, l.service),
    h('a', { href: l.url, target: '_blank', rel: 'noopener', 'data-external': '', class: 'mono link-url' }, l.url, h('span', { class: 'sr-only' }, ' (opens in a new tab)'), ' ↗'),
    copyButton(l.url, { aria: `Copy the link of ${l.service}`, what: `Link of ${l.service} copied.` }))));
}

// copyAllLinks copies every live link of a deployment, one "service: URL"
// per line.
export function copyAllLinks(d) {
  const ls = links(d);
  if (!ls.length || isDead(d)) return null;
  const text = ls.map((l) => `${l.service}: ${l.url}`).join('\n');
  return h('button', { type: 'button', class: 'small', id: 'copy-all-links', onclick: () => copyText(text, `${ls.length} link${ls.length === 1 ? '' : 's'} copied.`) }, 'Copy all links');
}

// createAgain links to the form that creates a deleted deployment again,
// with its name, project, environment and versions.
export function createAgain(d, { compact = false } = {}) {
  if (d.status !== 'deleted' || !canManage(d)) return null;
  return h('a', { class: ['button', compact ? 'small' : 'primary'], href: `/deployments/new?clone=${d.id}&again=1`, 'data-action': 'create-again', 'aria-label': `Create ${d.name} again` }, 'Create again');
}

// canManage tells whether the signed-in user may change this deployment:
// the API states it on every deployment it returns (access "full" or
// "read", admins included); the page never works it out itself.
export function canManage(d) {
  return d.access === 'full';
}

const LIVE = new Set(['pending', 'deploying', 'running', 'failed', 'offline']);
export const isLive = (d) => LIVE.has(d.status);

// actionButtons returns the buttons fitting the deployment's state. after
// is called with the updated deployment (or null when deleted).
export function actionButtons(d, after, { compact = false } = {}) {
  if (d.status === 'deleted') return [createAgain(d, { compact })].filter(Boolean);
  if (!canManage(d) || d.status === 'deleting') return [];
  const cls = compact ? 'small' : '';
  const btn = (label, id, fn, extra = {}) => {
    const b = h('button', { type: 'button', class: [cls, extra.danger ? 'danger' : '', extra.primary ? 'primary' : ''], 'data-action': id, 'aria-label': `${label} ${d.name}` }, label);
    b.addEventListener('click', async () => {
      if (extra.confirm && !(await confirmDialog(extra.confirm, { confirmLabel: label, danger: extra.danger }))) return;
      b.disabled = true;
      try { await fn(); } catch (err) { announce(err.message, 'error'); } finally { b.disabled = false; }
    });
    return b;
  };
  const out = [];
  if (d.status === 'running' || d.status === 'offline' || d.status === 'deploying') {
    out.push(btn('Extend', 'extend', async () => {
      const res = await api.post(`/deployments/${d.id}/extend`, {});
      announce(`${d.name} extended.`);
      after(res && res.id ? res : { ...d, ...(res || {}) });
    }));
  }
  if (d.status === 'failed') {
    out.push(btn('Retry', 'retry', async () => {
      const res = await api.post(`/deployments/${d.id}/retry`, {});
      announce(`Retrying ${d.name}.`);
      after(res);
    }));
  }
  out.push(h('a', { class: ['button', cls], href: `/deployments/new?clone=${d.id}`, 'data-action': 'clone', 'aria-label': `Clone ${d.name}` }, 'Clone'));
  if (d.status === 'deploying' || d.status === 'pending') {
    out.push(btn('Cancel', 'cancel', async () => {
      await api.post(`/deployments/${d.id}/cancel`, {});
      announce(`${d.name} is being cancelled and rolled back.`);
      after({ ...d, status: 'deleting' });
    }, { danger: true, confirm: `Cancel ${d.name}? Everything it created so far is rolled back.` }));
  } else {
    out.push(btn('Delete', 'delete', async () => {
      await api.del(`/deployments/${d.id}`);
      announce(`${d.name} is being deleted.`);
      after({ ...d, status: 'deleting' });
    }, { danger: true, confirm: `Delete deployment ${d.name}? Its containers, networks and data are removed.` }));
  }
  return out;
}
