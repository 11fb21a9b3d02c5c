// The app shell: loads the session, starts the live stream, routes the hash
// (#/, #/camera/<cam>, #/teach/<cam>/<q>, #/events, #/ask, #/system) to a page, and
// shows failures in the error banner.

import { loadSession, getSession, onFailure, request } from './api.js';
import { h, fill } from './dom.js';
import * as live from './live.js';
import * as cameras from './pages/cameras.js';
import * as camera from './pages/camera.js';
import * as teach from './pages/teach.js';
import * as events from './pages/events.js';
import * as ask from './pages/ask.js';
import * as system from './pages/system.js';

const view = document.getElementById('view');
const banner = document.getElementById('banner');

/** Shows a failure in the banner (the same text once, with a count). */
function showError(text) {
  const msg = String(text);
  for (const el of banner.children) {
    if (el.dataset.text === msg) {
      const n = Number(el.dataset.count || 1) + 1;
      el.dataset.count = n;
      el.querySelector('.count').textContent = ` (×${n})`;
      return;
    }
  }
  const item = h(
    'div',
    { class: 'banner-item', 'data-text': msg },
    h('span', { class: 'text' }, msg),
    h('span', { class: 'count' }),
    h('button', { type: 'button', class: 'quiet dismiss', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'),
  );
  banner.append(item);
  while (banner.children.length > 4) banner.firstElementChild.remove();
  setTimeout(() => item.remove(), 30000);
}

onFailure(showError);
live.on('failure', showError);
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  const r = e.reason;
  showError(`unexpected failure: ${r && r.message ? r.message : r}`);
});
window.addEventListener('error', (e) => {
  if (e.message) showError(`unexpected failure: ${e.message}`);
});

// The skip link focuses the page's content (its href must not change the route).
document.querySelector('a.skip')?.addEventListener('click', (e) => {
  e.preventDefault();
  view.focus();
});

const indicator = document.getElementById('live-status');
live.on('connection', (state) => {
  indicator.textContent = state;
  indicator.className = `conn ${state}`;
});

const pages = { '': cameras, camera, teach, events, ask, system };
const navOf = { '': 'cameras', camera: 'cameras', teach: 'cameras', events: 'events', ask: 'ask', system: 'system' };

/** The route of the hash: {name, params, query}. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { name: parts[0] || '', params: parts.slice(1), query: new URLSearchParams(qs) };
}

let current = null;

function leave() {
  if (!current) return;
  current.alive = false;
  for (const fn of current.cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch (e) {
      showError(`leaving the page failed: ${e.message}`);
    }
  }
  current = null;
}

async function show() {
  leave();
  const { name, params, query } = parseHash();
  const page = pages[name];
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    if (a.dataset.nav === navOf[name]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = {
    alive: true,
    cleanups: [],
    /** Runs fn when the page is left. */
    onLeave(fn) {
      this.cleanups.push(fn);
    },
    /** Subscribes to the live stream for as long as the page is shown. */
    sub(topic, fn) {
      this.cleanups.push(live.on(topic, fn));
    },
    /** Renders the page again (after an add or delete). */
    refresh: () => show(),
  };
  current = ctx;
  fill(view, h('p', { class: 'loading' }, 'Loading…'));
  if (!page) {
    fill(view, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. '), h('a', { href: '#/' }, 'Back to the cameras'));
    return;
  }
  try {
    await page.render(view, ctx, params, query);
  } catch (e) {
    if (ctx.alive) showError(`the page failed: ${e && e.message ? e.message : e}`);
  }
}

async function logout() {
  const r = await request('POST', '/logout');
  if (r.ok || r.status === 303 || r.redirected) location.assign('/login');
}

async function init() {
  const ok = await loadSession();
  if (!ok) {
    indicator.textContent = 'offline';
    indicator.className = 'conn reconnecting';
  }
  const btn = document.getElementById('logout');
  if (getSession().auth === 'session') {
    btn.hidden = false;
    btn.addEventListener('click', logout);
  }
  live.start();
  window.addEventListener('hashchange', show);
  show();
}

init();
