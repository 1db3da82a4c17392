// Entry point: loads the session, draws the navigation, and registers the
// pages with the router.

import { h, clear } from './dom.js';
import * as api from './api.js';
import * as session from './session.js';
import { route, setGuard, setNotFound, navigate, start } from './router.js';
import { page, empty } from './ui.js';

// Pages load when the user first opens them (the deployments list does not
// download the pipeline editor). A page whose module cannot be fetched says
// so instead of leaving the previous page on screen.
const lazy = (load, name) => async (params, q) => {
  let mod;
  try {
    mod = await load();
  } catch (err) {
    const body = page('Could not load this page');
    body.append(empty('The page\'s script did not download (' + err.message + '). Check the connection and reload.'));
    return undefined;
  }
  return mod[name](params, q);
};
const loginPage = lazy(() => import('./pages/login.js'), 'loginPage');
const deploymentsPage = lazy(() => import('./pages/deployments.js'), 'deploymentsPage');
const newDeploymentPage = lazy(() => import('./pages/deployment-new.js'), 'newDeploymentPage');
const deploymentPage = lazy(() => import('./pages/deployment.js'), 'deploymentPage');
const accountPage = lazy(() => import('./pages/account.js'), 'accountPage');
const registriesPage = lazy(() => import('./pages/admin/registries.js'), 'registriesPage');
const servicesPage = lazy(() => import('./pages/admin/services.js'), 'servicesPage');
const pluginsPage = lazy(() => import('./pages/admin/plugins.js'), 'pluginsPage');
const secretsPage = lazy(() => import('./pages/admin/secrets.js'), 'secretsPage');
const environmentsPage = lazy(() => import('./pages/admin/environments.js'), 'environmentsPage');
const environmentPage = lazy(() => import('./pages/admin/environments.js'), 'environmentPage');
const fleetPage = lazy(() => import('./pages/admin/fleet.js'), 'fleetPage');
const projectsPage = lazy(() => import('./pages/admin/projects.js'), 'projectsPage');
const projectPage = lazy(() => import('./pages/admin/projects.js'), 'projectPage');
const pipelinePage = lazy(() => import('./pages/admin/pipeline.js'), 'pipelinePage');
const teamsPage = lazy(() => import('./pages/admin/teams.js'), 'teamsPage');
const teamPage = lazy(() => import('./pages/admin/teams.js'), 'teamPage');
const usersPage = lazy(() => import('./pages/admin/users.js'), 'usersPage');
const auditPage = lazy(() => import('./pages/admin/audit.js'), 'auditPage');

// Everyone sees the audit log, filtered by the API to what they may see;
// admins keep it under Admin as well.
const userLinks = [['/deployments', 'Deployments'], ['/audit', 'Audit log']];
const adminLinks = [
  ['/admin/projects', 'Projects'],
  ['/admin/environments', 'Environments'],
  ['/admin/nodes', 'Nodes'],
  ['/admin/registries', 'Registries'],
  ['/admin/services', 'Services'],
  ['/admin/plugins', 'Plugins'],
  ['/admin/secrets', 'Secrets'],
  ['/admin/teams', 'Teams'],
  ['/admin/users', 'Users'],
];

function drawChrome() {
  const user = session.current();
  const bar = document.getElementById('topbar');
  bar.hidden = !user;
  if (!user) return;
  const nav = document.getElementById('nav');
  const links = session.isAdmin() ? [...userLinks, ...adminLinks] : userLinks;
  clear(nav, h('ul', null, links.map(([href, label]) => h('li', null, h('a', { href, class: 'nav-link' }, label)))));
  clear(document.getElementById('user-menu'),
    h('a', { href: '/account', class: 'nav-link', title: 'Account and API tokens' }, user.display_name || user.username,
      session.isAdmin() ? h('span', { class: 'role' }, 'admin') : null),
    h('button', { type: 'button', id: 'logout', class: 'small', onclick: async () => {
      await session.logout();
      drawChrome();
      navigate('/login', { replace: true });
    } }, 'Log out'));
  markActive();
}

// markActive highlights the nav entry of the current page (aria-current).
function markActive() {
  for (const a of document.querySelectorAll('#nav a, #user-menu a')) {
    const href = a.getAttribute('href');
    const on = location.pathname === href || location.pathname.startsWith(href + '/');
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

function adminOnly(render) {
  return (params, q) => {
    if (!session.isAdmin()) {
      const body = page('Not allowed');
      body.append(empty('This page needs the admin role.'));
      return undefined;
    }
    return render(params, q);
  };
}

function boot() {
  const toggle = document.getElementById('menu-toggle');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    document.getElementById('topbar').classList.toggle('open', open);
  });

  api.setUnauthenticatedHandler(() => {
    session.accept(null);
    drawChrome();
    if (location.pathname !== '/login') {
      navigate('/login?next=' + encodeURIComponent(location.pathname + location.search), { replace: true });
    }
  });

  setGuard((path) => {
    document.getElementById('topbar').classList.remove('open');
    toggle.setAttribute('aria-expanded', 'false');
    if (!session.current() && path !== '/login') {
      navigate('/login?next=' + encodeURIComponent(path + location.search), { replace: true });
      return false;
    }
    if (path === '/' || (path === '/login' && session.current())) {
      navigate('/deployments', { replace: true });
      return false;
    }
    markActive();
    return true;
  });

  route('/login', (_, q) => loginPage(q, () => { drawChrome(); navigate(safeNext(q.get('next')), { replace: true }); }));
  route('/deployments', deploymentsPage);
  route('/deployments/new', newDeploymentPage);
  route('/deployments/:id', deploymentPage);
  route('/account', accountPage);
  route('/admin/registries', adminOnly(registriesPage));
  route('/admin/services', adminOnly(servicesPage));
  route('/admin/plugins', adminOnly(pluginsPage));
  route('/admin/secrets', adminOnly(secretsPage));
  route('/admin/environments', adminOnly(environmentsPage));
  route('/admin/environments/:id', adminOnly(environmentPage));
  route('/admin/nodes', adminOnly(fleetPage));
  route('/admin/projects', adminOnly(projectsPage));
  route('/admin/projects/:id', adminOnly(projectPage));
  route('/admin/projects/:id/pipeline', adminOnly(pipelinePage));
  route('/admin/teams', adminOnly(teamsPage));
  route('/admin/teams/:id', adminOnly(teamPage));
  route('/admin/users', adminOnly(usersPage));
  route('/audit', auditPage);
  route('/admin/audit', adminOnly(auditPage));
  setNotFound((path) => {
    const body = page('Page not found');
    body.append(empty(`There is no page at ${path}.`, h('a', { href: '/deployments' }, 'Go to deployments')));
  });

  session.load().then(() => { drawChrome(); start(); }, (err) => {
    clear(document.getElementById('main'), h('div', { class: 'error-box', role: 'alert' }, 'Cannot reach the server: ' + err.message));
  });
}

// safeNext only follows same-site paths after login (no open redirect).
function safeNext(next) {
  if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login')) return next;
  return '/deployments';
}

boot();
