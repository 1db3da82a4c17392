// One deployment: live pipeline progress drawn as the graph (nodes light up
// as steps run, succeed or fail), the failure reason, services with health,
// state (restarting, exited, oom-killed; restarts, last exit, last log lines;
// the deployment shows "degraded" and why), CPU and memory, ingress links, the steps
// with their durations and (masked) outputs, live logs per service and per step
// (deployment-logs.js), and the history of actions. A failed or running step
// opens by itself: selected, with its details and its log.

import { h, s, clear } from '../dom.js';
import * as api from '../api.js';
import { subscribe } from '../stream.js';
import { page, loading, errorBox, badge, countdown, timeEl, table, formatBytes, empty } from '../ui.js';
import { renderStatic } from '../editor/graph-view.js';
import { actionButtons, linkList, links, isDead, copyAllLinks, canManage } from './deploy-common.js';
import { logPanel } from './deployment-logs.js';
import { stepsTable, stepDetails } from './deployment-steps.js';
import { usageSection } from '../usage.js';

export async function deploymentPage({ id }, q = new URLSearchParams()) {
  const actions = h('div', { class: 'actions' });
  const body = page('Deployment', { actions: [actions] });
  const host = h('div');
  body.append(host);
  clear(host, loading());

  let d;
  try {
    d = await api.get(`/deployments/${id}`); // carries the caller's access level
  } catch (err) {
    clear(host, errorBox(err));
    return undefined;
  }

  const stops = [];
  const steps = new Map((d.steps || []).map((st) => [st.id, st]));
  const services = new Map((d.services || []).map((sv) => [sv.id, sv]));
  let graph = d.graph || null;
  let selectedStep = null;
  let shownActions = '';
  let ending = null; // the history entry that deleted it: {action, actor, at}

  // ---- sections ---------------------------------------------------------------
  const head = h('div', { class: 'dep-head' });
  const reasonBox = h('div');
  const graphSvg = s('svg', { class: 'progress-graph', role: 'group', 'aria-label': 'Pipeline progress' });
  const stepInfo = h('div', { class: 'step-info', 'aria-live': 'polite' });
  const stepsBox = h('div', { class: 'steps-box' });
  const servicesBox = h('div');
  const logs = logPanel(id, () => (d.status === 'deleted' ? [] : [...services.values()]), () => [...steps.values()], () => d);
  const historyBox = h('div');
  const usage = usageSection(id, () => d);
  stops.push(logs.stop, usage.stop);

  clear(host,
    head, reasonBox,
    h('section', { class: 'card', 'aria-labelledby': 'progress-h' },
      h('h2', { id: 'progress-h' }, 'Pipeline'),
      h('div', { class: 'graph-scroll' }, graphSvg), stepInfo,
      h('details', { class: 'steps-details', id: 'steps-table', open: true }, h('summary', null, 'Steps, durations and outputs'), stepsBox)),
    h('section', { class: 'card', 'aria-labelledby': 'services-h' }, h('h2', { id: 'services-h' }, 'Services'), servicesBox),
    usage.el,
    logs.el,
    h('section', { class: 'card', 'aria-labelledby': 'history-h' }, h('h2', { id: 'history-h' }, 'History'), historyBox));

  function drawHead() {
    document.getElementById('page-title').textContent = d.name;
    document.title = `${d.name} · NullOps`;
    // Rebuild the buttons only when what they offer changes: a redraw
    // under the pointer or the keyboard focus would lose the click.
    const actionsKey = `${d.status}|${d.access}|${canManage(d)}`;
    if (actionsKey !== shownActions) {
      shownActions = actionsKey;
      clear(actions, actionButtons(d, (updated) => {
        if (updated) { Object.assign(d, updated); drawHead(); loadHistory(); }
      }));
    }
    clear(head, h('dl', { class: 'facts' },
      h('dt', null, 'Status'), h('dd', { id: 'dep-status' }, badge(d.status), d.degraded ? [' ', badge('degraded')] : null, d.delete_pending ? h('span', { class: 'muted small' }, ' (delete waits for the node)') : null),
      h('dt', null, 'Project'), h('dd', null, d.project || ''),
      h('dt', null, 'Environment'), h('dd', null, d.environment || ''),
      h('dt', null, 'Node'), h('dd', { id: 'dep-node' }, d.node || '—', nodeNote(d)),
      h('dt', null, 'Owner'), h('dd', null, d.owner || ''),
      h('dt', null, 'Pipeline version'), h('dd', null, String(d.pipeline_version ?? '')),
      h('dt', null, 'Resources'), h('dd', null, `${d.cpu} CPU · ${d.memory_mb} MiB`),
      h('dt', null, 'Created'), h('dd', null, timeEl(d.created_at)),
      h('dt', null, 'Cleanup in'), h('dd', { id: 'dep-expires' }, isDead(d) ? '—' : countdown(d.expires_at)),
      h('dt', null, 'Links'), h('dd', { id: 'dep-links' }, linkList(d), copyAllLinks(d)),
      d.cloned_from ? [h('dt', null, 'Cloned from'), h('dd', null, h('a', { href: `/deployments/${d.cloned_from}` }, `#${d.cloned_from}`))] : null,
      h('dt', null, 'Versions'), h('dd', null, Object.entries(d.tags || {}).map(([svc, tag]) => h('code', { class: 'tag' }, `${svc}:${tag}`)))));
    if (d.status === 'deleted') {
      const who = ending && ending.actor && ending.actor !== 'system' ? ending.actor : null;
      const how = ending && ending.action === 'expired' ? 'Removed automatically after inactivity' : ending && ending.action === 'removed' ? 'Removed by the system' : 'Deleted';
      clear(reasonBox, h('div', { class: 'notice dead', role: 'status', id: 'deleted-note' },
        h('strong', null, how), ' ', timeEl(d.deleted_at || (ending && ending.at)), who ? [' by ', h('strong', { id: 'deleted-by' }, who)] : null,
        '. Its containers, networks and data are gone; its links no longer answer.',
        d.reason ? h('div', { class: 'muted small' }, d.reason) : null));
      return;
    }
    clear(reasonBox, d.status === 'failed' || (d.reason && d.status !== 'running')
      ? h('div', { class: d.status === 'failed' ? 'error-box' : 'notice', role: d.status === 'failed' ? 'alert' : 'status', id: 'failure-reason' },
        h('strong', null, d.status === 'failed' ? 'Deployment failed' : 'Note'),
        d.failed_step ? [' at step ', h('code', null, d.failed_step)] : null, d.reason ? ': ' + d.reason : '',
        d.failed_step && steps.has(d.failed_step) ? [' ', h('button', { type: 'button', class: 'small', id: 'show-failed-step', onclick: () => showStep(d.failed_step) }, `Show step ${d.failed_step}`)] : null)
      : d.degraded
        ? h('div', { class: 'notice', role: 'alert', id: 'degraded-reason' }, h('strong', null, 'Degraded'), ': ' + (d.degraded_reason || ''))
        : null);
  }

  function drawGraph() {
    if (!graph) {
      // Without the graph, show the steps in order as a chain of boxes.
      graph = { nodes: [...steps.values()].map((st) => ({ id: st.id, kind: st.kind })), edges: [] };
    }
    renderStatic(graphSvg, graph, {
      statusOf: (nid) => (steps.get(nid) || {}).status || 'pending',
      selected: selectedStep,
      onSelect: (nid) => showStep(nid, { scroll: false }),
    });
  }

  // showStep selects a step: its details, its log, and the page scrolled
  // to it.
  function showStep(nid, { scroll = true } = {}) {
    selectedStep = nid;
    drawGraph();
    drawStepInfo();
    logs.open('step:' + nid);
    if (scroll) stepInfo.scrollIntoView({ block: 'nearest' });
  }

  // focusStep is the step a visitor most likely came for: the failed one,
  // else the one running.
  function focusStep() {
    if (d.failed_step && steps.has(d.failed_step)) return d.failed_step;
    const all = [...steps.values()];
    return (all.find((st) => st.status === 'failed') || all.find((st) => st.status === 'running') || {}).id || null;
  }

  function drawStepInfo() {
    const st = selectedStep && steps.get(selectedStep);
    const focus = focusStep();
    const offer = focus && focus !== selectedStep
      ? h('button', { type: 'button', class: 'small', id: 'show-focus-step', onclick: () => showStep(focus) },
        `Show the ${(steps.get(focus) || {}).status === 'running' ? 'running' : 'failed'} step ${focus}`)
      : null;
    clear(stepsBox, steps.size ? stepsTable([...steps.values()], (nid) => showStep(nid)) : h('p', { class: 'muted small' }, 'No steps yet.'));
    if (!st) { clear(stepInfo, h('p', { class: 'muted small' }, 'Select a node to see its step details and logs. ', offer)); return; }
    clear(stepInfo, stepDetails(st), offer);
  }

  function drawServices() {
    const list = [...services.values()];
    const dead = isDead(d);
    const urls = new Map(links(d).map((l) => [l.service, l.url]));
    clear(servicesBox, list.length === 0 ? empty('No service containers yet.') : table([
      { label: 'Node', render: (sv) => h('strong', null, sv.id) },
      { label: 'Image', render: (sv) => h('code', null, `${sv.image}:${sv.tag}`) },
      // A dead deployment's containers are gone: their last health and
      // figures would claim otherwise.
      { label: 'Health', render: (sv) => (dead ? badge('stopped') : badge(sv.health || 'unknown')) },
      { label: 'State', render: (sv) => (dead ? '—' : serviceState(sv)) },
      { label: 'CPU', render: (sv) => (!dead && sv.cpu_percent !== undefined ? `${Number(sv.cpu_percent).toFixed(1)}%` : '—') },
      { label: 'Memory', render: (sv) => (dead ? '—' : formatBytes(sv.memory_bytes)) },
      { label: 'Link', render: (sv) => (dead ? '—' : urls.get(sv.id) ? h('a', { href: urls.get(sv.id), target: '_blank', rel: 'noopener', 'data-external': '' }, 'open ↗') : '—') },
      { label: 'Logs', render: (sv) => (d.status === 'deleted' ? '—' : h('button', { type: 'button', class: 'small', onclick: () => logs.open('service:' + sv.id) }, 'Logs')) },
    ], list, { caption: 'Services', rowAttrs: (sv) => ({ 'data-service': sv.id }) }));
  }

  // serviceState: the container's state, Docker's restarts, the last exit
  // and (folded) the last log lines the agent sent with the crash.
  function serviceState(sv) {
    if (!sv.state) return '—';
    const exit = sv.exit_code === null || sv.exit_code === undefined ? null
      : h('span', { class: 'muted small' }, sv.last_exit_oom ? ` OOM-killed (exit ${sv.exit_code})` : ` last exit ${sv.exit_code}`);
    return h('div', { class: 'svc-state' }, badge(sv.state),
      sv.restart_count ? h('span', { class: 'muted small' }, ` ${sv.restart_count} restart${sv.restart_count === 1 ? '' : 's'}`) : null,
      exit,
      sv.last_lines ? h('details', null, h('summary', { class: 'small' }, 'last log lines'), h('pre', { class: 'last-lines' }, sv.last_lines)) : null);
  }

  async function loadHistory() {
    try {
      const rows = api.items(await api.get(`/deployments/${id}/history`));
      const end = rows.filter((r) => ['deleted', 'expired', 'removed', 'cancelled'].includes(r.action)).pop() || null;
      if (end !== ending) { ending = end; if (d.status === 'deleted') drawHead(); }
      clear(historyBox, rows.length === 0 ? empty('No history yet.') : h('ol', { class: 'history' }, rows.map((r) => h('li', null,
        timeEl(r.at || r.created_at), ' ', h('strong', null, r.actor || r.actor_name || 'system'), ' ', r.action,
        r.detail && Object.keys(r.detail).length ? h('code', { class: 'small' }, ' ' + JSON.stringify(r.detail)) : null))));
    } catch (err) {
      clear(historyBox, errorBox(err));
    }
  }

  // Graph of the pipeline version this deployment runs.
  if (!graph) {
    try {
      const v = await api.get(`/projects/${d.project_id}/pipeline/versions/${d.pipeline_version}`);
      graph = v.graph || null;
    } catch { graph = null; }
  }

  drawHead();
  drawGraph();
  drawStepInfo();
  drawServices();
  loadHistory();
  // ?log=step:NAME or ?log=service:NAME opens that log by itself (the log
  // viewer's "Open in a new tab"); otherwise a failed or running step
  // opens (not on a deleted deployment: its page explains what is gone).
  const wanted = q.get('log') || '';
  if (wanted.startsWith('step:') && steps.has(wanted.slice(5))) {
    showStep(wanted.slice(5));
    logs.el.scrollIntoView({ block: 'start' });
  } else if (wanted.startsWith('service:') && d.status !== 'deleted') {
    logs.open(wanted);
    logs.el.scrollIntoView({ block: 'start' });
  } else if (d.status !== 'deleted' && focusStep()) {
    showStep(focusStep(), { scroll: false });
  }

  // Live updates for this deployment.
  let refetch = null;
  const refresh = () => {
    clearTimeout(refetch);
    refetch = setTimeout(async () => {
      try {
        const fresh = await api.get(`/deployments/${id}`);
        Object.assign(d, fresh, { access: fresh.access || d.access });
        for (const st of fresh.steps || []) steps.set(st.id, st);
        for (const sv of fresh.services || []) services.set(sv.id, sv);
        drawHead(); drawGraph(); drawStepInfo(); drawServices();
      } catch { /* the next event or poll retries */ }
    }, 300);
  };
  stops.push(subscribe(`/deployments/${id}/events`, (ev) => {
    if (ev.deployment_id && String(ev.deployment_id) !== String(id)) return;
    switch (ev.type) {
      case 'deployment': {
        // Full state at (re)connect: nothing missed while disconnected.
        const access = d.access;
        Object.assign(d, ev, { access, type: undefined });
        for (const st of ev.steps || []) steps.set(st.id, st);
        for (const sv of ev.services || []) services.set(sv.id, sv);
        drawHead(); drawGraph(); drawStepInfo(); drawServices();
        break;
      }
      case 'deployment.status':
        Object.assign(d, { status: ev.status, reason: ev.reason || '', failed_step: ev.failed_step || d.failed_step, delete_pending: ev.delete_pending,
          node_status: ev.node_status || d.node_status, node_unreachable_since: ev.node_unreachable_since || null });
        drawHead();
        loadHistory();
        if (ev.status === 'running' || ev.status === 'failed') refresh();
        break;
      case 'deployment.ttl':
        if (ev.expires_at) { d.expires_at = ev.expires_at; drawHead(); }
        break;
      case 'step.status': {
        const st = { ...(steps.get(ev.step.id) || { id: ev.step.id }), ...ev.step };
        if (ev.step.status === 'running' && !st.started_at) st.started_at = ev.at;
        if (['succeeded', 'failed'].includes(ev.step.status)) st.finished_at = ev.at;
        steps.set(st.id, st);
        drawGraph();
        drawStepInfo();
        // A finished step's outputs come with the deployment.
        if (['succeeded', 'failed'].includes(ev.step.status)) refresh();
        break;
      }
      case 'step.log':
        logs.stepChunk(ev.step.id, ev.step.chunk || '', ev.at);
        break;
      case 'service.state': {
        const sv = services.get(ev.service.id);
        if (sv) {
          const { health, state, restart_count: restarts, exit_code: exitCode, last_exit_oom: oom } = ev.service;
          Object.assign(sv, { health: health || sv.health });
          if (state) Object.assign(sv, { state, restart_count: restarts || 0, exit_code: exitCode ?? sv.exit_code, last_exit_oom: !!oom });
          drawServices();
          // A crash changes the deployment's degraded reason and last lines.
          if (state) refresh();
        } else refresh();
        break;
      }
      default:
    }
  }));
  // Metrics (CPU/memory) are not pushed as events; refresh them while open.
  const poll = setInterval(() => { if (!['deleted'].includes(d.status)) refresh(); }, 10000);
  stops.push(() => clearInterval(poll), () => clearTimeout(refetch));

  return () => stops.forEach((fn) => fn());
}

// nodeNote says when the deployment's node stopped answering: its
// deployments stay routed for a grace period before they go offline.
function nodeNote(d) {
  if (d.node_unreachable_since && !['deleted', 'failed'].includes(d.status)) {
    return h('span', { class: 'warn small' }, ' (node unreachable since ', timeEl(d.node_unreachable_since), ')');
  }
  if (d.node_status && d.node_status !== 'online') return h('span', { class: 'warn small' }, ` (${d.node_status})`);
  return null;
}
