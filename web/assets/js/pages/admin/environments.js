// Admin: environments (base domain, default TTL) and, on each environment's
// page, its nodes and team access.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage } from '../../crud.js';
import { form } from '../../forms.js';
import { page, loading, errorBox, formatDuration, modal, announce } from '../../ui.js';
import { parseGoDuration } from '../../forms.js';
import { nodesSection } from './nodes.js';
import { accessSection } from './access.js';

export function environmentFields() {
  return [
    { name: 'name', label: 'Name', required: true, placeholder: 'qa', help: 'Part of every service URL.' },
    { name: 'base_domain', label: 'Base domain', required: true, placeholder: 'example.com',
      help: 'Services are reached at <service>.<deployment>.<environment>.<base domain> unless the host name template says otherwise. On one machine use localhost (browsers resolve *.localhost to it, no DNS needed); on a team server, a domain with a wildcard DNS record pointing at the ingress.' },
    { name: 'host_template', label: 'Host name template', placeholder: '<service>.<deployment>.<environment>.<base-domain>',
      help: 'Leave empty for the default above. <service>--<deployment>.<environment>.<base-domain> keeps every host one level deep, so one wildcard certificate covers them.' },
    { name: 'default_ttl', label: 'Auto-cleanup after inactivity', type: 'duration', default: 604800 },
    { name: 'traffic_is_activity', label: 'Ingress traffic counts as activity', type: 'checkbox', default: true },
    { name: 'cpu_overcommit', label: 'CPU overcommit', type: 'number', min: 1, max: 10, step: '0.1', default: 1.5,
      help: 'Reservations count strictly against a node\'s CPUs; with the CPU other processes use (smoothed over a minute) they may reach this many times the node\'s CPUs (1 to 10; 1 counts other use in full). Memory is never overcommitted.' },
    { name: 'description', label: 'Description', type: 'textarea', rows: 2 },
  ];
}

export function environmentsPage() {
  return crudPage({
    title: 'Environments',
    singular: 'environment',
    path: '/environments',
    intro: 'Groups of Docker nodes deployments are placed on, each with its own ingress domain.',
    columns: [
      { label: 'Name', render: (e) => h('a', { href: `/admin/environments/${e.id}` }, e.name) },
      { label: 'Service URLs', render: (e) => h('code', null, e.url_pattern || e.base_domain) },
      { label: 'Default TTL', render: (e) => formatDuration(parseGoDuration(e.default_ttl) || 0) },
    ],
    fields: environmentFields,
  });
}

export function environmentPage({ id }) {
  const editBtn = h('button', { type: 'button', id: 'edit-environment' }, 'Edit settings');
  const body = page('Environment', { actions: [editBtn] });
  const info = h('div');
  body.append(info);
  let env = null;

  async function load() {
    clear(info, loading());
    try {
      env = await api.get(`/environments/${id}`);
      document.getElementById('page-title').textContent = `Environment ${env.name}`;
      clear(info, h('dl', { class: 'facts' },
        h('dt', null, 'Base domain'), h('dd', null, h('code', null, env.base_domain)),
        h('dt', null, 'Service URLs'), h('dd', null, h('code', { id: 'env-url-pattern' }, env.url_pattern)),
        h('dt', null, 'Ingress traffic'), h('dd', null, env.traffic_is_activity ? 'counts as activity (postpones auto-cleanup)' : 'does not postpone auto-cleanup'),
        h('dt', null, 'Default TTL'), h('dd', null, formatDuration(parseGoDuration(env.default_ttl) || 0)),
        env.description ? [h('dt', null, 'Description'), h('dd', null, env.description)] : null));
    } catch (err) {
      clear(info, errorBox(err));
    }
  }

  editBtn.addEventListener('click', () => {
    if (!env) return;
    let dlg;
    const f = form({
      id: 'environment-form', fields: environmentFields(), values: env, onCancel: () => dlg.close(),
      onSubmit: async (v) => { await api.put(`/environments/${id}`, v); dlg.close(); announce('Environment saved.'); load(); },
    });
    dlg = modal(`Edit environment ${env.name}`, f.el).dialog;
  });

  load();
  const nodes = nodesSection(id);
  body.append(nodes.el, accessSection(`/environments/${id}/access`, 'environment'));
  return () => nodes.stop();
}
