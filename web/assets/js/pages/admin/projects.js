// Admin: projects (resource limits, TTL override, deploy timeout, node selector), with a
// page per project for its pipeline and team access.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage } from '../../crud.js';
import { form } from '../../forms.js';
import { page, loading, errorBox, formatDuration, modal, announce, timeEl } from '../../ui.js';
import { accessSection } from './access.js';
import { parseGoDuration } from '../../forms.js';
import { selectorField, describeSelector } from '../../selector.js';

function projectFields() {
  return [
    { name: 'name', label: 'Name', required: true },
    { name: 'description', label: 'Description', type: 'textarea', rows: 2 },
    { name: 'cpu', label: 'CPU per deployment (cores)', type: 'number', step: '0.25', min: 0, default: 1 },
    { name: 'memory_mb', label: 'Memory per deployment (MiB)', type: 'number', step: 1, min: 0, default: 512 },
    { name: 'ttl', label: 'Auto-cleanup after inactivity', type: 'duration', optional: true, emptyValue: '',
      help: 'Leave empty to use the environment default.' },
    { name: 'deploy_timeout', label: 'Deploy timeout', type: 'duration', optional: true, emptyValue: '',
      help: 'A deployment still deploying after this long is stopped, rolled back and failed (1m–24h; empty: 30m).' },
    selectorField(),
  ];
}

export function projectsPage() {
  return crudPage({
    title: 'Projects',
    singular: 'project',
    path: '/projects',
    intro: 'A project is a pipeline of services and components with resource limits; users deploy projects into environments.',
    columns: [
      { label: 'Name', render: (p) => h('a', { href: `/admin/projects/${p.id}` }, p.name) },
      { label: 'Limits', render: (p) => `${p.cpu} CPU · ${p.memory_mb} MiB` },
      { label: 'TTL', render: (p) => (p.ttl ? formatDuration(parseGoDuration(p.ttl)) : h('span', { class: 'muted' }, 'environment default')) },
    ],
    extraActions: (p) => [h('a', { class: 'button small', href: `/admin/projects/${p.id}/pipeline` }, 'Pipeline')],
    fields: projectFields,
  });
}

export function projectPage({ id }) {
  const editBtn = h('button', { type: 'button', id: 'edit-project' }, 'Edit settings');
  const body = page('Project', { actions: [h('a', { class: 'button primary', href: `/admin/projects/${id}/pipeline` }, 'Edit pipeline'), editBtn] });
  const info = h('div');
  body.append(info);
  let project = null;

  async function load() {
    clear(info, loading());
    try {
      project = await api.get(`/projects/${id}`);
      document.getElementById('page-title').textContent = `Project ${project.name}`;
      let pipeline = null;
      try { pipeline = await api.get(`/projects/${id}/pipeline`); } catch (err) { if (err.status !== 404) throw err; }
      const nodes = pipeline && pipeline.graph ? pipeline.graph.nodes || [] : [];
      clear(info, h('dl', { class: 'facts' },
        project.description ? [h('dt', null, 'Description'), h('dd', null, project.description)] : null,
        h('dt', null, 'Limits'), h('dd', null, `${project.cpu} CPU · ${project.memory_mb} MiB per deployment`),
        h('dt', null, 'Auto-cleanup'), h('dd', null, project.ttl ? formatDuration(parseGoDuration(project.ttl)) : 'environment default'),
        h('dt', null, 'Deploy timeout'), h('dd', { id: 'project-deploy-timeout' }, formatDuration(parseGoDuration(project.deploy_timeout || '30m'))),
        h('dt', null, 'Node selector'), h('dd', { id: 'project-selector' }, describeSelector(project.node_selector) ? h('code', null, describeSelector(project.node_selector)) : h('span', { class: 'muted' }, 'any node')),
        h('dt', null, 'Pipeline'), h('dd', null, pipeline
          ? [`version ${pipeline.version}: ${nodes.length} node${nodes.length === 1 ? '' : 's'}, saved `, timeEl(pipeline.created_at)]
          : 'none yet')));
    } catch (err) {
      clear(info, errorBox(err));
    }
  }

  editBtn.addEventListener('click', () => {
    if (!project) return;
    let dlg;
    const f = form({
      id: 'project-form', fields: projectFields(), values: project, onCancel: () => dlg.close(),
      onSubmit: async (v) => { await api.put(`/projects/${id}`, v); dlg.close(); announce('Project saved.'); load(); },
    });
    dlg = modal(`Edit project ${project.name}`, f.el).dialog;
  });

  load();
  body.append(accessSection(`/projects/${id}/access`, 'project'));
}
