// The deployments list: status, project, environment, owner, ingress links
// and a live countdown to auto-cleanup, updated from the live event stream.
// Search, "mine", the filters, the sort and the page are query parameters
// of the API (and of the page's URL): the server does them, so the page
// loads in the same number of requests however many deployments there are.

import { h, clear } from '../dom.js';
import * as api from '../api.js';
import { subscribe } from '../stream.js';
import { page, loading, empty, errorBox, pager, badge, countdown, timeEl } from '../ui.js';
import { linkList, actionButtons, canManage, isDead } from './deploy-common.js';
import { searchBox, sortableTable, noMatches } from '../lists.js';

export function deploymentsPage(_params, q) {
  const newBtn = h('a', { class: 'button primary', href: '/deployments/new', id: 'new-deployment' }, 'New deployment');
  const body = page('Deployments', { actions: [newBtn] });
  const filters = {
    project: q.get('project') || '',
    environment: q.get('environment') || '',
    status: q.get('status') || '',
    q: q.get('q') || '',
    mine: q.get('mine') === 'true' ? 'true' : '',
    sort: q.get('sort') || '',
    order: q.get('order') === 'desc' ? 'desc' : '',
  };
  const filtered = () => Boolean(filters.project || filters.environment || filters.status || filters.q || filters.mine);
  const filterBar = h('form', { class: 'filters inline-form', role: 'search', 'aria-label': 'Filter deployments' });
  const list = h('div', { class: 'list', 'aria-live': 'polite', 'aria-busy': 'true' });
  body.append(filterBar, list);
  let pageNo = Number(q.get('page') || 1);
  let alive = true;
  let rows = [];
  let lastData = null;

  // Filters: projects and environments the user can see. "New deployment"
  // shows only when the server says the user has full access to one.
  newBtn.hidden = true;
  Promise.all([api.listAll('/projects').catch(() => []), api.listAll('/environments').catch(() => [])]).then(([projects, envs]) => {
    if (!alive) return;
    newBtn.hidden = ![...projects, ...envs].some((x) => x.access === 'full');
    const sel = (name, label, opts) => h('div', { class: 'field' }, h('label', { for: 'flt-' + name }, label),
      h('select', { id: 'flt-' + name, name, onchange: (ev) => { filters[name] = ev.target.value; pageNo = 1; sync(); reload(); } },
        opts.map(([v, l]) => h('option', { value: v, selected: String(filters[name]) === String(v) }, l))));
    clear(filterBar,
      searchBox({ id: 'flt-q', label: 'Search', value: filters.q, placeholder: 'name, e.g. pr-42',
        onSearch: (text) => { if (text === filters.q) return; filters.q = text; pageNo = 1; sync(); reload(); } }),
      sel('project', 'Project', [['', 'All projects'], ...projects.map((p) => [p.id, p.name])]),
      sel('environment', 'Environment', [['', 'All environments'], ...envs.map((e) => [e.id, e.name])]),
      sel('status', 'Status', [['', 'Live (not deleted)'], ...['pending', 'deploying', 'running', 'failed', 'offline', 'deleting', 'deleted'].map((s) => [s, s])]),
      h('div', { class: 'field check-field' }, h('label', null,
        h('input', { type: 'checkbox', id: 'flt-mine', checked: Boolean(filters.mine),
          onchange: (ev) => { filters.mine = ev.target.checked ? 'true' : ''; pageNo = 1; sync(); reload(); } }),
        ' Only mine')));
  });
  filterBar.addEventListener('submit', (ev) => ev.preventDefault());

  // clearFilters empties every filter (the sort stays) and reloads.
  function clearFilters() {
    Object.assign(filters, { project: '', environment: '', status: '', q: '', mine: '' });
    for (const el of filterBar.querySelectorAll('select')) el.value = '';
    const search = filterBar.querySelector('#flt-q');
    if (search) search.value = '';
    const mine = filterBar.querySelector('#flt-mine');
    if (mine) mine.checked = false;
    pageNo = 1;
    sync();
    reload();
  }

  function sync() {
    history.replaceState(null, '', '/deployments' + api.query({ ...filters, page: pageNo > 1 ? pageNo : '' }));
  }

  const started = api.newest();
  async function reload() {
    const current = started();
    if (!rows.length) clear(list, loading());
    try {
      const data = await api.get('/deployments' + api.query({ ...filters, page: pageNo, per_page: 25 }));
      // Gone, or the filters changed meanwhile (the newer answer draws).
      if (!alive || !current()) return;
      lastData = data;
      // Each row carries the caller's access level and its ingress URLs.
      rows = api.items(data);
      draw();
    } catch (err) {
      if (alive && current()) clear(list, errorBox(err));
    }
    if (current()) list.setAttribute('aria-busy', 'false');
  }

  function draw() {
    if (rows.length === 0) {
      clear(list, filtered() ? noMatches('deployments', clearFilters)
        : empty('No deployments yet.', h('a', { href: '/deployments/new' }, 'Create the first one')));
      return;
    }
    // Keep keyboard focus stable: skip a redraw while a row button has focus.
    const anyManage = rows.some(canManage);
    clear(list, sortableTable([
      { label: 'Name', sort: 'name', render: (d) => h('a', { href: `/deployments/${d.id}`, class: 'strong' }, d.name) },
      { label: 'Status', sort: 'status', render: (d) => [badge(d.status), d.degraded ? [' ', badge('degraded')] : null,
        d.reason ? h('div', { class: 'muted small reason' }, d.reason) : null,
        d.degraded && d.degraded_reason ? h('div', { class: 'warn small reason degraded-reason' }, d.degraded_reason) : null] },
      { label: 'Project', sort: 'project', render: (d) => d.project || d.project_name || '' },
      { label: 'Environment', sort: 'environment', render: (d) => d.environment || d.environment_name || '' },
      { label: 'Owner', sort: 'owner', render: (d) => d.owner || d.owner_name || '' },
      { label: 'Links', render: linkList },
      { label: 'Created', sort: 'created', render: (d) => timeEl(d.created_at) },
      { label: 'Cleanup in', sort: 'expires', render: (d) => (d.status === 'deleted' && d.deleted_at ? h('span', { class: 'muted' }, 'deleted ', timeEl(d.deleted_at))
        : isDead(d) ? h('span', { class: 'muted' }, '—') : countdown(d.expires_at)) },
      ...(anyManage ? [{ label: 'Actions', class: 'row-actions', render: (d) => actionButtons(d, () => reload(), { compact: true }) }] : []),
    ], rows, {
      caption: 'Deployments', rowAttrs: (d) => ({ 'data-name': d.name, 'data-status': d.status }),
      sort: filters.sort ? { key: filters.sort, desc: filters.order === 'desc' } : { key: 'created', desc: true },
      onSort: (key, desc) => { filters.sort = key; filters.order = desc ? 'desc' : ''; pageNo = 1; sync(); reload(); },
    }),
    pager(lastData, (p) => { pageNo = p; sync(); reload(); }));
  }

  // Live updates: apply status/TTL events to visible rows; anything else
  // (a new deployment) triggers a debounced reload.
  let reloadTimer = null;
  const close = subscribe('/events', (ev) => {
    const d = rows.find((r) => r.id === ev.deployment_id);
    if (d && ev.type === 'deployment.status') {
      Object.assign(d, { status: ev.status, reason: ev.reason || '' });
      // A deployment turning running gets its URLs from a reload.
      if (ev.status === 'running') { clearTimeout(reloadTimer); reloadTimer = setTimeout(reload, 300); return; }
      if (!list.contains(document.activeElement)) draw();
      return;
    }
    if (d && ev.type === 'deployment.ttl' && ev.expires_at) {
      d.expires_at = ev.expires_at;
      if (!list.contains(document.activeElement)) draw();
      return;
    }
    if (!d && ev.type === 'deployment.status') {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(reload, 500);
    }
  });
  // A slow safety poll covers missed events (and servers without a stream).
  const poll = setInterval(() => { if (!list.contains(document.activeElement)) reload(); }, 15000);

  reload();
  return () => { alive = false; close(); clearInterval(poll); clearTimeout(reloadTimer); };
}
