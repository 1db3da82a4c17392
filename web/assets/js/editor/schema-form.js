// Builds the parameter form of a component node from its plugin's JSON
// Schema: strings, numbers, booleans and enums get their own inputs,
// objects and arrays a JSON text area. Values may be templates such as
// ${steps.mkdb.outputs.url}; the hints datalist offers them.

import { h, uid } from '../dom.js';

// paramsForm returns an element editing `params` in place; onChange is
// called after every edit. errors maps parameter name -> message.
export function paramsForm(schema, params, { onChange = () => {}, readOnly = false, hintsId, errors = {} } = {}) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const names = Object.keys(props);
  const wrap = h('div', { class: 'params' });
  if (names.length === 0) {
    wrap.append(h('p', { class: 'muted small' }, 'This plugin declares no parameters.'));
  }
  for (const name of names) {
    wrap.append(paramField(name, props[name] || {}, required.has(name), params, onChange, readOnly, hintsId, errors[name]));
  }
  // Parameters set in the graph but unknown to the schema are kept and shown
  // so they are not silently lost.
  const extra = Object.keys(params).filter((k) => !(k in props));
  if (extra.length) {
    wrap.append(h('p', { class: 'warn small' }, 'Not in the plugin schema: ' + extra.join(', ')));
  }
  return wrap;
}

function paramField(name, prop, isRequired, params, onChange, readOnly, hintsId, error) {
  const id = uid('param-' + name.replace(/[^a-z0-9_-]/gi, ''));
  const helpId = id + '-help';
  const errId = id + '-err';
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
  const value = params[name];
  const set = (v) => {
    if (v === undefined || v === '') delete params[name]; else params[name] = v;
    onChange();
  };
  const common = { id, 'data-param': name, disabled: readOnly, 'aria-describedby': `${prop.description ? helpId : ''} ${errId}`.trim(), 'aria-invalid': error ? 'true' : undefined };
  let input;
  if (type === 'boolean') {
    input = h('input', { ...common, type: 'checkbox', checked: value === undefined ? Boolean(prop.default) : Boolean(value), onchange: () => set(input.checked) });
    return h('div', { class: ['field', 'checkbox', error ? 'invalid' : ''] },
      h('label', { for: id }, input, ' ', prop.title || name), help(prop, helpId), err(error, errId));
  }
  if (Array.isArray(prop.enum)) {
    input = h('select', { ...common, onchange: () => set(input.value === '' ? undefined : prop.enum.find((e) => String(e) === input.value)) },
      h('option', { value: '' }, isRequired ? 'Choose…' : '—'),
      prop.enum.map((e) => h('option', { value: String(e), selected: String(value ?? prop.default ?? '') === String(e) }, String(e))));
  } else if (type === 'object' || type === 'array') {
    input = h('textarea', { ...common, class: 'mono', rows: 4, spellcheck: 'false' }, value === undefined ? '' : JSON.stringify(value, null, 2));
    input.addEventListener('input', () => {
      const t = input.value.trim();
      if (!t) { input.setCustomValidity(''); set(undefined); return; }
      try { set(JSON.parse(t)); input.setCustomValidity(''); } catch { input.setCustomValidity('not valid JSON'); }
    });
  } else if (type === 'number' || type === 'integer') {
    // A number may also be a template (a step output), so accept text and
    // convert when it parses as a number.
    input = h('input', { ...common, type: 'text', inputmode: 'decimal', list: hintsId, value: value ?? '', placeholder: prop.default !== undefined ? String(prop.default) : '' });
    input.addEventListener('input', () => {
      const t = input.value.trim();
      set(t === '' ? undefined : (Number.isFinite(Number(t)) ? Number(t) : t));
    });
  } else {
    input = h('input', { ...common, type: prop.format === 'password' || prop.writeOnly ? 'password' : 'text', list: hintsId, value: value ?? '', placeholder: prop.default !== undefined ? String(prop.default) : '', autocomplete: 'off' });
    input.addEventListener('input', () => set(input.value === '' ? undefined : input.value));
  }
  return h('div', { class: ['field', error ? 'invalid' : ''] },
    h('label', { for: id }, prop.title || name, isRequired ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null,
      isRequired ? h('span', { class: 'sr-only' }, ' (required)') : null),
    input, help(prop, helpId), err(error, errId));
}

function help(prop, id) {
  return prop.description ? h('p', { class: 'help', id }, prop.description) : null;
}

function err(msg, id) {
  return h('p', { class: 'field-error', id, hidden: !msg }, msg || '');
}
