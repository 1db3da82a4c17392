// Admin: plugins (pipeline components): image, parameter JSON schema,
// resource limits, timeout and Docker socket access (root on the nodes).

import { h } from '../../dom.js';
import * as api from '../../api.js';
import { crudPage } from '../../crud.js';
import { formatDuration } from '../../ui.js';
import { parseGoDuration } from '../../forms.js';

export function pluginsPage() {
  return crudPage({
    title: 'Plugins',
    singular: 'plugin',
    path: '/plugins',
    intro: 'Containers that implement pipeline components: JSON on stdin, JSON on stdout.',
    context: async () => ({ registries: await api.listAll('/registries') }),
    columns: [
      { label: 'Name', render: (p) => h('strong', null, p.name) },
      { label: 'Image', render: (p) => h('code', null, `${p.image}:${p.tag}`) },
      { label: 'Limits', render: (p) => `${p.cpu} CPU · ${p.memory_mb} MiB` },
      { label: 'Timeout', render: (p) => formatDuration(parseGoDuration(p.timeout) || 0) },
      { label: 'Docker socket', render: (p) => (p.docker_socket
        ? h('strong', { class: 'warn', title: 'This plugin gets the Docker socket on nodes that allow it: root on the node.' }, '⚠ yes (root on the node)')
        : h('span', { class: 'muted' }, 'no')) },
      { label: 'Parameters', render: (p) => Object.keys((p.params_schema && p.params_schema.properties) || {}).join(', ') || h('span', { class: 'muted' }, 'none') },
    ],
    fields: (item, ctx) => [
      { name: 'name', label: 'Name', required: true },
      { name: 'registry_id', label: 'Registry', type: 'select', valueType: 'number', required: true,
        options: ctx.registries.map((r) => ({ value: r.id, label: r.name })), default: (ctx.registries.find((r) => r.is_default) || {}).id },
      { name: 'image', label: 'Image', required: true },
      { name: 'tag', label: 'Tag', required: true },
      { name: 'description', label: 'Description', type: 'textarea', rows: 2 },
      { name: 'params_schema', label: 'Parameters (JSON Schema)', type: 'json', rows: 8, emptyValue: {},
        default: '{\n  "type": "object",\n  "properties": {},\n  "required": []\n}',
        help: 'The pipeline editor builds the parameter form of this component from the schema.' },
      { name: 'cpu', label: 'CPU limit (cores)', type: 'number', step: '0.05', min: 0, default: 0.5 },
      { name: 'memory_mb', label: 'Memory limit (MiB)', type: 'number', step: 1, min: 0, default: 128 },
      { name: 'timeout', label: 'Timeout', type: 'duration', default: 300 },
      { name: 'join_network', label: 'Attach to the deployment network', type: 'checkbox', default: true },
      { name: 'docker_socket', label: 'Give it the Docker socket', type: 'checkbox', default: false,
        warning: 'Warning: the Docker socket is root on every node that runs this plugin. Its container can start '
          + 'privileged containers, read the host\'s files and every deployment\'s secrets. Enable it only for an image '
          + 'you trust (e.g. the first-party exec plugin). Nodes must also allow it (agent option --docker.pluginsocket). '
          + 'The change is recorded in the audit log.' },
    ],
  });
}
