// The signed-in user and their CSRF token, loaded from GET /me.

import * as api from './api.js';

let user = null;
let userTeams = [];

export function current() { return user; }
export function isAdmin() { return Boolean(user && user.role === 'admin'); }
// teams are the signed-in user's teams (from /me), used to show which
// actions their grants allow.
export function teams() { return userTeams; }

// accept stores a /me or login response: {user, csrf_token, teams}.
export function accept(data) {
  user = data && data.user && data.user.username ? data.user : null;
  userTeams = user && Array.isArray(data.teams) ? data.teams : [];
  api.setCSRF((user && data.csrf_token) || '');
  return user;
}

// load asks the server who is signed in; resolves to null when nobody is.
export async function load() {
  try {
    return accept(await api.get('/me', { noAuthRedirect: true }));
  } catch (err) {
    if (err.status === 401) { accept(null); return null; }
    throw err;
  }
}

export async function login(username, password) {
  const data = await api.post('/auth/login', { username, password }, { noAuthRedirect: true });
  accept(data);
  // Some servers answer login with the session only; /me has the rest.
  if (!user || !api.getCSRF()) await load();
  return user;
}

export async function logout() {
  try { await api.post('/auth/logout', {}, { noAuthRedirect: true }); } finally { accept(null); }
}
