// Create a deployment (or clone one with ?clone=ID): project, environment,
// name, and one tag dropdown per selectable service filled from the
// registry and filtered by the service's pattern; pinned services are shown
// locked.

import { h, clear, uid } from '../dom.js';
import * as api from '../api.js';
import { navigate } from '../router.js';
import { form, setOptions } from '../forms.js';
import { page, loading, errorBox, announce } from '../ui.js';

export async function newDeploymentPage(_params, q) {
  const cloneId = q.get('clone');
  // ?again=1: create a deleted deployment again, under its own name.
  const again = Boolean(cloneId && q.get('again'));
  const body = page(again ? 'Create deployment again' : cloneId ? 'Clone deployment' : 'New deployment');
  const host = h('div');
  body.append(host);
  clear(host, loading());

  let projects; let envs; let source = null;
  try {
    [projects, envs, source] = await Promise.all([
      api.listAll('/projects'),
      api.listAll('/environments'),
      cloneId ? api.get(`/deployments/${cloneId}`) : null,
    ]);
  } catch (err) {
    clear(host, errorBox(err));
    return;
  }
  if (!cloneId && projects.length === 0) {
    clear(host, h('p', { class: 'empty' }, 'You have no project to deploy. Ask an admin to give your team access to one.'));
    return;
  }

  // The tag pickers depend on the chosen project; they are one custom field
  // whose value is the service name -> tag map the API expects.
  let tagState = { get: () => ({}), box: null };
  const tagsField = {
    name: 'tags', label: 'Service versions', type: 'custom',
    render: (_v, { id }) => {
      const box = h('div', { class: 'tag-pickers', id, tabindex: '-1', role: 'group', 'aria-labelledby': id + '-label' });
      tagState.box = box;
      return { el: box, get: () => tagState.get(), focus: () => { const first = box.querySelector('select'); (first || box).focus(); } };
    },
  };

  const f = form({
    id: 'deployment-form',
    fields: [
      { name: 'project_id', label: 'Project', type: 'select', valueType: 'number', required: true, readonly: Boolean(source),
        placeholderOption: 'Choose a project', options: projects.map((p) => ({ value: p.id, label: p.name })) },
      { name: 'environment_id', label: 'Environment', type: 'select', valueType: 'number', required: true, readonly: Boolean(source),
        placeholderOption: 'Choose an environment', options: envs.map((e) => ({ value: e.id, label: `${e.name} (${e.base_domain})` })) },
      { name: 'name', label: 'Name', required: true, placeholder: 'pr-42',
        help: 'Lowercase letters, digits and dashes; part of every service URL.' },
      tagsField,
    ],
    values: source ? { project_id: source.project_id, environment_id: source.environment_id, name: again ? source.name : suggestName(source.name) } : {
      project_id: projects.length === 1 ? projects[0].id : '', environment_id: envs.length === 1 ? envs[0].id : '',
    },
    submitLabel: again ? 'Create again' : source ? 'Clone' : 'Deploy',
    onCancel: () => history.back(),
    onSubmit: async (v) => {
      let created;
      if (source) created = await api.post(`/deployments/${source.id}/clone`, { name: v.name, tags: v.tags });
      else created = await api.post('/deployments', v);
      announce(`Deployment ${created.name} is being created.`);
      navigate(`/deployments/${created.id}`);
    },
  });
  clear(host, source ? h('p', { class: 'muted' }, again
    ? `${source.name} again, with the versions it had, on the latest pipeline version. Change versions below.`
    : `Copy of ${source.name}; it uses the latest pipeline version and gets its own URLs. Change versions below.`) : null, f.el);

  const projectSel = f.control('project_id').input;
  const loadTags = async () => {
    const pid = projectSel.value;
    tagState = { ...tagState, get: () => ({}) };
    if (!pid) { clear(tagState.box, h('p', { class: 'muted' }, 'Choose a project to pick service versions.')); return; }
    clear(tagState.box, loading('Loading services and tags…'));
    try {
      const pickers = await servicePickers(pid, source ? source.tags || {} : {});
      if (projectSel.value !== pid) return;
      tagState.get = () => Object.fromEntries(pickers.filter((p) => p.selectable).map((p) => [p.service, p.value()]).filter(([, t]) => t));
      clear(tagState.box, pickers.length ? pickers.map((p) => p.el) : h('p', { class: 'muted' }, 'This project has no services.'));
    } catch (err) {
      clear(tagState.box, errorBox(err));
    }
  };
  // Before submitting, say whether a node has room: the placement dry run
  // (same checks and placement code as a create, nothing reserved) runs
  // whenever project, environment or versions change.
  const envSel = f.control('environment_id').input;
  const fit = h('div', { id: 'placement-check', class: 'placement-check', role: 'status', 'aria-live': 'polite', hidden: true });
  f.el.insertBefore(fit, f.el.querySelector('.actions'));
  let checkSeq = 0; let checkTimer = null;
  const checkPlacement = () => { clearTimeout(checkTimer); checkTimer = setTimeout(runPlacementCheck, 200); };
  const showFit = (state, text) => {
    fit.hidden = false;
    fit.dataset.fits = state;
    fit.className = 'placement-check ' + state;
    fit.textContent = text;
  };
  async function runPlacementCheck() {
    const seq = ++checkSeq;
    const req = { project_id: Number(projectSel.value), environment_id: Number(envSel.value), tags: tagState.get() };
    if (!req.project_id || !req.environment_id) { fit.hidden = true; delete fit.dataset.fits; return; }
    showFit('checking', 'Checking whether a node has room…');
    try {
      const r = await api.post('/placement/dry-run', req);
      if (seq !== checkSeq) return;
      const need = `${r.cpu} CPU and ${r.memory_mb} MB of memory`;
      if (r.fits) showFit('fits', `A node has room for this deployment (${need}).`);
      else showFit('no-fit', `No node has room for this deployment right now: ${r.reason}. Deploying now would fail; wait for other deployments to end, or ask an admin.`);
    } catch (err) {
      if (seq !== checkSeq) return;
      showFit('unknown', `Cannot tell whether a node has room: ${err.message}`);
    }
  }
  const loadTagsAndCheck = async () => { await loadTags(); checkPlacement(); };
  projectSel.addEventListener('change', loadTagsAndCheck);
  envSel.addEventListener('change', checkPlacement);
  tagState.box.addEventListener('change', checkPlacement);
  loadTagsAndCheck();
  f.control(source ? 'name' : (projects.length === 1 ? 'name' : 'project_id')).focus();
}

function suggestName(name) {
  const m = /^(.*?)-(\d+)$/.exec(name);
  return m ? `${m[1]}-${Number(m[2]) + 1}` : `${name}-2`;
}

// servicePickers lists the services of the project's latest pipeline with a
// dropdown (selectable) or a locked tag (pinned) each.
async function servicePickers(projectId, chosen) {
  const services = await projectServices(projectId);
  return Promise.all(services.map(async (svc) => {
    const id = uid('tag');
    if (svc.tag_mode === 'pinned') {
      return {
        service: svc.name, selectable: false, value: () => svc.tag,
        el: h('div', { class: 'field tag-picker', 'data-service': svc.name },
          h('label', { for: id }, svc.name),
          h('div', { class: 'inline' }, h('input', { id, class: 'mono', value: `${svc.image}:${svc.tag}`, readonly: true, disabled: true, 'aria-describedby': id + '-help' }),
            h('span', { class: 'lock', 'aria-hidden': 'true', title: 'Pinned' }, '🔒')),
          h('p', { class: 'help', id: id + '-help' }, 'Pinned by the admins; cannot be changed.')),
      };
    }
    const sel = h('select', { id, name: 'tag-' + svc.name, 'data-service': svc.name, required: true, 'aria-describedby': id + '-help' });
    const help = h('p', { class: 'help', id: id + '-help' }, `Tags of ${svc.image} matching ${svc.tag_pattern || '*'}.`);
    let tags = [];
    try {
      tags = await serviceTags(svc);
      setOptions(sel, tags, chosen[svc.name] || tags[0], tags.length ? {} : { placeholderOption: 'No tag matches the pattern' });
    } catch (err) {
      setOptions(sel, [], '', { placeholderOption: 'Tags unavailable' });
      help.textContent = `Cannot list tags: ${err.message}`;
      help.classList.add('field-error');
    }
    return {
      service: svc.name, selectable: true, value: () => sel.value,
      el: h('div', { class: 'field tag-picker', 'data-service': svc.name }, h('label', { for: id }, svc.name), sel, help),
    };
  }));
}

// projectServices returns the catalog entries of the service nodes of the
// project's latest pipeline, deduplicated by name.
async function projectServices(projectId) {
  const pipeline = await api.get(`/projects/${projectId}/pipeline`).catch((err) => {
    if (err.status === 404) return null;
    throw err;
  });
  if (!pipeline) return [];
  const graph = pipeline.graph || pipeline;
  const names = [...new Set((graph.nodes || []).filter((n) => n.kind === 'service').map((n) => n.service))];
  const catalog = await api.listAll('/services');
  return names.map((n) => catalog.find((svc) => svc.name === n) || { name: n, tag_mode: 'pinned', image: n, tag: '?' });
}

async function serviceTags(svc) {
  // Every user may list a service's tags (already filtered by its pattern).
  const data = await api.get(`/services/${svc.id}/tags`);
  const tags = Array.isArray(data) ? data : (data.tags || api.items(data));
  return tags.map((t) => (typeof t === 'string' ? t : t.name));
}
