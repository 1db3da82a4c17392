// A project's node selector, as the API defines it:
//   {"match_labels": {"tier": "qa"},
//    "expressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
// Every term must hold for a node to be chosen. selectorField is a form
// field (type custom) editing both parts; describeSelector shows one.

import { h } from './dom.js';
import { ApiError } from './api.js';

export const OPERATORS = [
  ['In', 'is one of'],
  ['NotIn', 'is none of'],
  ['Exists', 'exists'],
  ['NotExists', 'does not exist'],
  ['Gt', 'is greater than'],
  ['Lt', 'is less than'],
];
const NO_VALUES = new Set(['Exists', 'NotExists']);
const ONE_NUMBER = new Set(['Gt', 'Lt']);

function invalid(name, msg) {
  return new ApiError(400, 'invalid', `${name}: ${msg}`, { [name]: msg });
}

// selectorField returns a field spec for forms.js.
export function selectorField({ name = 'node_selector', label = 'Node selector', help } = {}) {
  return {
    name, label, type: 'custom',
    help: help || 'Only nodes whose labels match every line run this project. Leave empty for any node.',
    render: (value, { id, readOnly }) => selectorEditor(name, label, value, id, readOnly),
  };
}

function selectorEditor(name, label, value, id, ro) {
  const sel = value && typeof value === 'object' ? value : {};
  const labelRows = h('div', { class: 'kv-rows', 'data-sel-part': 'labels' });
  const exprRows = h('div', { class: 'kv-rows', 'data-sel-part': 'expressions' });
  const el = h('div', { class: 'selector-editor', id, tabindex: '-1', role: 'group', 'aria-labelledby': id + '-label' });
  const changed = () => el.dispatchEvent(new Event('input', { bubbles: true }));
  const remove = (row) => h('button', { type: 'button', class: 'icon', 'aria-label': 'Remove this line', onclick: () => { row.remove(); changed(); } }, '×');

  const addLabel = (k = '', v = '') => {
    const n = labelRows.children.length + 1;
    const row = h('div', { class: 'kv-row sel-label' },
      h('input', { type: 'text', class: 'mono', 'data-sel': 'label-key', 'aria-label': `Label ${n} key`, placeholder: 'tier', value: k, disabled: ro }),
      h('span', { class: 'muted', 'aria-hidden': 'true' }, '='),
      h('input', { type: 'text', class: 'mono', 'data-sel': 'label-value', 'aria-label': `Label ${n} value`, placeholder: 'qa', value: v, disabled: ro }));
    if (!ro) row.append(remove(row));
    labelRows.append(row);
    return row.querySelector('input');
  };

  const addExpr = (e = { key: '', operator: 'In', values: [] }) => {
    const n = exprRows.children.length + 1;
    const op = h('select', { 'data-sel': 'expr-op', 'aria-label': `Expression ${n} operator`, disabled: ro },
      OPERATORS.map(([v, l]) => h('option', { value: v, selected: v === e.operator }, `${l} (${v})`)));
    const values = h('input', { type: 'text', class: 'mono', 'data-sel': 'expr-values', 'aria-label': `Expression ${n} values`, value: (e.values || []).join(', '), disabled: ro });
    const fit = () => {
      // Keep the column (the × stays aligned) but take the box away.
      const none = NO_VALUES.has(op.value);
      values.classList.toggle('no-values', none);
      values.disabled = ro || none;
      values.setAttribute('aria-hidden', String(none));
      values.placeholder = ONE_NUMBER.has(op.value) ? 'a number, e.g. 8' : 'values, comma separated';
      values.type = ONE_NUMBER.has(op.value) ? 'number' : 'text';
    };
    op.addEventListener('change', fit);
    fit();
    const row = h('div', { class: 'kv-row sel-expr' },
      h('input', { type: 'text', class: 'mono', 'data-sel': 'expr-key', 'aria-label': `Expression ${n} label key`, placeholder: 'zone', value: e.key || '', disabled: ro }),
      op, values);
    if (!ro) row.append(remove(row));
    exprRows.append(row);
    return row.querySelector('input');
  };

  for (const [k, v] of Object.entries(sel.match_labels || {})) addLabel(k, v);
  for (const e of sel.expressions || []) addExpr(e);

  el.append(
    h('div', { class: 'sel-part' }, h('p', { class: 'small strong' }, 'Labels equal to'), labelRows,
      ro ? null : h('button', { type: 'button', class: 'small', 'data-sel-add': 'label', onclick: () => { addLabel().focus(); changed(); } }, '+ Add label')),
    h('div', { class: 'sel-part' }, h('p', { class: 'small strong' }, 'Expressions'), exprRows,
      ro ? null : h('button', { type: 'button', class: 'small', 'data-sel-add': 'expression', onclick: () => { addExpr().focus(); changed(); } }, '+ Add expression')));

  return {
    el,
    input: null,
    focus: () => { const first = el.querySelector('input:not([disabled]),select'); (first || el).focus(); },
    get: (strict) => {
      const out = {};
      const labels = {};
      for (const row of labelRows.children) {
        const k = row.querySelector('[data-sel="label-key"]').value.trim();
        const v = row.querySelector('[data-sel="label-value"]').value.trim();
        if (!k && !v) continue;
        if (!k && strict) throw invalid(name, `label = "${v}" has no key`);
        if (k) labels[k] = v;
      }
      const exprs = [];
      for (const row of exprRows.children) {
        const key = row.querySelector('[data-sel="expr-key"]').value.trim();
        const operator = row.querySelector('[data-sel="expr-op"]').value;
        const raw = row.querySelector('[data-sel="expr-values"]').value;
        if (!key && !raw.trim()) continue;
        if (!key && strict) throw invalid(name, `an expression (${operator}) has no label key`);
        const e = { key, operator };
        if (!NO_VALUES.has(operator)) {
          e.values = raw.split(',').map((x) => x.trim()).filter(Boolean);
          if (strict && e.values.length === 0) throw invalid(name, `${key} ${operator} needs ${ONE_NUMBER.has(operator) ? 'a number' : 'at least one value'}`);
          if (strict && ONE_NUMBER.has(operator) && (e.values.length !== 1 || !Number.isFinite(Number(e.values[0])))) throw invalid(name, `${key} ${operator} needs exactly one number`);
        }
        exprs.push(e);
      }
      if (Object.keys(labels).length) out.match_labels = labels;
      if (exprs.length) out.expressions = exprs;
      return out;
    },
  };
}

// describeSelector renders a selector as text: "tier=qa, zone In (a, b)".
export function describeSelector(sel) {
  if (!sel || typeof sel !== 'object') return '';
  const parts = Object.entries(sel.match_labels || {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.expressions || []) {
    parts.push(NO_VALUES.has(e.operator) ? `${e.key} ${e.operator}` : `${e.key} ${e.operator} (${(e.values || []).join(', ')})`);
  }
  return parts.join(', ');
}
