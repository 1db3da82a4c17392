// Admin: the pipeline of a project in the visual editor. Validate runs the
// server's dry-run and pins each problem to its node; Save stores a new
// immutable version; older versions open read-only.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { page, loading, errorBox, announce, formatTime, confirmDialog } from '../../ui.js';
import { guardLeave } from '../../router.js';
import { createEditor } from '../../editor/editor.js';

export async function pipelinePage({ id }, q) {
  const versionSel = h('select', { id: 'version-select', 'aria-label': 'Pipeline version' });
  const validateBtn = h('button', { type: 'button', id: 'validate' }, 'Validate');
  const saveBtn = h('button', { type: 'button', class: 'primary', id: 'save-pipeline' }, 'Save new version');
  const body = page('Pipeline', { actions: [versionSel, validateBtn, saveBtn] });
  const status = h('div', { class: 'editor-status', role: 'status', 'aria-live': 'polite' });
  const host = h('div');
  body.append(status, host);
  clear(host, loading());
  let dirty = false;
  let shownVersion = '';
  // Unsaved work is only lost when the user says so (set before the first
  // await, while this page is the one on screen).
  const mayDiscard = () => !dirty || confirmDialog('The pipeline has changes that are not saved. Leave and lose them?',
    { title: 'Unsaved changes', confirmLabel: 'Discard changes', danger: true });
  guardLeave(mayDiscard);

  let project; let latest = null; let versions = []; let catalog;
  try {
    [project, latest, versions, catalog] = await Promise.all([
      api.get(`/projects/${id}`),
      api.get(`/projects/${id}/pipeline`).catch((err) => { if (err.status === 404) return null; throw err; }),
      api.get(`/projects/${id}/pipeline/versions` + api.query({ per_page: 100 })).then(api.items).catch((err) => { if (err.status === 404) return []; throw err; }),
      Promise.all([api.listAll('/services'), api.listAll('/plugins'), api.listAll(`/projects/${id}/secrets`).catch(() => [])])
        .then(([services, plugins, secrets]) => ({ services, plugins, secrets })),
    ]);
  } catch (err) {
    clear(host, errorBox(err));
    return undefined;
  }
  document.getElementById('page-title').textContent = `Pipeline of ${project.name}`;

  const requested = q.get('version');
  let editor = null;

  function fillVersions(current) {
    clear(versionSel,
      latest ? null : h('option', { value: '' }, 'No saved version yet'),
      versions.map((v) => h('option', { value: v.version, selected: String(v.version) === String(current) },
        `Version ${v.version}${latest && v.version === latest.version ? ' (latest)' : ''} · ${formatTime(v.created_at)}${v.created_by ? ' · ' + v.created_by : ''}`)));
    versionSel.disabled = versions.length === 0;
  }

  // open shows a version: the latest is editable, older ones read-only.
  async function open(version) {
    let graph = { nodes: [], edges: [] };
    let readOnly = false;
    if (version && latest && String(version) !== String(latest.version)) {
      const v = await api.get(`/projects/${id}/pipeline/versions/${version}`);
      graph = v.graph || v;
      readOnly = true;
    } else if (latest) {
      graph = latest.graph || { nodes: [], edges: [] };
      version = latest.version;
    }
    fillVersions(version);
    shownVersion = versionSel.value;
    editor = createEditor({ graph, catalog, readOnly, onChange: () => { dirty = true; setStatus(''); } });
    dirty = false;
    validateBtn.hidden = readOnly;
    saveBtn.hidden = readOnly;
    const banner = readOnly
      ? h('div', { class: 'notice' }, `You are viewing version ${version}, read-only. `,
        h('button', { type: 'button', class: 'small', id: 'edit-copy', onclick: () => {
          // Load the old graph into the editable editor; saving makes it the
          // newest version.
          editor = createEditor({ graph, catalog, onChange: () => { dirty = true; } });
          dirty = true;
          validateBtn.hidden = false; saveBtn.hidden = false;
          clear(host, h('div', { class: 'notice' }, `Editing a copy of version ${version}. Save to make it the latest version.`), editor.el);
        } }, 'Edit a copy'),
        ' ', h('a', { href: `/admin/projects/${id}/pipeline` }, 'Back to the latest'))
      : null;
    clear(host, banner, editor.el);
  }

  function setStatus(text, kind = '') {
    clear(status, text ? h('p', { class: kind }, text) : null);
  }

  // pinErrors spreads the server's problems over the nodes they name.
  // Keys look like "nodes.mkdb.params.host", "nodes[2].id" or "edges[0]";
  // a missing required parameter ("nodes.mkdb.params": "missing property
  // 'host'") is shown next to that parameter's field too.
  function pinErrors(problems, message) {
    const graph = editor.getGraph();
    const ids = graph.nodes.map((n) => n.id);
    const out = { byNode: {}, params: {}, general: [] };
    const pin = (nodeId, msg, rest) => {
      (out.byNode[nodeId] = out.byNode[nodeId] || []).push(rest ? `${rest}: ${msg}` : msg);
      const params = (out.params[nodeId] = out.params[nodeId] || {});
      const pm = /^params\.([^.[]+)/.exec(rest || '');
      if (pm) params[pm[1]] = msg;
      if (rest === 'params') {
        const missing = /missing propert(?:y|ies) (.*)/.exec(msg);
        if (missing) for (const q of missing[1].matchAll(/'([^']+)'/g)) params[q[1]] = 'required';
      }
    };
    for (const [key, msg] of Object.entries(problems || {})) {
      let m = /^(?:graph\.)?nodes\[(\d+)\]\.?(.*)$/.exec(key);
      if (m && graph.nodes[Number(m[1])]) { pin(graph.nodes[Number(m[1])].id, msg, m[2]); continue; }
      m = /^(?:graph\.)?nodes\.([^.]+)\.?(.*)$/.exec(key);
      if (m && ids.includes(m[1])) { pin(m[1], msg, m[2]); continue; }
      const named = ids.find((nid) => msg.includes(`"${nid}"`) || key === nid);
      if (named) { pin(named, msg, key === named ? '' : key); continue; }
      out.general.push(`${key}: ${msg}`);
    }
    if (!Object.keys(problems || {}).length && message) out.general.push(message);
    editor.setErrors(out);
    return out;
  }

  async function validate() {
    setStatus('Validating…');
    try {
      // The body is the graph itself; the answer is {valid, order, problems}.
      const res = await api.post(`/projects/${id}/pipeline/dry-run`, editor.getGraph());
      if (res.valid) {
        editor.setErrors({});
        setStatus(`The pipeline is valid. Execution order: ${(res.order || []).join(' → ')}`, 'ok');
        return true;
      }
      const n = Object.keys(res.problems || {}).length;
      pinErrors(res.problems);
      setStatus(`The pipeline has ${n} problem${n === 1 ? '' : 's'}; they are marked on the nodes.`, 'field-error');
      return false;
    } catch (err) {
      if (err.details && Object.keys(err.details).length) pinErrors(err.details, err.message);
      setStatus(err.message, 'field-error');
      return false;
    }
  }

  validateBtn.addEventListener('click', validate);
  saveBtn.addEventListener('click', async () => {
    saveBtn.disabled = true;
    setStatus('Saving…');
    try {
      const saved = await api.put(`/projects/${id}/pipeline`, editor.getGraph());
      latest = saved;
      versions = api.items(await api.get(`/projects/${id}/pipeline/versions` + api.query({ per_page: 100 })));
      editor.setErrors({});
      fillVersions(saved.version);
      shownVersion = versionSel.value;
      dirty = false;
      history.replaceState(null, '', `/admin/projects/${id}/pipeline`);
      setStatus(`Saved as version ${saved.version}.`, 'ok');
      announce(`Pipeline saved as version ${saved.version}.`);
    } catch (err) {
      if (err.details && Object.keys(err.details).length) pinErrors(err.details, err.message);
      setStatus(err.message, 'field-error');
    } finally {
      saveBtn.disabled = false;
    }
  });
  versionSel.addEventListener('change', async () => {
    const v = versionSel.value;
    if (!(await mayDiscard())) { versionSel.value = shownVersion; return; }
    const isLatest = latest && String(v) === String(latest.version);
    history.replaceState(null, '', `/admin/projects/${id}/pipeline${isLatest ? '' : '?version=' + v}`);
    open(isLatest ? null : v).catch((err) => clear(host, errorBox(err)));
  });

  // Warn before leaving with unsaved changes (reload or close).
  const beforeUnload = (ev) => { if (dirty) { ev.preventDefault(); ev.returnValue = ''; } };
  window.addEventListener('beforeunload', beforeUnload);

  await open(requested).catch((err) => clear(host, errorBox(err)));
  return () => window.removeEventListener('beforeunload', beforeUnload);
}
