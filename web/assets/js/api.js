// API client for /api/v1: JSON in and out, the session cookie, the CSRF
// header on state-changing requests, and errors as ApiError objects carrying
// the server's own code, message and per-field details.

const BASE = '/api/v1';
const CSRF_HEADER = 'X-CSRF-Token';

let csrfToken = '';
let onUnauthenticated = () => {};

export function setCSRF(token) { csrfToken = token || ''; }
export function getCSRF() { return csrfToken; }

// setUnauthenticatedHandler registers what happens when a request answers
// 401 (the session expired): the app sends the user back to the login page.
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

// request performs one API call and returns the decoded JSON (or null for
// an empty body). Paths are relative to /api/v1.
export async function request(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers[CSRF_HEADER] = csrfToken;
  let res;
  // Reads are retried twice when the network drops the request (the browser
  // aborts requests in flight when the machine's network changes); writes
  // are not, as they may have reached the server.
  const attempts = method === 'GET' || method === 'HEAD' ? 3 : 1;
  for (let i = 1; ; i++) {
    try {
      res = await fetch(BASE + path, init);
      break;
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      if (i >= attempts) throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
      await new Promise((r) => setTimeout(r, 250 * i));
    }
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const e = data && data.error;
    const err = e
      ? new ApiError(res.status, e.code, e.message, e.details)
      : new ApiError(res.status, 'http_' + res.status, `${res.status} ${res.statusText}`);
    if (res.status === 401 && !opts.noAuthRedirect) onUnauthenticated(err);
    throw err;
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body === undefined ? {} : body, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);
export const patch = (path, body, opts) => request('PATCH', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

// query builds "?a=1&b=2" from an object, skipping empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// items accepts a paged list ({items,total,page,per_page}) or a bare array.
export function items(data) {
  if (Array.isArray(data)) return data;
  return (data && Array.isArray(data.items)) ? data.items : [];
}

// listAll follows the pages of a list endpoint (for select boxes and
// palettes that need every entry). It stops after `max` items.
export async function listAll(path, params = {}, max = 1000) {
  const out = [];
  const perPage = 100;
  for (let page = 1; out.length < max; page++) {
    const data = await get(path + query({ ...params, page, per_page: perPage }));
    const batch = items(data);
    out.push(...batch);
    const total = data && typeof data.total === 'number' ? data.total : out.length;
    // A capped total (total_capped) is a lower bound: keep paging.
    if (batch.length === 0 || (out.length >= total && !(data && data.total_capped)) || Array.isArray(data)) break;
  }
  return out;
}

// newest tells whether an answer is still wanted: each call of the function
// it returns starts a request and gives a check that is true only while no
// later request was started. A list reloaded with new filters while its
// first load is in flight must not draw the older answer over the newer one.
//   const started = newest();
//   async function reload() { const current = started(); const data = await get(...); if (!current()) return; ... }
export function newest() {
  let seq = 0;
  return () => {
    const mine = ++seq;
    return () => mine === seq;
  };
}
