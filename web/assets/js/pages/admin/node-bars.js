// Reserved vs capacity vs used, per resource, for one node (admins): the
// track is the capacity the agent advertises, the upper bar what the
// node's live deployments reserve (what placement counts), the lower bar
// what the agent measures in use on the machine.

import { h, s } from '../../dom.js';
import { formatBytes } from '../../ui.js';

export function nodeBars(n) {
  const c = n.capacity || {};
  const r = n.reserved || {};
  const u = n.usage || {};
  if (!c.cpus && !c.memory_mb) return h('span', { class: 'muted' }, 'no figures yet (the agent reports them once connected)');
  const cpu = (v) => `${Number(v || 0).toFixed(2).replace(/\.?0+$/, '') || '0'}`;
  const mib = (v) => formatBytes((v || 0) * 1048576);
  return h('div', { class: 'node-bars' },
    bar('cpu', 'CPU', r.cpus || 0, c.cpus || 0, u.cpus_used || 0, (v) => cpu(v), ' CPU'),
    bar('memory', 'Memory', r.memory_mb || 0, c.memory_mb || 0, u.memory_used_mb || 0, mib, ''),
    h('div', { class: 'muted small' }, `${r.deployments || 0} deployment${r.deployments === 1 ? '' : 's'} reserving`));
}

function bar(resource, label, reserved, capacity, used, fmt, unit) {
  const pct = (v) => (capacity > 0 ? Math.min(100, (v / capacity) * 100) : 0);
  const text = `${label}: ${fmt(reserved)} of ${fmt(capacity)}${unit} reserved, ${fmt(used)}${unit} used`;
  const over = reserved > capacity;
  return h('div', { class: 'node-bar', 'data-resource': resource, 'data-reserved': String(reserved), 'data-capacity': String(capacity), 'data-used': String(used) },
    h('div', { class: 'node-bar-label small' }, h('strong', null, label), ' ',
      h('span', { 'data-figures': '' }, `${fmt(reserved)} / ${fmt(capacity)}${unit} reserved · ${fmt(used)}${unit} used`)),
    s('svg', { class: 'bar-svg', viewBox: '0 0 100 14', preserveAspectRatio: 'none', role: 'img', 'aria-label': text },
      s('title', null, text),
      s('rect', { class: 'bar-track', x: 0, y: 0, width: 100, height: 14 }),
      s('rect', { class: ['bar-reserved', over ? 'over' : ''], x: 0, y: 0, width: pct(reserved).toFixed(2), height: 7 }),
      s('rect', { class: 'bar-used', x: 0, y: 7, width: pct(used).toFixed(2), height: 7 })));
}
