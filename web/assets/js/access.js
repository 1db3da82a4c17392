// What the signed-in user may do with deployments of a project in an
// environment. The server enforces access on every request; the UI only
// hides buttons the API would refuse. It mirrors the server's rule
// (docs/architecture.md, "Security model"): the level is the highest grant held by any of the
// user's teams on the project or on the environment. Admins have full
// access everywhere.

import * as api from './api.js';
import * as session from './session.js';

const RANK = { none: 0, read: 1, full: 2 };
const grantsCache = new Map(); // "/projects/3/access" -> Promise<[grant]>

function grants(path) {
  if (!grantsCache.has(path)) {
    grantsCache.set(path, api.listAll(path).catch(() => []));
    // Grants change rarely; forget them after a minute.
    setTimeout(() => grantsCache.delete(path), 60000);
  }
  return grantsCache.get(path);
}

// levelFor resolves to 'full', 'read' or 'none'.
export async function levelFor(projectId, environmentId) {
  if (session.isAdmin()) return 'full';
  const teams = new Set(session.teams().map((t) => t.id));
  if (teams.size === 0) return 'none';
  let best = 'none';
  const lists = await Promise.all([
    projectId ? grants(`/projects/${projectId}/access`) : [],
    environmentId ? grants(`/environments/${environmentId}/access`) : [],
  ]);
  for (const g of lists.flat()) {
    if (teams.has(g.team_id) && RANK[g.level] > RANK[best]) best = g.level;
  }
  return best;
}

// annotate sets d.access on each deployment (in place) and resolves when
// done.
export async function annotate(deployments) {
  await Promise.all(deployments.map(async (d) => { d.access = await levelFor(d.project_id, d.environment_id); }));
  return deployments;
}

export function forget() { grantsCache.clear(); }
