// The visual pipeline editor: an SVG canvas of nodes and edges edited with
// the mouse (drag nodes from the palettes, move them, drag from an output
// port to an input port to connect) or the keyboard (palette buttons add a
// node, Tab focuses nodes, arrows move, Delete removes, and the inspector's
// "Runs after" checkboxes edit edges). The inspector on the right edits the
// selected node; component parameters use a form generated from the
// plugin's JSON Schema.
//
// All state is a protocol.Graph ({resources, nodes, edges}); positions are
// kept in node.position so the layout survives saving.

import { h, s, clear, uid } from '../dom.js';
import { form } from '../forms.js';
import { paramsForm } from './schema-form.js';
import {
  NODE_W, NODE_H, GRID, autoPlace, snap, drawNode, drawEdge, arrowDefs, canvasSize, curve, outPort,
} from './graph-view.js';

// createEditor options: graph, catalog {services, plugins, secrets},
// readOnly, onChange(graph).
export function createEditor({ graph, catalog, readOnly = false, onChange = () => {} }) {
  const g = normalise(graph);
  autoPlace(g);
  let selection = null; // {node: id} | {edge: index}
  let errors = { byNode: {}, params: {}, general: [] };
  const hintsId = uid('hints');

  const svg = s('svg', { class: 'canvas', role: 'group', 'aria-label': 'Pipeline graph. Nodes can be focused with Tab; arrow keys move the focused node; Delete removes it.' });
  const canvasWrap = h('div', { class: 'canvas-wrap' }, svg);
  const inspector = h('aside', { class: 'inspector', 'aria-label': 'Selected node settings' });
  const hints = h('datalist', { id: hintsId });
  const ghost = h('div', { class: 'drag-ghost', hidden: true });
  const palette = readOnly ? null : buildPalette();
  const el = h('div', { class: ['editor', readOnly ? 'read-only' : ''] }, palette, canvasWrap, inspector, hints, ghost);

  // ---- model helpers --------------------------------------------------------

  const nodeById = (id) => g.nodes.find((n) => n.id === id);
  const changed = () => { render(); onChange(exportGraph()); };

  function uniqueId(base) {
    base = String(base).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'node';
    let id = base;
    for (let i = 2; nodeById(id); i++) id = `${base}-${i}`;
    return id;
  }

  function addNode(kind, name, pos) {
    const n = { id: uniqueId(name), kind };
    if (kind === 'service') {
      n.service = name;
      const svc = catalog.services.find((x) => x.name === name);
      if (svc && Array.isArray(svc.ports) && svc.ports.length) n.port = svc.ports[0];
    } else {
      n.plugin = name;
      n.params = {};
    }
    n.position = pos || freeSpot();
    g.nodes.push(n);
    selection = { node: n.id };
    changed();
    focusNode(n.id);
    return n;
  }

  // freeSpot places a keyboard-added node right of the rightmost node.
  function freeSpot() {
    let x = 30; let y = 30;
    for (const n of g.nodes) {
      if (n.position.x + NODE_W + 90 > x) { x = n.position.x + NODE_W + 90; y = n.position.y; }
    }
    return { x: snap(x), y: snap(y) };
  }

  // wouldCycle reports whether adding from->to closes a cycle (to already
  // reaches from).
  function wouldCycle(from, to) {
    const seen = new Set();
    const stack = [to];
    while (stack.length) {
      const cur = stack.pop();
      if (cur === from) return true;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const [a, b] of g.edges) if (a === cur) stack.push(b);
    }
    return false;
  }

  // connect adds an edge; returns an error message or ''.
  function connect(from, to) {
    if (from === to) return 'A node cannot depend on itself.';
    if (g.edges.some(([a, b]) => a === from && b === to)) return `${to} already runs after ${from}.`;
    if (wouldCycle(from, to)) return `Connecting ${from} → ${to} would create a cycle.`;
    g.edges.push([from, to]);
    return '';
  }

  function removeNode(id) {
    g.nodes = g.nodes.filter((n) => n.id !== id);
    g.edges = g.edges.filter(([a, b]) => a !== id && b !== id);
    selection = null;
    changed();
  }

  function removeEdge(i) {
    g.edges.splice(i, 1);
    selection = null;
    changed();
  }

  // renameNode changes an id everywhere it is referenced: edges and
  // ${steps.OLD.…} templates.
  function renameNode(oldId, newId) {
    const n = nodeById(oldId);
    n.id = newId;
    g.edges = g.edges.map(([a, b]) => [a === oldId ? newId : a, b === oldId ? newId : b]);
    const re = new RegExp('\\$\\{steps\\.' + oldId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\.', 'g');
    const fix = (v) => (typeof v === 'string' ? v.replace(re, '${steps.' + newId + '.') : v);
    for (const m of g.nodes) {
      for (const k of Object.keys(m.env || {})) m.env[k] = fix(m.env[k]);
      for (const k of Object.keys(m.params || {})) m.params[k] = fix(m.params[k]);
    }
    if (errors.byNode[oldId]) { errors.byNode[newId] = errors.byNode[oldId]; delete errors.byNode[oldId]; }
    selection = { node: newId };
  }

  // ---- rendering -------------------------------------------------------------

  function render() {
    renderCanvas();
    renderInspector();
    renderHints();
  }

  function renderCanvas() {
    const focusedNode = svg.contains(document.activeElement) ? document.activeElement.getAttribute('data-node') : null;
    const { w, h: height } = canvasSize(g);
    svg.setAttribute('width', w);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', `0 0 ${w} ${height}`);
    svg.replaceChildren(arrowDefs(), s('rect', { class: 'canvas-bg', width: w, height, 'data-bg': '1' }));
    g.edges.forEach(([a, b], i) => {
      const from = nodeById(a); const to = nodeById(b);
      if (!from || !to) return;
      const e = drawEdge(from, to, { selected: selection && selection.edge === i });
      e.setAttribute('data-index', i);
      svg.append(e);
    });
    for (const n of g.nodes) {
      const msgs = errors.byNode[n.id];
      svg.append(drawNode(n, {
        ports: !readOnly, focusable: true,
        selected: selection && selection.node === n.id,
        error: msgs && msgs.length ? msgs.join('; ') : '',
      }));
    }
    if (g.nodes.length === 0) {
      svg.append(s('text', { class: 'canvas-hint', x: 40, y: 60 }, readOnly ? 'This version has no nodes.' : 'Drag a service or a component from the palette here.'));
    }
    if (focusedNode) focusNode(focusedNode);
  }

  function focusNode(id) {
    const nodeEl = svg.querySelector(`g.node[data-node="${CSS.escape(id)}"]`);
    if (nodeEl) nodeEl.focus();
  }

  // renderHints fills the datalist offered by env and parameter inputs:
  // secrets, outputs of earlier steps, and node ids (in-network host names).
  function renderHints() {
    const opts = [];
    for (const sec of catalog.secrets || []) opts.push('${secrets.' + sec.name + '}');
    const sel = selection && selection.node;
    for (const id of sel ? ancestors(sel) : []) {
      const n = nodeById(id);
      if (n && n.kind === 'component') {
        const plugin = catalog.plugins.find((p) => p.name === n.plugin);
        const outs = outputNames(plugin);
        if (outs.length) for (const o of outs) opts.push('${steps.' + id + '.outputs.' + o + '}');
        else opts.push('${steps.' + id + '.outputs.NAME}');
      } else if (n) {
        opts.push(id);
      }
    }
    clear(hints, opts.map((v) => h('option', { value: v })));
  }

  function ancestors(id) {
    const out = new Set();
    const stack = [id];
    while (stack.length) {
      const cur = stack.pop();
      for (const [a, b] of g.edges) if (b === cur && !out.has(a)) { out.add(a); stack.push(a); }
    }
    return [...out];
  }

  // ---- inspector -------------------------------------------------------------

  function renderInspector() {
    // Keep the inspector if the user is typing in it and the selection is
    // the same (re-rendering would steal the caret).
    if (inspector.contains(document.activeElement) && inspector.dataset.sel === JSON.stringify(selection)) return;
    inspector.dataset.sel = JSON.stringify(selection);
    if (selection && selection.edge !== undefined) {
      const [a, b] = g.edges[selection.edge] || [];
      clear(inspector, h('h2', null, 'Connection'),
        h('p', null, h('code', null, b), ' starts after ', h('code', null, a), ' succeeded.'),
        readOnly ? null : h('button', { type: 'button', class: 'danger', id: 'delete-edge', onclick: () => removeEdge(selection.edge) }, 'Delete connection'),
        readOnly ? null : h('p', { class: 'muted small' }, 'Or press Delete.'));
      return;
    }
    const n = selection && nodeById(selection.node);
    if (!n) {
      clear(inspector, pipelineSettings());
      return;
    }
    clear(inspector, nodeSettings(n));
  }

  function problems() {
    if (!errors.general.length) return null;
    return h('div', { class: 'error-box', role: 'alert' }, h('strong', null, 'Pipeline problems'),
      h('ul', null, errors.general.map((m) => h('li', null, m))));
  }

  function pipelineSettings() {
    const res = g.resources || {};
    const f = form({
      id: 'pipeline-settings', buttons: false, readOnly,
      fields: [
        { name: 'cpu', label: 'CPU for the whole pipeline (cores)', type: 'number', step: '0.25', min: 0, optional: true, help: 'Optional; defaults to the project limit.' },
        { name: 'memory_mb', label: 'Memory (MiB)', type: 'number', min: 0, optional: true },
      ],
      values: res,
    });
    f.el.addEventListener('input', () => {
      const v = f.values();
      if (v.cpu === undefined && v.memory_mb === undefined) delete g.resources;
      else g.resources = { cpu: v.cpu || 0, memory_mb: v.memory_mb || 0 };
      onChange(exportGraph());
    });
    const list = g.nodes.length
      ? h('ul', { class: 'plain' }, g.nodes.map((n) => h('li', null, h('button', { type: 'button', class: 'link', onclick: () => { selection = { node: n.id }; render(); focusNode(n.id); } },
        n.id), errors.byNode[n.id] ? h('span', { class: 'field-error' }, ' — ' + errors.byNode[n.id].join('; ')) : null)))
      : null;
    return [h('h2', null, 'Pipeline'), problems(),
      h('p', { class: 'muted small' }, readOnly ? 'Select a node to see its settings.' : 'Select a node to edit it. Drag from a node\'s right port to another node\'s left port to make it run after it.'),
      list, f.el];
  }

  function nodeSettings(n) {
    const msgs = errors.byNode[n.id] || [];
    const out = [h('h2', null, n.kind === 'service' ? 'Service node' : 'Component node')];
    if (msgs.length) out.push(h('div', { class: 'error-box', role: 'alert' }, h('ul', null, msgs.map((m) => h('li', null, m)))));

    // Id: applied on change (not per keystroke) because edges follow it.
    const idErr = h('p', { class: 'field-error', id: 'node-id-err', hidden: true });
    const idInput = h('input', { id: 'node-id', class: 'mono', value: n.id, disabled: readOnly, 'aria-describedby': 'node-id-help node-id-err', autocomplete: 'off' });
    idInput.addEventListener('change', () => {
      const v = idInput.value.trim();
      let msg = '';
      if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(v)) msg = 'use lowercase letters, digits and dashes (it is a host name)';
      else if (v !== n.id && nodeById(v)) msg = `${v} is already used`;
      idErr.textContent = msg; idErr.hidden = !msg;
      if (msg) { idInput.setAttribute('aria-invalid', 'true'); return; }
      idInput.removeAttribute('aria-invalid');
      if (v !== n.id) { renameNode(n.id, v); changed(); }
    });
    out.push(h('div', { class: 'field' }, h('label', { for: 'node-id' }, 'Node id'), idInput,
      h('p', { class: 'help', id: 'node-id-help' }, n.kind === 'service' ? 'Other services reach this one by this host name.' : 'Later steps read outputs as ${steps.' + n.id + '.outputs.NAME}.'), idErr));

    if (n.kind === 'service') out.push(serviceFields(n));
    else out.push(componentFields(n));
    out.push(dependsOn(n));
    if (!readOnly) {
      out.push(h('button', { type: 'button', class: 'danger', id: 'delete-node', onclick: () => removeNode(n.id) }, 'Delete node'));
    }
    return out;
  }

  function serviceFields(n) {
    const f = form({
      id: 'node-form', buttons: false, readOnly,
      fields: [
        { name: 'service', label: 'Service', type: 'select', options: catalog.services.map((x) => ({ value: x.name, label: `${x.name} (${x.image})` })), placeholderOption: 'Choose a service' },
        { name: 'port', label: 'Port exposed through ingress', type: 'number', min: 0, max: 65535, optional: true },
        { name: 'ingress', label: 'Reachable through ingress', type: 'checkbox' },
        { name: 'env', label: 'Environment', type: 'keyvalue', datalist: hintsId, valuePlaceholder: 'value or ${secrets.NAME}',
          help: 'Values may use ${secrets.NAME} and ${steps.ID.outputs.NAME} of earlier steps (suggested as you type).' },
        { name: 'health_http', label: 'Health check HTTP path', optional: true, placeholder: '/healthz' },
        { name: 'health_command', label: 'Health check command', optional: true, placeholder: 'pg_isready -U postgres', help: 'Alternatively a command run in the container; exit 0 means healthy.' },
        { name: 'health_timeout', label: 'Health timeout', optional: true, placeholder: '60s' },
        { name: 'retries', label: 'Health retries', type: 'number', min: 0, optional: true },
        { name: 'share_cpu', label: 'CPU share (cores)', type: 'number', step: '0.05', min: 0, optional: true,
          help: 'Optional; services without a share split what the plugins and other shares leave of the pipeline\'s CPU evenly.' },
        { name: 'share_memory_mb', label: 'Memory share (MiB)', type: 'number', min: 0, optional: true },
      ],
      values: {
        share_cpu: n.resources && n.resources.cpu ? n.resources.cpu : '', share_memory_mb: n.resources && n.resources.memory_mb ? n.resources.memory_mb : '',
        service: n.service, port: n.port || '', ingress: n.ingress, env: n.env || {},
        health_http: n.health && n.health.http, health_command: n.health && n.health.command ? n.health.command.join(' ') : '',
        health_timeout: n.health && n.health.timeout, retries: n.retries ? n.retries.count : '',
      },
    });
    f.el.addEventListener('input', () => applyService(n, f.values()));
    f.el.addEventListener('change', () => applyService(n, f.values()));
    return f.el;
  }

  function applyService(n, v) {
    n.service = v.service || '';
    if (v.port) n.port = v.port; else delete n.port;
    if (v.ingress) n.ingress = true; else delete n.ingress;
    if (v.env && Object.keys(v.env).length) n.env = v.env; else delete n.env;
    const health = {};
    if (v.health_http) health.http = v.health_http;
    if (v.health_command) health.command = v.health_command.split(/\s+/).filter(Boolean);
    if (v.health_timeout) health.timeout = v.health_timeout;
    if (Object.keys(health).length) n.health = health; else delete n.health;
    if (v.retries) n.retries = { count: v.retries }; else delete n.retries;
    if (v.share_cpu || v.share_memory_mb) n.resources = { cpu: v.share_cpu || 0, memory_mb: v.share_memory_mb || 0 }; else delete n.resources;
    redrawCanvasOnly();
  }

  function componentFields(n) {
    const wrap = h('div');
    const pluginSel = h('select', { id: 'node-plugin', disabled: readOnly },
      h('option', { value: '' }, 'Choose a plugin'),
      catalog.plugins.map((p) => h('option', { value: p.name, selected: p.name === n.plugin }, `${p.name} (${p.image}:${p.tag})`)));
    const paramsBox = h('div');
    const drawParams = () => {
      const plugin = catalog.plugins.find((p) => p.name === n.plugin);
      n.params = n.params || {};
      clear(paramsBox, plugin
        ? [h('h3', null, 'Parameters'), plugin.description ? h('p', { class: 'muted small' }, plugin.description) : null,
          paramsForm(plugin.params_schema, n.params, { readOnly, hintsId, errors: errors.params[n.id] || {}, onChange: () => onChange(exportGraph()) })]
        : h('p', { class: 'muted small' }, n.plugin ? `Plugin ${n.plugin} is not in the catalog.` : 'Choose a plugin to set its parameters.'));
    };
    pluginSel.addEventListener('change', () => {
      n.plugin = pluginSel.value;
      n.params = {};
      drawParams();
      redrawCanvasOnly();
    });
    const retries = h('input', { id: 'node-retries', type: 'number', min: 0, value: n.retries ? n.retries.count : '', disabled: readOnly, class: 'short' });
    retries.addEventListener('input', () => {
      const c = Number(retries.value);
      if (c > 0) n.retries = { ...(n.retries || {}), count: c }; else delete n.retries;
      onChange(exportGraph());
    });
    drawParams();
    wrap.append(h('div', { class: 'field' }, h('label', { for: 'node-plugin' }, 'Plugin'), pluginSel), paramsBox,
      h('div', { class: 'field' }, h('label', { for: 'node-retries' }, 'Retries on failure'), retries));
    return wrap;
  }

  // dependsOn edits the incoming edges with checkboxes: the keyboard way to
  // connect nodes.
  function dependsOn(n) {
    const others = g.nodes.filter((m) => m.id !== n.id);
    if (!others.length) return null;
    const box = h('fieldset', { class: 'depends' }, h('legend', null, 'Runs after'));
    for (const m of others) {
      const id = uid('dep');
      const has = g.edges.some(([a, b]) => a === m.id && b === n.id);
      const cb = h('input', { type: 'checkbox', id, checked: has, disabled: readOnly || (!has && wouldCycle(m.id, n.id)) });
      cb.addEventListener('change', () => {
        if (cb.checked) connect(m.id, n.id);
        else g.edges = g.edges.filter(([a, b]) => !(a === m.id && b === n.id));
        redrawCanvasOnly();
        onChange(exportGraph());
      });
      box.append(h('div', { class: 'checkbox' }, h('label', { for: id }, cb, ' ', m.id)));
    }
    return box;
  }

  // redrawCanvasOnly re-renders the SVG while the inspector keeps focus.
  function redrawCanvasOnly() {
    const keep = inspector.dataset.sel;
    render();
    inspector.dataset.sel = keep;
    onChange(exportGraph());
  }

  // ---- palette ---------------------------------------------------------------

  function buildPalette() {
    const item = (kind, name, sub) => {
      const b = h('button', { type: 'button', class: 'palette-item', 'data-kind': kind, 'data-name': name, title: `Drag onto the canvas or press Enter to add ${name}` },
        h('span', { class: 'palette-name' }, name), h('span', { class: 'palette-sub' }, sub));
      let drag = null;
      b.addEventListener('pointerdown', (ev) => {
        if (ev.button !== 0) return;
        drag = { x: ev.clientX, y: ev.clientY, moved: false };
        b.setPointerCapture(ev.pointerId);
      });
      b.addEventListener('pointermove', (ev) => {
        if (!drag) return;
        if (!drag.moved && Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) > 4) {
          drag.moved = true;
          ghost.textContent = name;
          ghost.hidden = false;
        }
        if (drag.moved) { ghost.style.left = ev.clientX + 8 + 'px'; ghost.style.top = ev.clientY + 8 + 'px'; }
      });
      b.addEventListener('pointerup', (ev) => {
        if (!drag) return;
        const wasDrag = drag.moved;
        drag = null;
        ghost.hidden = true;
        if (!wasDrag) return; // a click: handled by the click listener
        b.dataset.suppressClick = '1';
        const r = canvasWrap.getBoundingClientRect();
        if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) return;
        const p = toCanvas(ev.clientX, ev.clientY);
        addNode(kind, name, { x: snap(Math.max(0, p.x - NODE_W / 2)), y: snap(Math.max(0, p.y - NODE_H / 2)) });
      });
      b.addEventListener('pointercancel', () => { drag = null; ghost.hidden = true; });
      b.addEventListener('click', () => {
        if (b.dataset.suppressClick) { delete b.dataset.suppressClick; return; }
        addNode(kind, name);
      });
      return h('li', null, b);
    };
    return h('aside', { class: 'palette', 'aria-label': 'Palettes' },
      h('h2', null, 'Services'),
      catalog.services.length ? h('ul', { class: 'plain', id: 'palette-services' }, catalog.services.map((x) => item('service', x.name, x.tag_mode === 'pinned' ? `${x.image}:${x.tag}` : x.image)))
        : h('p', { class: 'muted small' }, 'No services in the catalog yet.'),
      h('h2', null, 'Components'),
      catalog.plugins.length ? h('ul', { class: 'plain', id: 'palette-plugins' }, catalog.plugins.map((p) => item('component', p.name, `${p.image}:${p.tag}`)))
        : h('p', { class: 'muted small' }, 'No plugins in the catalog yet.'),
      h('p', { class: 'muted small' }, 'Drag onto the canvas, or press Enter on an item to add it.'));
  }

  // ---- canvas interaction ---------------------------------------------------

  function toCanvas(clientX, clientY) {
    const pt = new DOMPoint(clientX, clientY).matrixTransform(svg.getScreenCTM().inverse());
    return { x: pt.x, y: pt.y };
  }

  // One pointer gesture at a time: moving a node or drawing a connection.
  let gesture = null;
  let tempLine = null;

  svg.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    const port = ev.target.closest('.port');
    const nodeEl = ev.target.closest('g.node');
    const edgeEl = ev.target.closest('g.edge');
    if (!readOnly && port && port.dataset.port === 'out') {
      const from = nodeById(port.dataset.node);
      gesture = { kind: 'connect', from: from.id };
      tempLine = s('path', { class: 'edge-temp', d: curve(outPort(from), outPort(from)) });
      svg.append(tempLine);
      svg.setPointerCapture(ev.pointerId);
      ev.preventDefault();
      return;
    }
    if (nodeEl) {
      const n = nodeById(nodeEl.dataset.node);
      const p = toCanvas(ev.clientX, ev.clientY);
      selection = { node: n.id };
      gesture = readOnly ? null : { kind: 'move', id: n.id, dx: p.x - n.position.x, dy: p.y - n.position.y, moved: false };
      if (gesture) svg.setPointerCapture(ev.pointerId);
      render();
      focusNode(n.id);
      ev.preventDefault();
      return;
    }
    if (edgeEl) {
      selection = { edge: Number(edgeEl.dataset.index) };
      render();
      svg.focus();
      return;
    }
    selection = null;
    render();
  });

  svg.addEventListener('pointermove', (ev) => {
    if (!gesture) return;
    const p = toCanvas(ev.clientX, ev.clientY);
    if (gesture.kind === 'move') {
      const n = nodeById(gesture.id);
      n.position = { x: snap(Math.max(0, p.x - gesture.dx)), y: snap(Math.max(0, p.y - gesture.dy)) };
      gesture.moved = true;
      renderCanvas();
    } else if (gesture.kind === 'connect') {
      tempLine.setAttribute('d', curve(outPort(nodeById(gesture.from)), p));
      const over = document.elementFromPoint(ev.clientX, ev.clientY);
      for (const t of svg.querySelectorAll('.drop-target')) t.classList.remove('drop-target');
      const target = over && over.closest && over.closest('g.node');
      if (target && target.dataset.node !== gesture.from) target.classList.add('drop-target');
    }
  });

  const endGesture = (ev) => {
    if (!gesture) return;
    const gs = gesture;
    gesture = null;
    if (gs.kind === 'move') {
      if (gs.moved) changed();
      return;
    }
    if (tempLine) { tempLine.remove(); tempLine = null; }
    if (ev.type !== 'pointerup') { render(); return; }
    // Dropping on the input port or anywhere on the target node connects.
    const over = document.elementFromPoint(ev.clientX, ev.clientY);
    const target = over && over.closest && over.closest('g.node');
    if (target && target.dataset.node) {
      const msg = connect(gs.from, target.dataset.node);
      if (msg) showCanvasMessage(msg);
      else selection = { node: target.dataset.node };
    }
    changed();
  };
  svg.addEventListener('pointerup', endGesture);
  svg.addEventListener('pointercancel', endGesture);

  // Keyboard: Enter/Space select the focused node, arrows move it, Delete
  // removes the selection, Escape clears it.
  svg.setAttribute('tabindex', '0');
  svg.addEventListener('keydown', (ev) => {
    const nodeEl = ev.target.closest && ev.target.closest('g.node');
    const focused = nodeEl ? nodeEl.dataset.node : null;
    if ((ev.key === 'Enter' || ev.key === ' ') && focused) {
      ev.preventDefault();
      selection = { node: focused };
      render();
      focusNode(focused);
      return;
    }
    if (ev.key === 'Escape') { selection = null; render(); return; }
    if (readOnly) return;
    if (ev.key === 'Delete' || ev.key === 'Backspace') {
      ev.preventDefault();
      if (focused) removeNode(focused);
      else if (selection && selection.node) removeNode(selection.node);
      else if (selection && selection.edge !== undefined) removeEdge(selection.edge);
      svg.focus();
      return;
    }
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[ev.key] && focused) {
      ev.preventDefault();
      const n = nodeById(focused);
      const step = ev.shiftKey ? GRID * 5 : GRID;
      n.position = { x: Math.max(0, n.position.x + moves[ev.key][0] * step), y: Math.max(0, n.position.y + moves[ev.key][1] * step) };
      selection = { node: focused };
      changed();
      focusNode(focused);
    }
  });

  const canvasMsg = h('p', { class: 'canvas-msg', role: 'status', hidden: true });
  canvasWrap.append(canvasMsg);
  let msgTimer = null;
  function showCanvasMessage(msg) {
    canvasMsg.textContent = msg;
    canvasMsg.hidden = false;
    clearTimeout(msgTimer);
    msgTimer = setTimeout(() => { canvasMsg.hidden = true; }, 4000);
  }

  // ---- export ---------------------------------------------------------------

  function exportGraph() {
    const out = { nodes: g.nodes.map((n) => ({ ...n, position: { x: Math.round(n.position.x), y: Math.round(n.position.y) } })), edges: g.edges.map((e) => [...e]) };
    if (g.resources) out.resources = { ...g.resources };
    return structuredClone(out);
  }

  render();

  return {
    el,
    getGraph: exportGraph,
    // setErrors pins validation problems: byNode {id: [messages]}, params
    // {id: {param: message}}, general [messages].
    setErrors(e) {
      errors = { byNode: e.byNode || {}, params: e.params || {}, general: e.general || [] };
      inspector.dataset.sel = '';
      render();
    },
    select(id) { selection = id ? { node: id } : null; inspector.dataset.sel = ''; render(); },
    nodeIds: () => g.nodes.map((n) => n.id),
  };
}

// normalise copies a graph and fills in missing arrays.
function normalise(graph) {
  const g = structuredClone(graph || {});
  g.nodes = Array.isArray(g.nodes) ? g.nodes : [];
  g.edges = Array.isArray(g.edges) ? g.edges.filter((e) => Array.isArray(e) && e.length === 2) : [];
  return g;
}

// outputNames reads the outputs a plugin declares, when its schema says so
// (an "outputs" list or an x-outputs object of names).
function outputNames(plugin) {
  if (!plugin || !plugin.params_schema) return [];
  const sch = plugin.params_schema;
  const o = sch['x-outputs'] || sch.outputs;
  if (Array.isArray(o)) return o.map(String);
  if (o && typeof o === 'object') return Object.keys(o.properties || o);
  return [];
}
