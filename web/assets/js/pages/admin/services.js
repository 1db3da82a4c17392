// Admin: catalog services with pinned or selectable tags. For selectable
// services the form previews, live, which registry tags match the pattern.

import { h, clear } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage } from '../../crud.js';

export function servicesPage() {
  return crudPage({
    title: 'Services',
    singular: 'service',
    path: '/services',
    intro: 'Images a pipeline can run. Pinned services always use one tag; selectable ones let users pick a tag matching a pattern.',
    context: async () => ({ registries: await api.listAll('/registries') }),
    columns: [
      { label: 'Name', render: (s) => h('strong', null, s.name) },
      { label: 'Image', render: (s) => h('code', null, s.image) },
      { label: 'Tags', render: (s) => s.tag_mode === 'pinned'
        ? h('span', null, h('span', { class: 'tag' }, '🔒 pinned'), ' ', h('code', null, s.tag))
        : h('span', null, h('span', { class: 'tag' }, 'selectable'), ' ', h('code', null, s.tag_pattern || '*')) },
    ],
    fields: (item, ctx) => [
      { name: 'name', label: 'Name', required: true },
      { name: 'registry_id', label: 'Registry', type: 'select', valueType: 'number', required: true,
        options: ctx.registries.map((r) => ({ value: r.id, label: r.name })), default: (ctx.registries.find((r) => r.is_default) || {}).id },
      { name: 'image', label: 'Image', required: true, placeholder: 'mycompany/backend-api' },
      { name: 'tag_mode', label: 'Tag mode', type: 'select', options: [{ value: 'pinned', label: 'Pinned (one fixed tag)' }, { value: 'selectable', label: 'Selectable (users choose)' }], default: 'selectable' },
      { name: 'tag', label: 'Tag', visible: (v) => v.tag_mode === 'pinned', placeholder: '16.2' },
      { name: 'tag_pattern', label: 'Tag pattern', visible: (v) => v.tag_mode === 'selectable', placeholder: 'features-* or v1.2.*',
        help: 'Glob: * matches any characters. Docker tags cannot contain "/", so write features-* rather than features/*.' },
      { name: 'preview', label: 'Matching tags', type: 'custom', visible: (v) => v.tag_mode === 'selectable', render: tagPreview },
      { name: 'ports', label: 'Container ports', type: 'list', itemType: 'number', placeholder: '8080', help: 'Comma separated.' },
      { name: 'env', label: 'Default environment', type: 'keyvalue' },
      { name: 'health', label: 'Health check (JSON)', type: 'json', placeholder: '{"http": "/healthz"}', optional: true, help: 'Optional: {"http": "/healthz"} or {"command": ["pg_isready"]}.' },
      { name: 'description', label: 'Description', type: 'textarea', rows: 2 },
    ],
    // The preview is UI only; never sent.
    toBody: (v) => { const { preview, ...rest } = v; return rest; },
  });
}

// tagPreview asks the registry for tags of the image in the form matching
// the pattern being typed, debounced.
function tagPreview(_value, { id }) {
  const out = h('div', { class: 'tag-preview', id, 'aria-live': 'polite', tabindex: '-1' }, h('span', { class: 'muted' }, 'Type an image and a pattern to see matching tags.'));
  let timer = null;
  let seq = 0;
  const update = () => {
    const formEl = out.closest('form');
    if (!formEl) return;
    const regId = formEl.elements.registry_id && formEl.elements.registry_id.value;
    const image = formEl.elements.image && formEl.elements.image.value.trim();
    const pattern = formEl.elements.tag_pattern && formEl.elements.tag_pattern.value.trim();
    if (!regId || !image) return;
    const my = ++seq;
    clear(out, h('span', { class: 'muted' }, 'Listing tags…'));
    api.get(`/registries/${regId}/tags` + api.query({ image, pattern }))
      .then((data) => {
        if (my !== seq) return;
        const tags = Array.isArray(data) ? data : (data.tags || api.items(data));
        if (tags.length === 0) { clear(out, h('span', { class: 'muted' }, 'No tag matches.')); return; }
        clear(out, h('span', { class: 'muted' }, `${tags.length} matching: `),
          tags.slice(0, 30).map((t) => h('code', { class: 'tag' }, typeof t === 'string' ? t : t.name)),
          tags.length > 30 ? h('span', { class: 'muted' }, ' …') : null);
      })
      .catch((err) => { if (my === seq) clear(out, h('span', { class: 'field-error' }, err.message)); });
  };
  // Listen on the whole form once it is attached.
  queueMicrotask(() => {
    const formEl = out.closest('form');
    if (!formEl) return;
    formEl.addEventListener('input', (ev) => {
      if (!['registry_id', 'image', 'tag_pattern', 'tag_mode'].includes(ev.target.name)) return;
      clearTimeout(timer);
      timer = setTimeout(update, 350);
    });
    update();
  });
  return { el: out, get: () => undefined, focus: () => out.focus() };
}
