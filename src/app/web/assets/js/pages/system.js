// System page (#/system): models, cameras, MQTT and health from /api/system,
// refreshed every 5 s.

import { get } from '../api.js';
import { h, fill, num, ago, route } from '../dom.js';
import { setStatus } from './cameras.js';

const EVERY_MS = 5000;

export async function render(view, ctx) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, 'System'), h('span', { class: 'meta updated' }));
  const health = h('section', { class: 'card health' });
  const models = h('section', { class: 'card' }, h('h2', {}, 'Models'));
  const cameras = h('section', { class: 'card' }, h('h2', {}, 'Cameras'));
  const mqtt = h('section', { class: 'card mqtt' }, h('h2', {}, 'MQTT'));
  const wrap = h('div', { class: 'system' }, health, models, cameras, mqtt);
  let first = true;
  let timer = null;

  const load = async () => {
    const d = await get('/api/system');
    if (!ctx.alive) return;
    if (d) {
      if (first) fill(view, head, wrap);
      first = false;
      show(d);
    } else if (first) {
      fill(view, head, h('p', { class: 'empty' }, 'The daemon’s status could not be loaded; trying again.'));
    }
    timer = setTimeout(load, EVERY_MS);
  };
  ctx.onLeave(() => clearTimeout(timer));

  const show = (d) => {
    head.querySelector('.updated').textContent = `version ${d.version ?? '—'} · up ${ago(d.uptime_s)} · updated ${new Date().toLocaleTimeString()}`;
    const hb = d.health || {};
    const healthy = d.healthy ?? hb.healthy ?? hb.status === 'ok';
    fill(health, h('h2', {}, 'Health'), h('p', { class: `badge ${healthy ? 'ok' : 'bad'}` }, healthy ? 'healthy' : 'unhealthy'), reasons(hb));

    fill(
      models,
      h('h2', {}, 'Models'),
      table(
        ['Model', 'Family', 'State', 'Execution providers', 'Runs', 'Run p50'],
        (d.models || []).map((m) =>
          h(
            'tr',
            { class: 'model', 'data-model': m.name },
            h('th', { scope: 'row' }, m.name),
            h('td', {}, m.family ?? '—'),
            h('td', {}, h('span', { class: `badge ${m.state === 'loaded' ? 'ok' : 'bad'}` }, m.state ?? '—'), m.error ? h('div', { class: 'error-text' }, String(m.error)) : null),
            h('td', {}, (m.providers || []).length ? (m.providers || []).map((p) => h('div', {}, `${p.file ?? ''}: ${p.provider ?? ''}`)) : '—'),
            h('td', { class: 'num' }, m.runs ?? m.requests ?? '—'),
            h('td', { class: 'num' }, m.run_p50_ms != null ? `${num(m.run_p50_ms, 1)} ms` : '—'),
          ),
        ),
        'models',
      ),
    );

    fill(
      cameras,
      h('h2', {}, 'Cameras'),
      table(
        ['Camera', 'Status', 'fps', 'Evaluated/s', 'Decoded', 'Sampled', 'Unchanged', 'Dropped', 'Latency p50', 'Frame age'],
        (d.cameras || []).map((c) => {
          const st = h('span', { class: 'status' });
          setStatus(st, c.status);
          return h(
            'tr',
            { class: 'camera', 'data-camera': c.id },
            h('th', { scope: 'row' }, h('a', { href: route('camera', c.id) }, c.id)),
            h('td', {}, st),
            h('td', { class: 'num' }, num(c.fps, 1)),
            h('td', { class: 'num' }, num(c.evaluated_fps, 1)),
            ...['decoded', 'sampled', 'unchanged', 'dropped'].map((k) => h('td', { class: 'num' }, c[k] ?? '—')),
            h('td', { class: 'num' }, c.latency_p50_ms != null ? `${num(c.latency_p50_ms, 0)} ms` : '—'),
            h('td', { class: 'num' }, ago(c.frame_age_s)),
          );
        }),
        'cameras',
      ),
    );

    const m = d.mqtt;
    fill(
      mqtt,
      h('h2', {}, 'MQTT'),
      m
        ? h(
            'dl',
            { class: 'facts' },
            fact('connected', h('span', { class: `badge ${m.connected ? 'ok' : 'bad'}` }, m.connected ? 'connected' : 'disconnected')),
            fact('queued', m.queued ?? '—'),
            fact('oldest queued', ago(m.oldest_s ?? m.oldest_queued_s)),
            fact('dropped', m.dropped ?? '—'),
            fact('reconnects', m.reconnects ?? '—'),
            fact('events raised', m.events_raised ?? '—'),
            fact('events acknowledged', m.events_acknowledged ?? '—'),
          )
        : h('p', { class: 'empty' }, 'MQTT is not configured.'),
    );
  };

  fill(view, head, h('p', { class: 'loading' }, 'Loading…'));
  load();
}

function fact(k, v) {
  return [h('dt', {}, k), h('dd', {}, v)];
}

function table(cols, rows, cls) {
  // Each cell knows its column's name: a phone shows the rows as stacked cards.
  for (const tr of rows) [...tr.children].forEach((cell, i) => cell.setAttribute('data-label', cols[i] || ''));
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { class: cls }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: cols.length, class: 'empty' }, 'none')))),
  );
}

/** Why the daemon is unhealthy: the health body's `problems` (one line each). */
function reasons(hb) {
  const list = Array.isArray(hb.problems) ? hb.problems : Array.isArray(hb.reasons) ? hb.reasons : [];
  return list.length ? h('ul', { class: 'reasons' }, list.map((r) => h('li', {}, typeof r === 'string' ? r : JSON.stringify(r)))) : null;
}
