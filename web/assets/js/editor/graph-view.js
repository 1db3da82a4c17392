// Drawing of a pipeline graph (protocol.Graph) as SVG: nodes as boxes with
// an input port on the left and an output port on the right, edges as
// curves from an output to an input. Used by the editor (interactive) and
// by the deployment page (read-only, nodes coloured by step status).

import { s } from '../dom.js';

export const NODE_W = 188;
export const NODE_H = 58;
export const GRID = 10;
const GAP_X = 90;
const GAP_Y = 30;
const PAD = 30;

// layers assigns each node its longest distance from a root, so every edge
// points to the right. Cycles (invalid anyway) are cut arbitrarily.
export function layers(graph) {
  const ids = graph.nodes.map((n) => n.id);
  const preds = new Map(ids.map((id) => [id, []]));
  for (const [a, b] of graph.edges || []) if (preds.has(b) && preds.has(a)) preds.get(b).push(a);
  const depth = new Map();
  const visiting = new Set();
  const visit = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const p of preds.get(id)) d = Math.max(d, visit(p) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  ids.forEach(visit);
  return depth;
}

// autoPlace gives every node without a position one, column by layer.
export function autoPlace(graph) {
  const depth = layers(graph);
  const rowOf = new Map();
  for (const n of graph.nodes) {
    const d = depth.get(n.id) || 0;
    const row = rowOf.get(d) || 0;
    rowOf.set(d, row + 1);
    if (!n.position) n.position = { x: PAD + d * (NODE_W + GAP_X), y: PAD + row * (NODE_H + GAP_Y) };
  }
}

export function snap(v) { return Math.round(v / GRID) * GRID; }

// Port positions in canvas coordinates.
export function outPort(n) { return { x: n.position.x + NODE_W, y: n.position.y + NODE_H / 2 }; }
export function inPort(n) { return { x: n.position.x, y: n.position.y + NODE_H / 2 }; }

// curve is a horizontal S-shaped cubic Bézier between two points.
export function curve(a, b) {
  const dx = Math.max(40, Math.abs(b.x - a.x) / 2);
  return `M${a.x},${a.y} C${a.x + dx},${a.y} ${b.x - dx},${b.y} ${b.x},${b.y}`;
}

// canvasSize is large enough for every node plus room to drop new ones.
export function canvasSize(graph, minW = 900, minH = 420) {
  let w = minW; let h = minH;
  for (const n of graph.nodes) {
    if (!n.position) continue;
    w = Math.max(w, n.position.x + NODE_W + 240);
    h = Math.max(h, n.position.y + NODE_H + 160);
  }
  return { w, h };
}

export function nodeLabel(n) {
  return n.kind === 'service' ? (n.service || 'service?') : (n.plugin || 'component?');
}

// drawNode builds the <g> of one node. opts.status adds a status class and
// label; opts.ports draws connectable ports; opts.error marks a problem.
export function drawNode(n, opts = {}) {
  const cls = ['node', 'kind-' + n.kind];
  if (opts.status) cls.push('st-' + opts.status);
  if (opts.selected) cls.push('selected');
  if (opts.error) cls.push('has-error');
  const title = `${n.id}: ${n.kind} ${nodeLabel(n)}${opts.status ? ', ' + opts.status : ''}${opts.error ? ', error: ' + opts.error : ''}`;
  const g = s('g', {
    class: cls.join(' '),
    transform: `translate(${n.position.x},${n.position.y})`,
    'data-node': n.id,
    tabindex: opts.focusable ? '0' : undefined,
    role: opts.focusable ? 'button' : 'img',
    'aria-label': title,
  },
  s('title', null, title),
  s('rect', { class: 'node-box', width: NODE_W, height: NODE_H, rx: 8 }),
  s('rect', { class: 'node-stripe', width: 6, height: NODE_H, rx: 3 }),
  s('text', { class: 'node-id', x: 16, y: 23 }, truncate(n.id, 20)),
  s('text', { class: 'node-sub', x: 16, y: 43 }, (n.kind === 'service' ? '▣ ' : '⚙ ') + truncate(nodeLabel(n), 20) + (n.ingress ? ' ↗' : '')));
  if (opts.status) {
    g.append(s('circle', { class: 'status-dot', cx: NODE_W - 16, cy: 16, r: 6 }));
  }
  if (opts.error) {
    g.append(s('text', { class: 'error-mark', x: NODE_W - 20, y: NODE_H - 10 }, '!'));
  }
  if (opts.ports) {
    g.append(
      s('circle', { class: 'port port-in', cx: 0, cy: NODE_H / 2, r: 7, 'data-port': 'in', 'data-node': n.id }),
      s('circle', { class: 'port port-out', cx: NODE_W, cy: NODE_H / 2, r: 7, 'data-port': 'out', 'data-node': n.id }));
  }
  return g;
}

export function drawEdge(from, to, opts = {}) {
  const d = curve(outPort(from), inPort(to));
  const cls = ['edge'];
  if (opts.selected) cls.push('selected');
  if (opts.status) cls.push('st-' + opts.status);
  return s('g', { class: cls.join(' '), 'data-edge': `${from.id}->${to.id}` },
    // A wide transparent stroke makes the thin edge easy to click.
    s('path', { class: 'edge-hit', d }),
    s('path', { class: 'edge-line', d, 'marker-end': 'url(#arrow)' }));
}

export function arrowDefs() {
  return s('defs', null,
    s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow-head' })));
}

function truncate(t, n) { t = String(t); return t.length > n ? t.slice(0, n - 1) + '…' : t; }

// renderStatic draws a whole graph read-only into svg (deployment page).
// statusOf(id) returns the step status; onSelect(id) is called on click or
// Enter on a node.
export function renderStatic(svg, graph, { statusOf = () => '', onSelect, selected } = {}) {
  const g = structuredClone(graph);
  autoPlace(g);
  const { w, h } = canvasSize(g, 300, 120);
  svg.setAttribute('viewBox', `0 0 ${w - 200} ${h - 100}`);
  svg.setAttribute('width', w - 200);
  svg.setAttribute('height', h - 100);
  svg.replaceChildren(arrowDefs());
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  for (const [a, b] of g.edges || []) {
    if (byId.has(a) && byId.has(b)) svg.append(drawEdge(byId.get(a), byId.get(b), { status: statusOf(a) === 'succeeded' ? 'done' : '' }));
  }
  for (const n of g.nodes) {
    const el = drawNode(n, { status: statusOf(n.id) || 'pending', focusable: Boolean(onSelect), selected: selected === n.id });
    if (onSelect) {
      el.addEventListener('click', () => onSelect(n.id));
      el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onSelect(n.id); } });
    }
    svg.append(el);
  }
}
