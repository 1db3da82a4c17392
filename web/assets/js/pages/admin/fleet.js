// Admin: the fleet, every node of every environment with its status and
// reserved vs capacity vs used bars, and the totals. Refreshes every few
// seconds while open.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { page, loading, empty, errorBox, table, badge, pager, timeEl, formatBytes } from '../../ui.js';
import { nodeBars } from './node-bars.js';

export function fleetPage(_, q) {
  const body = page('Nodes', { subtitle: 'Every node of every environment: what its deployments reserve, what it offers, what is in use.' });
  const totals = h('div', { id: 'fleet-totals' });
  const list = h('div', { id: 'fleet' });
  body.append(h('section', { class: 'card', 'aria-labelledby': 'fleet-h' }, h('h2', { id: 'fleet-h', class: 'sr-only' }, 'All nodes'), totals, list));
  let pageNo = Number(q.get('page')) || 1;
  let first = true;

  async function reload() {
    if (first) clear(list, loading());
    first = false;
    try {
      const data = await api.get('/nodes' + api.query({ page: pageNo, per_page: 100 }));
      const nodes = api.items(data);
      drawTotals(nodes, data.total);
      if (nodes.length === 0) {
        clear(list, empty('No nodes yet. Add them on an environment\'s page.', h('a', { href: '/admin/environments' }, 'Environments')));
        return;
      }
      clear(list, table([
        { label: 'Node', render: (n) => [h('strong', null, n.name), h('div', { class: 'muted small' }, `${n.host}:${n.port}`)] },
        { label: 'Environment', render: (n) => h('a', { href: `/admin/environments/${n.environment_id}` }, n.environment || `#${n.environment_id}`) },
        { label: 'Status', render: (n) => [badge(n.status), n.enabled === false && n.status !== 'revoked' ? [' ', badge('draining')] : null,
          n.unreachable_since && n.status !== 'online' ? h('div', { class: 'muted small' }, 'unreachable since ', timeEl(n.unreachable_since)) : null] },
        { label: 'Reserved / capacity / used', render: nodeBars },
        { label: 'Agent', render: (n) => [n.agent_version || '—', n.last_seen_at ? h('div', { class: 'muted small' }, 'seen ', timeEl(n.last_seen_at)) : null] },
      ], nodes, { caption: 'All nodes', rowAttrs: (n) => ({ 'data-name': n.name, 'data-environment': n.environment }) }),
      pager(data, (p) => { pageNo = p; first = true; reload(); }));
    } catch (err) {
      clear(list, errorBox(err));
    }
  }

  // drawTotals sums the nodes on this page that take deployments (online,
  // enabled): what the fleet offers and what is reserved on it.
  function drawTotals(nodes, total) {
    const live = nodes.filter((n) => n.status === 'online' && n.enabled !== false);
    const sum = (f) => live.reduce((a, n) => a + (f(n) || 0), 0);
    const cpus = sum((n) => (n.capacity || {}).cpus);
    const mem = sum((n) => (n.capacity || {}).memory_mb);
    const rc = sum((n) => (n.reserved || {}).cpus);
    const rm = sum((n) => (n.reserved || {}).memory_mb);
    clear(totals, h('p', { class: 'fleet-totals' },
      h('strong', null, `${total} node${total === 1 ? '' : 's'}`), `, ${live.length} online and enabled`,
      live.length ? `: ${rc.toFixed(2).replace(/\.?0+$/, '') || '0'} of ${cpus} CPU and ${formatBytes(rm * 1048576)} of ${formatBytes(mem * 1048576)} reserved` : '',
      total > nodes.length ? ' (on this page)' : ''));
  }

  reload();
  const timer = setInterval(reload, 5000);
  return () => clearInterval(timer);
}
