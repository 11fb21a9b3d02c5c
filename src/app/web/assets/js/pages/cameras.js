// Cameras page (#/): a grid of live tiles — picture, overlay of boxes and regions,
// a status badge and one chip per query — each a link to its camera page.

import { get } from '../api.js';
import { h, fill, route, stateText, stateClass } from '../dom.js';
import * as live from '../live.js';
import { picture } from '../overlay.js';

const STATUSES = ['online', 'reconnecting', 'offline', 'starting', 'ended'];

/** A status badge's text and class. */
export function setStatus(el, status) {
  const st = status || 'unknown';
  el.textContent = st;
  el.className = `status ${STATUSES.includes(st) ? st : 'unknown'}`;
}

export async function render(view, ctx) {
  const [cams, qs] = await Promise.all([get('/api/cameras'), get('/api/queries')]);
  if (!ctx.alive) return;
  if (!cams) {
    fill(view, h('h1', {}, 'Cameras'), h('p', { class: 'empty' }, 'The cameras could not be loaded.'));
    return;
  }
  const list = cams.cameras || [];
  const configs = (qs && qs.cameras) || {};
  const grid = h('div', { class: 'grid tiles' });
  fill(view, h('h1', {}, 'Cameras'), list.length ? grid : h('p', { class: 'empty' }, 'No camera is configured.'));
  const tiles = new Map();
  list.forEach((cam) => {
    live.seedStatus(cam.id, cam.status);
    const pic = picture(cam.id, { alt: `${cam.name || cam.id}, live` });
    ctx.onLeave(() => pic.destroy());
    const cfgs = configs[cam.id] || [];
    const ids = cfgs.length ? cfgs.map((c) => c.id) : cam.queries || [];
    const regions = new Map(cfgs.map((c) => [c.id, c.region]));
    const drawRegions = () => pic.setRegions([...regions].filter(([, r]) => Array.isArray(r)).map(([id, region]) => ({ id, region })));
    drawRegions();
    const badge = h('span', { class: 'status' });
    setStatus(badge, live.statusOf(cam.id) || cam.status);
    const chips = h('div', { class: 'chips' });
    const chipOf = new Map();
    for (const q of ids) {
      const state = h('span', { class: 'state' });
      const chip = h('span', { class: 'chip', 'data-query': q }, h('span', { class: 'qid' }, q), state);
      chipOf.set(q, chip);
      chips.append(chip);
      setChip(chip, live.queryOf(cam.id, q).state);
    }
    const tile = h(
      'a',
      { class: 'tile', href: route('camera', cam.id), 'data-camera': cam.id, 'aria-label': `${cam.name || cam.id}: open the camera` },
      pic.root,
      h('div', { class: 'tile-head' }, h('span', { class: 'name' }, cam.name || cam.id), badge),
      chips,
    );
    grid.append(tile);
    tiles.set(cam.id, { pic, badge, chipOf, regions, drawRegions });
  });

  ctx.sub('frame', (f) => {
    const t = tiles.get(f.camera);
    if (!t) return;
    t.pic.setDetections(f.detections);
    for (const q of f.queries || []) {
      const chip = t.chipOf.get(q.id);
      if (chip && q.state !== null && q.state !== undefined) setChip(chip, q.state);
    }
  });
  ctx.sub('query', (u) => {
    const t = tiles.get(u.camera);
    const chip = t?.chipOf.get(u.query);
    if (!chip || u.removed) return;
    if (u.state !== undefined) setChip(chip, u.state);
    // The attributes carry the region the query runs on now (it may have been edited elsewhere).
    const a = u.attributes;
    if (a && 'region' in a && JSON.stringify(a.region) !== JSON.stringify(t.regions.get(u.query))) {
      t.regions.set(u.query, a.region);
      t.drawRegions();
    }
  });
  ctx.sub('status', (u) => {
    const t = tiles.get(u.camera);
    if (t) setStatus(t.badge, u.status);
  });
}

function setChip(chip, state) {
  chip.querySelector('.state').textContent = stateText(state);
  chip.className = `chip ${stateClass(state)}`;
}
