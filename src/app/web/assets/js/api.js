// The daemon's JSON API: fetch with the session's CSRF token on every change, JSON
// bodies, and failures reported to the error banner (never thrown, never silent).

const session = { auth: 'none', csrf: null, prefix: 'ocellus', tile_fps: 2 };
let report = () => {};

/** The session from GET /api/session (auth, csrf, prefix, tile_fps). */
export function getSession() {
  return session;
}

/** Where failed calls are shown (the banner). */
export function onFailure(fn) {
  report = fn;
}

/** Sends the browser to the login form, coming back here afterwards. */
export function toLogin() {
  const next = location.pathname + location.search + location.hash;
  location.assign('/login?next=' + encodeURIComponent(next));
}

/**
 * One API call. Resolves (never rejects) to {ok, status, data}: data is the parsed
 * JSON body (or text). A status in `expect` is the caller's to show; any other
 * failure goes to the banner.
 */
export async function request(method, path, body, { expect = [] } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['Content-Type'] = 'application/json';
    if (session.csrf) headers['X-CSRF-Token'] = session.csrf;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    const error = `${method} ${path}: the daemon did not answer (${e && e.message ? e.message : 'network error'})`;
    if (!expect.includes(0)) report(error);
    return { ok: false, status: 0, data: { error } };
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  try {
    data = type.includes('json') ? await res.json() : await res.text();
  } catch {
    data = null;
  }
  if (res.status === 401 && path !== '/api/session') {
    toLogin();
    return { ok: false, status: 401, data };
  }
  if (!res.ok && !expect.includes(res.status)) {
    const why = data && typeof data === 'object' && data.error ? data.error : res.statusText;
    report(`${method} ${path}: ${res.status} ${why}`);
  }
  return { ok: res.ok, status: res.status, data };
}

/** GET: the JSON, or null when it failed (already reported unless expected). */
export async function get(path, opts) {
  const r = await request('GET', path, undefined, opts);
  return r.ok ? r.data : null;
}

export const post = (path, body, opts) => request('POST', path, body, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** The one-line reason of a refused call. */
export function reason(r) {
  if (r.data && typeof r.data === 'object' && r.data.error) return String(r.data.error);
  if (typeof r.data === 'string' && r.data.trim()) return r.data.trim().split('\n')[0];
  return r.status ? `refused (${r.status})` : 'the daemon did not answer';
}

/** Loads the session; false when the browser must log in first. */
export async function loadSession() {
  const r = await request('GET', '/api/session', undefined, { expect: [401] });
  if (r.status === 401) {
    toLogin();
    return false;
  }
  if (r.ok && r.data && typeof r.data === 'object') Object.assign(session, r.data);
  return r.ok;
}
