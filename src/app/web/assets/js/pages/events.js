// Events page (#/events?camera=&query=): the state changes, newest first, with
// their snapshots; filters by camera and query (kept in the hash); new events
// arrive live; a taught query's event can be labelled ("label this frame").

import { get, post, reason } from '../api.js';
import { h, fill, enc, num, when, stateText, stateClass, nextId, route } from '../dom.js';
import { isTaught, statesOf } from '../spec.js';

const MAX = 200;

export async function render(view, ctx, _params, query) {
  const camera = query.get('camera') || '';
  const qid = query.get('query') || '';
  const qs = new URLSearchParams();
  if (camera) qs.set('camera', camera);
  if (qid) qs.set('query', qid);
  qs.set('limit', '100');
  const [cams, configs, evs] = await Promise.all([get('/api/cameras'), get('/api/queries'), get(`/api/events?${qs}`)]);
  if (!ctx.alive) return;
  const camList = (cams && cams.cameras) || [];
  const cfgOf = (c, q) => ((((configs && configs.cameras) || {})[c]) || []).find((x) => x.id === q);

  const camId = nextId('f-camera');
  const qId = nextId('f-query');
  const camSel = h('select', { id: camId, name: 'camera' }, h('option', { value: '' }, 'all cameras'), camList.map((c) => h('option', { value: c.id, selected: c.id === camera }, c.name || c.id)));
  const queryIds = new Set();
  for (const c of camList) if (!camera || c.id === camera) for (const q of c.queries || []) queryIds.add(q);
  if (qid) queryIds.add(qid);
  const qSel = h('select', { id: qId, name: 'query' }, h('option', { value: '' }, 'all queries'), [...queryIds].sort().map((q) => h('option', { value: q, selected: q === qid }, q)));
  const go = () => {
    const p = new URLSearchParams();
    if (camSel.value) p.set('camera', camSel.value);
    if (qSel.value) p.set('query', qSel.value);
    const s = p.toString();
    location.hash = s ? `#/events?${s}` : '#/events';
  };
  camSel.addEventListener('change', () => {
    qSel.value = '';
    go();
  });
  qSel.addEventListener('change', go);

  const timeline = h('ol', { class: 'timeline' });
  const empty = h('p', { class: 'empty' }, 'No event yet: a query’s state has not changed since the daemon started.');
  const add = (ev, first) => {
    if (!ev || !ev.id || timeline.querySelector(`[data-id="${CSS.escape(ev.id)}"]`)) return;
    const li = eventItem(ev, cfgOf(ev.camera, ev.query), ctx);
    if (first) timeline.prepend(li);
    else timeline.append(li);
    while (timeline.children.length > MAX) timeline.lastElementChild.remove();
    empty.hidden = true;
  };
  for (const ev of (evs && evs.events) || []) add(ev, false);
  empty.hidden = timeline.children.length > 0;

  fill(
    view,
    h('h1', {}, 'Events'),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, h('div', { class: 'field' }, h('label', { for: camId }, 'Camera'), camSel), h('div', { class: 'field' }, h('label', { for: qId }, 'Query'), qSel)),
    empty,
    timeline,
  );

  // The live payload has no image field: fetch the newest of the list again (it has
  // each event's picture URL, or null), debounced; the payload alone if that fails.
  let pending = null;
  const waiting = [];
  ctx.onLeave(() => clearTimeout(pending));
  ctx.sub('mqtt:events', (m) => {
    const ev = m.payload;
    if (!ev || typeof ev !== 'object' || !ev.id || m.retained) return;
    if (camera && ev.camera !== camera) return;
    if (qid && ev.query !== qid) return;
    waiting.push({ ...ev, camera: ev.camera || m.camera, image: null });
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      const got = waiting.splice(0);
      const p = new URLSearchParams(qs);
      p.set('limit', '20');
      const d = await get(`/api/events?${p}`);
      if (!ctx.alive) return;
      const fresh = d && Array.isArray(d.events) ? d.events : [];
      const known = new Set(fresh.map((e) => e.id));
      for (const e of got) if (!known.has(e.id)) add(e, true);
      for (const e of [...fresh].reverse()) add(e, true);
    }, 400);
  });
}

function eventItem(ev, cfg, ctx) {
  const taught = cfg && isTaught(ev.camera, cfg);
  const note = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const thumb = ev.image
    ? h('img', { class: 'thumb', src: ev.image, alt: `${ev.camera} ${ev.query}: ${stateText(ev.to)}`, loading: 'lazy' })
    : h('div', { class: 'thumb none', 'aria-hidden': 'true' }, 'no picture');
  if (ev.image) thumb.addEventListener('error', () => thumb.replaceWith(h('div', { class: 'thumb none', 'aria-hidden': 'true' }, 'no picture')), { once: true });
  const li = h(
    'li',
    { class: 'event card', 'data-id': ev.id },
    thumb,
    h(
      'div',
      { class: 'meta' },
      h('div', { class: 'change' }, h('span', { class: `chip ${stateClass(ev.from)}` }, stateText(ev.from)), ' → ', h('span', { class: `chip ${stateClass(ev.to)}` }, stateText(ev.to)), h('span', { class: 'score' }, ` score ${num(ev.score, 2)}`)),
      h('div', {}, h('a', { href: route('camera', ev.camera) }, ev.camera), ' · ', h('strong', {}, ev.query), ' · ', h('time', { datetime: ev.time || '' }, when(ev.time))),
      note,
    ),
  );
  if (taught && ev.image) {
    const row = h('div', { class: 'row label-frame' }, h('span', { class: 'hint' }, 'label this frame:'));
    for (const st of statesOf(cfg)) {
      const b = h('button', { type: 'button', class: 'small label-event', 'data-state': st }, st);
      b.addEventListener('click', async () => {
        b.disabled = true;
        const r = await post(`/api/cameras/${enc(ev.camera)}/queries/${enc(ev.query)}/examples`, { state: st, event: ev.id }, { expect: [400, 404, 409, 503, 504] });
        b.disabled = false;
        if (!ctx.alive) return;
        note.className = r.ok ? 'notice saved' : 'notice refusal';
        note.textContent = r.ok ? `labelled ${st}` : reason(r);
      });
      row.append(b);
    }
    li.querySelector('.meta').append(row);
  }
  return li;
}
