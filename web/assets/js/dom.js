// Small DOM helpers. Every piece of text reaches the page through
// textContent or attribute setters, never HTML parsing, so data from the API can
// never inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('button', {class: 'primary', onclick: fn}, 'Save') builds an element.
// Attributes starting with "on" become event listeners; boolean true sets an
// empty attribute, false/null/undefined omit it. Children may be strings,
// nodes, arrays or null.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s() is h() for SVG elements.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class' && Array.isArray(v)) {
      el.setAttribute('class', v.filter(Boolean).join(' '));
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' && 'value' in el && !(el instanceof SVGElement)) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// clear removes every child and optionally appends new ones.
export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let idSeq = 0;
// uid returns a document-unique id for label/aria wiring.
export function uid(prefix = 'id') {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}
