// Teach page (#/teach/<cam>/<q>): label the live frame with one click per state,
// the examples with their thumbnails (delete), accuracy and counts, and the review
// queue of frames the query was unsure about (one-click answers).

import { get, post, del, reason } from '../api.js';
import { h, fill, route, enc, num, when } from '../dom.js';
import { picture } from '../overlay.js';
import { statesOf, teachable } from '../spec.js';

export async function render(view, ctx, [cam, q]) {
  if (!cam || !q) {
    location.hash = '#/';
    return;
  }
  const base = `/api/cameras/${enc(cam)}/queries/${enc(q)}`;
  const qs = await get('/api/queries');
  if (!ctx.alive) return;
  const cfg = (((qs && qs.cameras) || {})[cam] || []).find((c) => c.id === q);
  // Only yes_no and classify queries can be taught: ask for the others' examples not at all.
  const ex = qs && (!cfg || !teachable(cfg)) ? null : await get(`${base}/examples`, { expect: [404] });
  if (!ctx.alive) return;
  const head = h(
    'div',
    { class: 'page-head' },
    h('h1', {}, `Teach ${q}`),
    h('nav', { class: 'links', 'aria-label': 'This query' }, h('a', { href: route('camera', cam) }, `Camera ${cam}`), h('a', { href: `#/events?camera=${enc(cam)}&query=${enc(q)}` }, 'Events')),
  );
  if (!ex) {
    fill(view, head, h('p', { class: 'empty' }, cfg ? `The query “${q}” is not taught: only yes_no and classify queries on an embedder or CLIP model learn from examples.` : `There is no query “${q}” on camera “${cam}”.`));
    return;
  }
  const states = Array.isArray(ex.states) && ex.states.length ? ex.states.map(String) : statesOf(cfg).length ? statesOf(cfg) : Object.keys((ex.summary && ex.summary.examples) || {});
  if (cfg && cfg.ask) head.append(h('p', { class: 'ask-text' }, cfg.ask));

  const pic = picture(cam, { alt: `${cam}, live` });
  ctx.onLeave(() => pic.destroy());
  if (cfg && Array.isArray(cfg.region)) pic.setRegions([{ id: q, region: cfg.region }]);
  ctx.sub('frame', (f) => {
    if (f.camera === cam) pic.setDetections(f.detections);
  });

  const note = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const say = (kind, text) => {
    note.className = `notice ${kind}`;
    note.textContent = text;
  };
  const accuracy = h('p', { class: 'accuracy' });
  const counts = h('ul', { class: 'counts' });
  const examples = h('ul', { class: 'examples' });
  const review = h('ul', { class: 'review' });
  const reviewNote = h('p', { class: 'empty' });

  const summarise = (summary) => {
    const sm = summary || {};
    accuracy.textContent = typeof sm.accuracy === 'number' ? `accuracy ${Math.round(sm.accuracy * 100)} %` : 'accuracy —';
    const per = sm.examples || {};
    const keys = [...new Set([...states, ...Object.keys(per)])];
    fill(counts, keys.map((k) => h('li', { 'data-state': k }, h('span', { class: 'k' }, k), ' ', String(per[k] || 0))));
    if (sm.candidates) counts.append(h('li', { class: 'candidates' }, h('span', { class: 'k' }, 'candidates'), ' ', String(sm.candidates)));
  };

  const exampleItem = (e) => {
    const btn = h('button', { type: 'button', class: 'delete danger small' }, 'Delete');
    const li = h(
      'li',
      { class: 'example', 'data-id': e.id },
      h('img', { class: 'thumb', src: `${base}/examples/${enc(e.id)}/image.jpg`, alt: `example ${e.state}`, loading: 'lazy' }),
      h('div', { class: 'meta' }, h('strong', { class: 'state' }, String(e.state)), h('span', {}, `${e.source || ''}${e.by && e.by !== 'person' ? ` · ${e.by}` : ''}`), h('time', { datetime: e.time || '' }, when(e.time))),
      e.source === 'folder' ? h('span', { class: 'hint' }, 'from the folder') : btn,
    );
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      const r = await del(`${base}/examples/${enc(e.id)}`, { expect: [400, 404, 409] });
      if (!ctx.alive) return;
      if (!r.ok) {
        btn.disabled = false;
        say('refusal', reason(r));
        return;
      }
      li.remove();
      summarise(r.data && r.data.summary);
      say('saved', `forgot ${e.state} example`);
      if (!examples.children.length) examples.append(h('li', { class: 'empty' }, 'No example yet.'));
    });
    return li;
  };

  const showExamples = (list) => {
    const sorted = [...(list || [])].sort((a, b) => String(b.id).localeCompare(String(a.id)));
    fill(examples, sorted.length ? sorted.map(exampleItem) : h('li', { class: 'empty' }, 'No example yet.'));
  };

  const addExample = (e, summary) => {
    examples.querySelector('li.empty')?.remove();
    if (e) examples.prepend(exampleItem(e));
    summarise(summary);
  };

  /** POST a label; extra = {review} or {}. */
  const label = async (state, extra, btn) => {
    if (btn) btn.disabled = true;
    say('pending', `labelling ${state}…`);
    const r = await post(`${base}/examples`, { state, ...extra }, { expect: [400, 404, 409, 503, 504] });
    if (btn) btn.disabled = false;
    if (!ctx.alive) return false;
    if (!r.ok) {
      say('refusal', reason(r));
      return false;
    }
    addExample(r.data && r.data.example, r.data && r.data.summary);
    say('saved', `labelled ${state}`);
    return true;
  };

  const buttons = h(
    'div',
    { class: 'label-buttons' },
    states.map((st) => {
      const b = h('button', { type: 'button', class: 'label-now primary', 'data-state': st }, `Label now: ${st}`);
      b.addEventListener('click', () => label(st, {}, b));
      return b;
    }),
  );

  const loadReview = async () => {
    const d = await get(`/api/cameras/${enc(cam)}/review`, { expect: [404] });
    if (!ctx.alive || !d) return;
    const items = (d.review || []).filter((it) => it.query === q);
    fill(review, items.map(reviewItem));
    reviewNote.textContent = items.length ? '' : 'Nothing to review: the query has been sure of its answers.';
  };
  const reviewItem = (it) => {
    const li = h(
      'li',
      { class: 'review-item', 'data-id': it.id },
      h('img', { class: 'thumb', src: `/api/cameras/${enc(cam)}/review/${enc(it.id)}/image.jpg`, alt: `review ${it.id}`, loading: 'lazy' }),
      h('div', { class: 'meta' }, h('span', {}, `answer ${it.answer ?? '—'} · confidence ${num(it.confidence, 2)}`), h('time', { datetime: it.time || '' }, when(it.time))),
    );
    const row = h('div', { class: 'row' });
    for (const st of states) {
      const b = h('button', { type: 'button', class: 'answer', 'data-state': st }, st);
      b.addEventListener('click', async () => {
        for (const x of row.querySelectorAll('button')) x.disabled = true;
        const ok = await label(st, { review: it.id });
        if (ok) li.remove();
        else for (const x of row.querySelectorAll('button')) x.disabled = false;
        if (!review.children.length) reviewNote.textContent = 'Nothing left to review.';
      });
      row.append(b);
    }
    li.append(row);
    return li;
  };

  summarise(ex.summary);
  showExamples(ex.examples);
  fill(
    view,
    head,
    h(
      'div',
      { class: 'camera-layout' },
      h('div', { class: 'camera-view' }, pic.root, buttons, note),
      h(
        'div',
        { class: 'camera-side' },
        h('section', { class: 'card' }, h('h2', {}, 'Learning'), accuracy, counts),
        h('section', { class: 'card' }, h('h2', {}, 'Review queue'), reviewNote, review),
        h('section', { class: 'card' }, h('h2', {}, 'Examples'), examples),
      ),
    ),
  );
  loadReview();
  let pending = null;
  ctx.sub('mqtt:review', (m) => {
    if (m.camera !== cam || pending) return;
    pending = setTimeout(() => {
      pending = null;
      loadReview();
    }, 300);
  });
  ctx.onLeave(() => clearTimeout(pending));
}
