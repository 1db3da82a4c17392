// Form builder. A form is described by a list of field specs; the builder
// renders labelled inputs, collects typed values, disables itself while the
// request runs, and shows each API error detail next to the field it names
// (in the server's own words), with the overall message above the buttons.
//
// Field spec: {name, label, type, required, help, placeholder, options,
//   min, max, step, rows, readonly, optional, visible(values)}.
// Types: text, password, number, textarea, checkbox, select, json,
//   keyvalue (object of strings), list (comma separated -> array),
//   custom ({render(value, field) -> {el, get(), focus()}}).

import { h, clear, uid } from './dom.js';
import { ApiError } from './api.js';

export function form({ fields, values = {}, submitLabel = 'Save', onSubmit, onCancel, cancelLabel = 'Cancel', readOnly = false, id, buttons = true }) {
  const controls = new Map(); // name -> {spec, wrap, get, focus, errEl, input}
  const formError = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const el = h('form', { class: 'form', novalidate: true, id });

  for (const spec of fields) {
    const c = field(spec, values[spec.name], readOnly);
    controls.set(spec.name, c);
    el.append(c.wrap);
  }
  el.append(formError);
  if (!readOnly && buttons) {
    el.append(h('div', { class: 'actions' },
      onCancel ? h('button', { type: 'button', onclick: onCancel }, cancelLabel) : null,
      submit));
  }

  // visible() lets a field depend on others (e.g. tag vs pattern by mode).
  const refresh = () => {
    const v = collect(false);
    for (const c of controls.values()) {
      if (c.spec.visible) c.wrap.hidden = !c.spec.visible(v);
    }
  };
  el.addEventListener('input', refresh);
  el.addEventListener('change', refresh);
  refresh();

  function collect(strict) {
    const out = {};
    for (const [name, c] of controls) {
      if (c.spec.visible && c.wrap.hidden) continue;
      const v = c.get(strict);
      if (v === undefined) continue;
      out[name] = v;
    }
    return out;
  }

  function clearErrors() {
    formError.hidden = true;
    clear(formError);
    for (const c of controls.values()) setFieldError(c, '');
  }

  // showError maps an ApiError onto the form. Detail keys name fields
  // ("name"), nested fields ("env.FOO", "params.host") or array items
  // ("nodes[0].id"); each goes to the field that owns it.
  function showError(err) {
    clearErrors();
    const details = (err instanceof ApiError && err.details) || {};
    let first = null;
    const unplaced = [];
    for (const [key, msg] of Object.entries(details)) {
      const c = controls.get(key) || controls.get(key.split(/[.[]/)[0]);
      if (c && !c.wrap.hidden) {
        const prefix = c.spec.name === key ? '' : key.slice(c.spec.name.length).replace(/^\./, '') + ': ';
        setFieldError(c, c.errEl.textContent ? c.errEl.textContent + '; ' + prefix + msg : prefix + msg);
        first = first || c;
      } else {
        unplaced.push(`${key}: ${msg}`);
      }
    }
    append(formError, err.message || String(err));
    for (const u of unplaced) formError.append(h('div', null, u));
    formError.hidden = false;
    if (first) first.focus(); else formError.focus && formError.setAttribute('tabindex', '-1');
  }

  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (readOnly || !onSubmit) return;
    clearErrors();
    let data;
    try {
      data = collect(true);
    } catch (err) {
      // Local parse problems (bad JSON, non-numbers) are shown like API errors.
      showError(err);
      return;
    }
    submit.disabled = true;
    el.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(data);
    } catch (err) {
      if (err.name === 'AbortError') return;
      showError(err);
    } finally {
      submit.disabled = false;
      el.removeAttribute('aria-busy');
    }
  });

  return {
    el,
    values: () => collect(false),
    showError,
    clearErrors,
    control: (name) => controls.get(name),
  };
}

function append(el, text) { el.append(document.createTextNode(text)); }

function setFieldError(c, msg) {
  c.errEl.textContent = msg;
  c.errEl.hidden = !msg;
  const target = c.input;
  if (target) {
    if (msg) target.setAttribute('aria-invalid', 'true');
    else target.removeAttribute('aria-invalid');
  }
  c.wrap.classList.toggle('invalid', Boolean(msg));
}

// fieldError raises a local validation problem on the named field.
function fieldError(name, msg) {
  return new ApiError(400, 'invalid', `${name}: ${msg}`, { [name]: msg });
}

function field(spec, value, readOnly) {
  const id = uid('f-' + spec.name.replace(/[^a-z0-9_-]/gi, ''));
  const helpId = id + '-help';
  const errId = id + '-err';
  const errEl = h('p', { class: 'field-error', id: errId, hidden: true });
  const help = spec.help ? h('p', { class: 'help', id: helpId }, spec.help) : null;
  const describedBy = [spec.help ? helpId : null, errId].filter(Boolean).join(' ');
  const ro = readOnly || spec.readonly;
  const common = { id, name: spec.name, 'aria-describedby': describedBy, required: spec.required && !ro, disabled: ro, placeholder: spec.placeholder };
  let input; let get; let control;

  switch (spec.type || 'text') {
    case 'checkbox': {
      input = h('input', { ...common, type: 'checkbox', checked: Boolean(value ?? spec.default) });
      get = () => input.checked;
      // spec.warning: a caution shown with the box, always visible.
      const warning = spec.warning ? h('p', { class: 'notice field-warning', role: 'note' }, spec.warning) : null;
      const wrap = h('div', { class: 'field checkbox' }, h('label', { for: id }, input, ' ', spec.label), warning, help, errEl);
      return { spec, wrap, get, input, errEl, focus: () => input.focus() };
    }
    case 'select': {
      input = h('select', common);
      setOptions(input, spec.options || [], value ?? spec.default, spec);
      get = () => (input.value === '' && spec.optional ? undefined : coerce(input.value, spec));
      break;
    }
    case 'textarea':
    case 'json': {
      const text = spec.type === 'json'
        ? (value === undefined || value === null ? (spec.default ?? '') : JSON.stringify(value, null, 2))
        : (value ?? spec.default ?? '');
      input = h('textarea', { ...common, rows: spec.rows || (spec.type === 'json' ? 6 : 3), spellcheck: spec.type === 'json' ? 'false' : undefined, class: spec.type === 'json' ? 'mono' : undefined }, text);
      get = (strict) => {
        if (spec.type !== 'json') return input.value;
        const t = input.value.trim();
        if (!t) return spec.optional ? undefined : (spec.emptyValue ?? {});
        try { return JSON.parse(t); } catch (e) {
          if (strict) throw fieldError(spec.name, 'is not valid JSON (' + e.message + ')');
          return undefined;
        }
      };
      break;
    }
    case 'keyvalue': {
      control = keyValueEditor(spec, value || {}, ro, describedBy, id);
      input = control.first();
      get = control.get;
      break;
    }
    case 'list': {
      input = h('input', { ...common, type: 'text', value: Array.isArray(value) ? value.join(', ') : (value ?? '') });
      get = (strict) => {
        const parts = input.value.split(',').map((x) => x.trim()).filter(Boolean);
        if (spec.itemType === 'number') {
          return parts.map((p) => {
            const n = Number(p);
            if (strict && !Number.isFinite(n)) throw fieldError(spec.name, `"${p}" is not a number`);
            return n;
          });
        }
        return parts;
      };
      break;
    }
    case 'duration': {
      control = durationInput(spec, value ?? spec.default, ro, common);
      input = control.input;
      get = control.get;
      break;
    }
    case 'custom': {
      control = spec.render(value, { id, describedBy, readOnly: ro });
      input = control.input || null;
      get = control.get;
      const wrap = h('div', { class: 'field' }, h('label', { for: id, id: id + '-label' }, spec.label), control.el, help, errEl);
      return { spec, wrap, get, input, errEl, focus: () => (control.focus ? control.focus() : input && input.focus()) };
    }
    default: {
      const type = spec.type === 'number' ? 'number' : (spec.type || 'text');
      input = h('input', { ...common, type, value: value ?? spec.default ?? '', min: spec.min, max: spec.max, step: spec.step, autocomplete: spec.autocomplete || (type === 'password' ? 'new-password' : 'off') });
      get = (strict) => {
        if (type !== 'number') return input.value === '' && spec.optional ? undefined : input.value;
        if (input.value === '') return spec.optional ? (spec.emptyValue ?? undefined) : 0;
        const n = Number(input.value);
        if (strict && !Number.isFinite(n)) throw fieldError(spec.name, 'must be a number');
        return n;
      };
    }
  }
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, spec.label, spec.required && !ro ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    control ? control.el : input, help, errEl);
  return { spec, wrap, get, input, errEl, focus: () => input && input.focus() };
}

// durationInput edits a duration as an amount and a unit. The API speaks
// Go duration strings ("168h0m0s", "5m"); the field reads and writes them.
const UNITS = [['seconds', 1], ['minutes', 60], ['hours', 3600], ['days', 86400]];
function durationInput(spec, value, ro, common) {
  const seconds = typeof value === 'string' ? parseGoDuration(value) : value;
  let unit = 3600;
  for (const [, u] of UNITS) if (seconds && seconds % u === 0) unit = u;
  const input = h('input', { ...common, type: 'number', min: 0, step: 'any', class: 'short', value: seconds === null || seconds === undefined || seconds === '' ? '' : seconds / unit });
  const sel = h('select', { 'aria-label': spec.label + ' unit', disabled: ro, class: 'short' },
    UNITS.map(([label, u]) => h('option', { value: u, selected: u === unit }, label)));
  return {
    input,
    el: h('span', { class: 'inline' }, input, sel),
    get: (strict) => {
      if (input.value === '') return spec.optional ? (spec.emptyValue === undefined ? undefined : spec.emptyValue) : '0s';
      const n = Number(input.value);
      if (strict && !(n >= 0)) throw fieldError(spec.name, 'must be a positive duration');
      return `${Math.round(n * Number(sel.value))}s`;
    },
  };
}

// parseGoDuration turns "1h30m0s" into 5400 (seconds); null if unparsable.
export function parseGoDuration(s) {
  if (!s) return null;
  const scale = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let m; let seen = 0;
  while ((m = re.exec(s))) { total += Number(m[1]) * scale[m[2]]; seen += m[0].length; }
  return seen === s.length ? Math.round(total) : null;
}

function coerce(v, spec) {
  if (spec.valueType === 'number') return v === '' ? null : Number(v);
  return v;
}

// setOptions fills a <select>; options are strings or {value,label}.
export function setOptions(select, options, selected, spec = {}) {
  clear(select);
  if (spec.placeholderOption !== undefined || spec.optional) {
    select.append(h('option', { value: '' }, spec.placeholderOption ?? '—'));
  }
  for (const o of options) {
    const opt = typeof o === 'object' ? o : { value: o, label: o };
    select.append(h('option', { value: opt.value, selected: String(opt.value) === String(selected ?? '') }, opt.label ?? opt.value));
  }
}

// keyValueEditor edits a flat string map (environment variables).
function keyValueEditor(spec, value, ro, describedBy, firstId) {
  const rows = h('div', { class: 'kv-rows' });
  const el = h('div', { class: 'kv', role: 'group', 'aria-describedby': describedBy });
  let firstInput = null;
  const addRow = (k = '', v = '') => {
    const n = rows.children.length;
    const key = h('input', { type: 'text', class: 'mono kv-key', 'aria-label': `${spec.label} name ${n + 1}`, value: k, disabled: ro, id: n === 0 ? firstId : undefined, placeholder: spec.keyPlaceholder || 'NAME' });
    const val = h('input', { type: 'text', class: 'mono kv-value', 'aria-label': `${spec.label} value ${n + 1}`, value: v, disabled: ro, placeholder: spec.valuePlaceholder || 'value', list: spec.datalist || undefined });
    const row = h('div', { class: 'kv-row' }, key, val,
      ro ? null : h('button', { type: 'button', class: 'icon', 'aria-label': `Remove ${spec.label} ${n + 1}`, onclick: () => { row.remove(); el.dispatchEvent(new Event('input', { bubbles: true })); } }, '×'));
    rows.append(row);
    if (!firstInput) firstInput = key;
    return key;
  };
  for (const [k, v] of Object.entries(value)) addRow(k, typeof v === 'string' ? v : JSON.stringify(v));
  if (!ro && Object.keys(value).length === 0) addRow();
  el.append(rows);
  if (!ro) el.append(h('button', { type: 'button', class: 'small', 'data-kv-add': '', onclick: () => addRow().focus() }, spec.addLabel || '+ Add variable'));
  return {
    el,
    first: () => firstInput,
    get: () => {
      const out = {};
      for (const row of rows.children) {
        const [k, v] = row.querySelectorAll('input');
        if (k.value.trim()) out[k.value.trim()] = v.value;
      }
      return out;
    },
  };
}
