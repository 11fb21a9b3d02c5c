// Camera page (#/camera/<cam>): the live view with its overlay; every query with
// its state, score, confidence and score sparkline; its region editable on the
// picture; an edit form (PUT the whole spec), delete, and a form to add a query.

import { get, put, del, reason } from '../api.js';
import { h, fill, route, enc, num, stateText, stateClass, nextId } from '../dom.js';
import * as live from '../live.js';
import { picture } from '../overlay.js';
import { Series, sparkline, draw } from '../sparkline.js';
import { KINDS, editFields, specFrom, regionText, isTaught, field, parseRegion } from '../spec.js';
import { setStatus } from './cameras.js';

export async function render(view, ctx, [cam]) {
  if (!cam) {
    location.hash = '#/';
    return;
  }
  const [cams, qs, sys] = await Promise.all([get('/api/cameras'), get('/api/queries'), get('/api/system')]);
  if (!ctx.alive) return;
  const info = cams && (cams.cameras || []).find((c) => c.id === cam);
  if (cams && !info) {
    fill(view, h('h1', {}, 'No such camera'), h('p', {}, `There is no camera “${cam}”. `), h('a', { href: '#/' }, 'Back to the cameras'));
    return;
  }
  const configs = new Map((((qs && qs.cameras) || {})[cam] || []).map((c) => [c.id, c]));
  const models = ((sys && sys.models) || []).map((m) => m.name);
  live.seedStatus(cam, info && info.status);

  const pic = picture(cam, { alt: `${(info && info.name) || cam}, live` });
  ctx.onLeave(() => pic.destroy());
  const badge = h('span', { class: 'status' });
  setStatus(badge, live.statusOf(cam) || (info && info.status));
  const list = h('div', { class: 'queries' });
  const drafts = new Map(); // query -> region being edited (not yet saved)
  const sections = new Map(); // query -> {el, form, series, spark, ...}

  const regionsNow = () =>
    [...configs.values()]
      .map((c) => ({ id: c.id, region: drafts.has(c.id) ? drafts.get(c.id) : c.region, editable: true }))
      .filter((r) => Array.isArray(r.region));

  const drawRegions = () => {
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('rect.region');
    const fq = focused && focused.dataset.query;
    pic.setRegions(regionsNow(), {
      input: (q, r) => {
        drafts.set(q, r);
        const sec = sections.get(q);
        if (sec) sec.form.elements.namedItem('region').value = regionText(r);
      },
      commit: (q, r) => {
        drafts.set(q, r);
        const sec = sections.get(q);
        if (!sec) return;
        sec.form.elements.namedItem('region').value = regionText(r);
        save(q, { region: r });
      },
    });
    if (fq) pic.svg.querySelector(`rect.region[data-query="${CSS.escape(fq)}"]`)?.focus({ preventScroll: true });
  };

  /** PUTs the query's whole spec (config with the form's values, then `patch`). */
  async function save(q, patch) {
    const sec = sections.get(q);
    const cfg = configs.get(q);
    if (!sec || !cfg) return;
    let spec;
    try {
      spec = { ...specFrom(sec.form, cfg), ...(patch || {}) };
    } catch (e) {
      notice(sec, 'refusal', e.message);
      return;
    }
    notice(sec, 'pending', 'saving…');
    const r = await put(`/api/queries/${enc(cam)}/${enc(q)}`, spec, { expect: [400, 404, 409, 422] });
    if (!ctx.alive) return;
    if (!r.ok) {
      notice(sec, 'refusal', reason(r));
      return;
    }
    const saved = r.data && r.data.config ? r.data.config : spec;
    configs.set(q, saved);
    sec.cfg = saved;
    drafts.delete(q);
    notice(sec, 'saved', r.data && r.data.unchanged ? 'saved (unchanged)' : 'saved');
    sec.form.elements.namedItem('region').value = regionText(saved.region);
    drawRegions();
    sec.teach.hidden = !isTaught(cam, saved);
  }

  async function remove(q) {
    const sec = sections.get(q);
    if (!window.confirm(`Delete the query “${q}” of ${cam}?`)) return;
    const r = await del(`/api/queries/${enc(cam)}/${enc(q)}`, { expect: [400, 404, 409] });
    if (!ctx.alive) return;
    if (!r.ok) {
      notice(sec, 'refusal', reason(r));
      return;
    }
    configs.delete(q);
    drafts.delete(q);
    sections.delete(q);
    sec.el.remove();
    drawRegions();
    if (!configs.size) list.append(h('p', { class: 'empty' }, 'No query yet.'));
  }

  for (const cfg of configs.values()) {
    const sec = querySection(cam, cfg, { save, remove, drafts, drawRegions });
    sections.set(cfg.id, sec);
    list.append(sec.el);
  }
  if (!configs.size) list.append(h('p', { class: 'empty' }, 'No query yet.'));

  fill(
    view,
    h(
      'div',
      { class: 'page-head' },
      h('h1', {}, (info && info.name) || cam),
      badge,
      h('nav', { class: 'links', 'aria-label': 'This camera' }, h('a', { href: `#/events?camera=${enc(cam)}` }, 'Events'), h('a', { href: `#/ask?camera=${enc(cam)}` }, 'Ask')),
    ),
    h('div', { class: 'camera-layout' }, h('div', { class: 'camera-view' }, pic.root, h('p', { class: 'hint' }, 'Drag a region to move it, its corners to resize; or focus it and use the arrow keys (Shift resizes), Enter saves.')), h('div', { class: 'camera-side' }, list, addForm(cam, models, ctx))),
  );
  drawRegions();

  // Sparklines: the history first, then frame events.
  for (const [q, sec] of sections) {
    get(`/api/cameras/${enc(cam)}/queries/${enc(q)}/history`, { expect: [404] }).then((d) => {
      if (!ctx.alive || !d || !Array.isArray(d.points)) return;
      const later = sec.series.points.filter((p) => !d.points.length || p[0] > d.points[d.points.length - 1][0]);
      sec.series = new Series([...d.points, ...later].sort((a, b) => a[0] - b[0]));
      sec.redraw();
    });
  }
  const tick = setInterval(() => {
    for (const sec of sections.values()) sec.redraw();
  }, 1000);
  ctx.onLeave(() => clearInterval(tick));

  ctx.sub('frame', (f) => {
    if (f.camera !== cam) return;
    pic.setDetections(f.detections);
    const t = Date.parse(f.time) || Date.now();
    for (const q of f.queries || []) {
      const sec = sections.get(q.id);
      if (!sec) continue;
      sec.series.push(t, q.score);
      sec.show(q.state === null || q.state === undefined ? { score: q.score, confidence: q.confidence } : { state: q.state, score: q.score, confidence: q.confidence });
    }
  });
  ctx.sub('query', (u) => {
    if (u.camera !== cam || u.removed) return;
    const sec = sections.get(u.query);
    if (!sec) return;
    sec.show(u);
    sec.teach.hidden = !isTaught(cam, configs.get(u.query));
  });
  ctx.sub('status', (u) => {
    if (u.camera === cam) setStatus(badge, u.status);
  });
  // A spec refused over MQTT (or by the daemon later) says why on .../error.
  ctx.sub('mqtt:error', (m) => {
    const sec = m.camera === cam && sections.get(m.query);
    if (sec && m.payload && m.payload.error) notice(sec, 'refusal', String(m.payload.error));
  });
}

function notice(sec, kind, text) {
  sec.notice.className = `notice ${kind}`;
  sec.notice.textContent = text;
}

function querySection(cam, cfg, { save, remove, drafts, drawRegions }) {
  const q = cfg.id;
  const state = h('span', { class: 'state' }, '—');
  const score = h('span', { class: 'score' }, '—');
  const confidence = h('span', { class: 'confidence' }, '—');
  const spark = sparkline(`score of ${q}, last 10 minutes`);
  const teach = h('a', { class: 'teach-link button', href: route('teach', cam, q) }, 'Teach');
  teach.hidden = !isTaught(cam, cfg);
  const noticeEl = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const form = h('form', { class: 'edit', 'data-query': q, novalidate: true }, editFields(cfg));
  const regionInput = form.elements.namedItem('region');
  const wholeBtn = h('button', { type: 'button', class: 'quiet small' }, 'Whole frame');
  const drawBtn = h('button', { type: 'button', class: 'quiet small' }, 'Draw region');
  regionInput.closest('.field').append(h('span', { class: 'row' }, wholeBtn, drawBtn));
  wholeBtn.addEventListener('click', () => {
    regionInput.value = '';
    drafts.set(q, null);
    drawRegions();
  });
  drawBtn.addEventListener('click', () => {
    const r = Array.isArray(cfg.region) ? cfg.region : [0.25, 0.25, 0.75, 0.75];
    regionInput.value = regionText(r);
    drafts.set(q, r);
    drawRegions();
    document.querySelector(`svg.overlay rect.region[data-query="${CSS.escape(q)}"]`)?.focus();
  });
  regionInput.addEventListener('change', () => {
    try {
      drafts.set(q, parseRegion(regionInput.value));
      drawRegions();
    } catch {
      /* shown on save */
    }
  });
  const actions = h(
    'div',
    { class: 'actions' },
    h('button', { type: 'submit', class: 'primary' }, 'Save'),
    h('button', { type: 'button', class: 'danger delete-query', onclick: () => remove(q) }, 'Delete'),
  );
  form.append(actions);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save(q);
  });
  const el = h(
    'section',
    { class: 'query card', 'data-query': q, 'aria-labelledby': `${nextId('qh')}` },
    h('header', { class: 'query-head' }, h('h2', {}, q), h('span', { class: 'meta' }, `${cfg.kind} · ${cfg.model}`), teach),
    h(
      'div',
      { class: 'readout' },
      h('div', { class: 'value' }, h('span', { class: 'k' }, 'state'), state),
      h('div', { class: 'value' }, h('span', { class: 'k' }, 'score'), score),
      h('div', { class: 'value' }, h('span', { class: 'k' }, 'confidence'), confidence),
      spark,
    ),
    noticeEl,
    form,
  );
  el.querySelector('h2').id = el.getAttribute('aria-labelledby');
  const sec = {
    el,
    form,
    teach,
    notice: noticeEl,
    series: new Series(),
    show(u) {
      if ('state' in u && u.state !== undefined) {
        state.textContent = stateText(u.state);
        state.className = `state ${stateClass(u.state)}`;
      }
      if ('score' in u) score.textContent = num(u.score, 2);
      if ('confidence' in u) confidence.textContent = num(u.confidence, 2);
    },
    cfg,
    redraw() {
      draw(spark, sec.series, { on: sec.cfg.on, off: sec.cfg.off });
    },
  };
  sec.show(live.queryOf(cam, q));
  return sec;
}

function addForm(cam, models, ctx) {
  const note = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const idField = field({ name: 'id', type: 'text', label: 'Id', required: true, hint: 'A-Z a-z 0-9 _ -' }, {});
  const kindId = nextId('f-kind');
  const modelId = nextId('f-model');
  const kind = h('select', { id: kindId, name: 'kind' }, KINDS.map((k) => h('option', { value: k }, k)));
  const model = models.length
    ? h('select', { id: modelId, name: 'model' }, models.map((m) => h('option', { value: m }, m)))
    : h('input', { id: modelId, name: 'model', type: 'text', required: true, autocomplete: 'off' });
  const form = h(
    'form',
    { class: 'add', novalidate: true },
    h(
      'div',
      { class: 'fields' },
      idField,
      field({ name: 'ask', type: 'text', label: 'Question', required: true, wide: true }, {}),
      h('div', { class: 'field' }, h('label', { for: kindId }, 'Kind'), kind),
      h('div', { class: 'field' }, h('label', { for: modelId }, 'Model'), model),
      field({ name: 'label', type: 'optstr', label: 'Detector label', hint: 'count: e.g. person' }, {}),
      field({ name: 'labels', type: 'lines', label: 'Labels', hint: 'classify: one per line' }, {}),
      field({ name: 'yes', type: 'lines', label: 'Yes prompts', hint: 'one per line' }, {}),
      field({ name: 'no', type: 'lines', label: 'No prompts', hint: 'one per line' }, {}),
      field({ name: 'region', type: 'region', label: 'Region', hint: 'x0, y0, x1, y1 or empty = whole frame', wide: true }, {}),
    ),
    note,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add query')),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = (n) => String(form.elements.namedItem(n).value).trim();
    const lines = (n) => v(n).split('\n').map((l) => l.trim()).filter(Boolean);
    const id = v('id');
    if (!id || !v('ask')) {
      note.className = 'notice refusal';
      note.textContent = 'An id and a question are needed.';
      return;
    }
    const spec = { id, ask: v('ask'), kind: v('kind'), model: v('model') };
    if (v('label')) spec.label = v('label');
    for (const n of ['labels', 'yes', 'no']) if (lines(n).length) spec[n] = lines(n);
    const region = parseRegionSafeOrNull(v('region'));
    if (region === false) {
      note.className = 'notice refusal';
      note.textContent = 'region: four numbers x0, y0, x1, y1, or empty for the whole frame';
      return;
    }
    if (region) spec.region = region;
    note.className = 'notice pending';
    note.textContent = 'adding…';
    const r = await put(`/api/queries/${enc(cam)}/${enc(id)}`, spec, { expect: [400, 404, 409, 422] });
    if (!ctx.alive) return;
    if (!r.ok) {
      note.className = 'notice refusal';
      note.textContent = reason(r);
      return;
    }
    ctx.refresh();
  });
  return h('section', { class: 'card add-query' }, h('h2', {}, 'Add query'), form);
}

function parseRegionSafeOrNull(text) {
  try {
    return parseRegion(text);
  } catch {
    return false;
  }
}
