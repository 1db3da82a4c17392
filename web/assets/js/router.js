// History-API router. Routes are patterns like "/deployments/:id"; the
// server answers index.html for every such path, so deep links and reloads
// work. Clicks on same-origin <a href> elements are intercepted.

const routes = [];
let notFound = null;
let current = null; // {cleanup} of the page on screen
let beforeRender = () => true;
let leaveGuard = null; // page's "may the user leave?" (unsaved work)
let shown = ''; // path and query of the page on screen

// route registers a page. render(params, query) may return a cleanup
// function, called when the user navigates away (to close live streams and
// timers).
export function route(pattern, render) {
  const keys = [];
  const re = new RegExp('^' + pattern.replace(/\/:([a-z_]+)/gi, (_, k) => {
    keys.push(k);
    return '/([^/]+)';
  }) + '/?$');
  routes.push({ re, keys, render });
}

export function setNotFound(render) { notFound = render; }

// setGuard installs a function called before each render with the path; it
// returns false to stop (after redirecting elsewhere itself).
export function setGuard(fn) { beforeRender = fn; }

// guardLeave lets the page on screen hold the user back when they follow an
// in-app link or go back/forward: fn resolves to true when leaving is fine
// (e.g. after asking about unsaved work). The guard ends with the page.
export function guardLeave(fn) { leaveGuard = fn; }

async function mayLeave() {
  if (!leaveGuard) return true;
  try { return Boolean(await leaveGuard()); } catch { return true; }
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

// leave runs the cleanup of the page on screen (closing its live streams).
export function leave() {
  if (current && typeof current.cleanup === 'function') {
    try { current.cleanup(); } catch (err) { console.warn('page cleanup failed', err); }
  }
  current = null;
  leaveGuard = null;
}

export async function render() {
  const path = location.pathname;
  leave();
  shown = location.pathname + location.search;
  if (!beforeRender(path)) return;
  const q = new URLSearchParams(location.search);
  for (const r of routes) {
    const m = r.re.exec(path);
    if (!m) continue;
    const params = {};
    r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
    const token = {};
    current = token;
    const cleanup = await r.render(params, q);
    // If the user navigated away while the page was loading, clean up now.
    if (current !== token) { if (typeof cleanup === 'function') cleanup(); return; }
    token.cleanup = cleanup;
    return;
  }
  if (notFound) notFound(path);
}

// isCurrent reports whether a page render started by the router is still on
// screen; async page code checks it before touching the DOM after an await.
export function currentToken() { return current; }

export function start() {
  window.addEventListener('popstate', async () => {
    // Back/forward has already changed the URL: put it back if the page
    // holds the user.
    const target = location.pathname + location.search;
    if (leaveGuard && target !== shown) {
      const from = shown;
      history.pushState(null, '', from);
      if (!(await mayLeave())) return;
      history.replaceState(null, '', target);
    }
    render();
  });
  // Close live streams when the document goes away (or into the back/forward
  // cache): browsers allow only six connections per server, and a
  // lingering event stream would hold one. A page restored from that cache
  // renders again.
  window.addEventListener('pagehide', leave);
  window.addEventListener('pageshow', (ev) => { if (ev.persisted) render(); });
  document.addEventListener('click', (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = ev.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    ev.preventDefault();
    mayLeave().then((ok) => { if (ok) navigate(url.pathname + url.search); });
  });
  render();
}
