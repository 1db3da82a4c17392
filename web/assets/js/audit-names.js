// Readable names of audit actions and links to their targets, for the
// audit log page.

// What each action means, as a sentence start ("Created deployment").
const ACTIONS = {
  'auth.login': 'Signed in',
  'auth.login_failed': 'Failed sign-in',
  'auth.logout': 'Signed out',
  'user.create': 'Created user',
  'user.update': 'Changed user',
  'user.delete': 'Deleted user',
  'user.password_change': 'Changed own password',
  'user.password_reset': 'Reset password of user',
  'team.create': 'Created team',
  'team.update': 'Changed team',
  'team.delete': 'Deleted team',
  'team.member_add': 'Added member to team',
  'team.member_remove': 'Removed member from team',
  'access.put': 'Granted access',
  'access.delete': 'Removed access',
  'token.create': 'Created API token',
  'token.revoke': 'Revoked API token',
  'registry.create': 'Added registry',
  'registry.update': 'Changed registry',
  'registry.delete': 'Deleted registry',
  'service.create': 'Added service',
  'service.update': 'Changed service',
  'service.delete': 'Deleted service',
  'service.state': 'Service state changed',
  'plugin.create': 'Added plugin',
  'plugin.update': 'Changed plugin',
  'plugin.delete': 'Deleted plugin',
  'plugin.docker_socket': 'Gave plugin the Docker socket',
  'secret.create': 'Created secret',
  'secret.update': 'Changed secret',
  'secret.delete': 'Deleted secret',
  'environment.create': 'Created environment',
  'environment.update': 'Changed environment',
  'environment.delete': 'Deleted environment',
  'project.create': 'Created project',
  'project.update': 'Changed project',
  'project.delete': 'Deleted project',
  'pipeline.save': 'Saved pipeline',
  'node.create': 'Added node',
  'node.update': 'Changed node',
  'node.delete': 'Deleted node',
  'node.enable': 'Enabled node',
  'node.disable': 'Disabled node',
  'node.revoke': 'Revoked node',
  'node.rotate_token': 'Rotated agent token of node',
  'node.approve_thumbprint': 'Approved new certificate of node',
  'node.token_rotation_completed': 'Agent took the new token',
  'node.token_revocation_completed': 'Agent dropped the revoked token',
  'node.agent_token_rotated': 'Agent reported a token rotation',
  'node.agent_token_revoked': 'Agent reported a token revocation',
  'node.connection_refused': 'Agent refused a connection',
  'node.connection_refused_by_agent': 'Agent refused the control plane',
  'node.events_acked_elsewhere': 'Agent events taken by another connection',
  'node.connection_replaced': 'Agent replaced a connection',
  'node.connection_unauthorized': 'Agent refused a wrong token',
  'deployment.create': 'Created deployment',
  'deployment.clone': 'Cloned deployment',
  'deployment.retry': 'Retried deployment',
  'deployment.extend': 'Extended deployment',
  'deployment.delete': 'Deleted deployment',
  'deployment.cancel': 'Cancelled deployment',
  'deployment.expire': 'Deployment expired',
  'deployment.status': 'Deployment status changed',
  'deployment.ttl': 'Changed time to live of deployment',
};

// actionName returns the readable name of an action; unknown ones are
// spelled out from their parts ("widget.mass_update" → "Widget: mass update").
export function actionName(action) {
  if (ACTIONS[action]) return ACTIONS[action];
  const [area, verb = ''] = String(action).split('.', 2);
  const words = verb.replace(/_/g, ' ');
  return area.charAt(0).toUpperCase() + area.slice(1) + (words ? ': ' + words : '');
}

// knownActions lists [action, name] pairs for a filter's suggestions.
export function knownActions() { return Object.entries(ACTIONS); }

// Pages a target links to: deployments for everyone, the rest for admins.
const TARGET_PAGES = {
  deployment: (id) => `/deployments/${id}`,
  project: (id) => `/admin/projects/${id}`,
  environment: (id) => `/admin/environments/${id}`,
  team: (id) => `/admin/teams/${id}`,
  user: () => '/admin/users',
  registry: () => '/admin/registries',
  service: () => '/admin/services',
  plugin: () => '/admin/plugins',
  secret: () => '/admin/secrets',
  node: () => '/admin/nodes',
};

// targetLink returns the URL of an entry's target page, or '' when there is
// none the viewer can open.
export function targetLink(entry, isAdmin) {
  const page = TARGET_PAGES[entry.target_type];
  if (!page || !entry.target_id) return '';
  if (entry.target_type !== 'deployment' && !isAdmin) return '';
  return page(encodeURIComponent(entry.target_id));
}

// targetLabel names an entry's target: its type and, when the detail has
// one, its name ("deployment pr-42"), else its id ("team #3").
export function targetLabel(entry) {
  const d = entry.detail && typeof entry.detail === 'object' ? entry.detail : {};
  const name = d.name || d.username || '';
  if (!entry.target_type) return '';
  if (name) return `${entry.target_type} ${name}`;
  return entry.target_id ? `${entry.target_type} #${entry.target_id}` : entry.target_type;
}

// detailRows flattens an entry's detail into [key, value] rows: nested
// objects become "a.b" keys, lists are joined, empty values are left out.
export function detailRows(detail, prefix = '') {
  if (!detail || typeof detail !== 'object') return detail == null || detail === '' ? [] : [[prefix || 'value', String(detail)]];
  const rows = [];
  for (const [k, v] of Object.entries(detail)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) {
      if (v.length) rows.push([key, v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')]);
    } else if (typeof v === 'object') {
      const inner = detailRows(v, key);
      if (inner.length) rows.push(...inner);
    } else {
      rows.push([key, String(v)]);
    }
  }
  return rows;
}
