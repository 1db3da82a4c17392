// boot.js loads the app's module graph (a classic script, so it can watch
// the load). When any module fails to download — a dropped connection, the
// client's network changing mid-load — the whole graph fails and the page
// would stay at "Loading…" for good. Instead it reloads, up to three times,
// and then says what happened.
(() => {
  const KEY = 'nullops.boot.retries';
  const script = document.createElement('script');
  script.type = 'module';
  // The server names main.js by its content hash (data-main); the import
  // map in index.html does the same for every module it imports.
  script.src = document.currentScript.dataset.main;
  script.addEventListener('load', () => sessionStorage.removeItem(KEY));
  script.addEventListener('error', () => {
    const n = Number(sessionStorage.getItem(KEY) || 0);
    if (n < 3) {
      sessionStorage.setItem(KEY, String(n + 1));
      setTimeout(() => location.reload(), 300 * (n + 1));
      return;
    }
    sessionStorage.removeItem(KEY);
    const box = document.createElement('p');
    box.className = 'error-box';
    box.setAttribute('role', 'alert');
    box.textContent = 'NullOps could not load its scripts from the server. Check the connection and reload the page.';
    document.getElementById('main').replaceChildren(box);
  });
  document.head.append(script);
})();
