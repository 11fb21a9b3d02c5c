// Ask page (#/ask?camera=): run a question once on a camera's current frame with a
// loaded model; shows the answer, the frame with its boxes, the timings, and can
// make the question a standing query.

import { get, post, put, reason } from '../api.js';
import { h, fill, enc, num, stateText, stateClass, nextId, route } from '../dom.js';
import { picture } from '../overlay.js';
import { KINDS, field, parseRegion } from '../spec.js';

/** Which optional fields each kind uses. */
const USES = {
  yes_no: ['label', 'yes', 'no'],
  count: ['label'],
  classify: ['labels'],
  caption: ['detail'],
  detect: ['labels'],
  read: ['pattern'],
  ground: [],
  answer: [],
};

export async function render(view, ctx, _params, query) {
  const [cams, sys] = await Promise.all([get('/api/cameras'), get('/api/system')]);
  if (!ctx.alive) return;
  const camList = (cams && cams.cameras) || [];
  const models = ((sys && sys.models) || []).filter((m) => m.state !== 'failed' && m.state !== 'unavailable');
  const allModels = (sys && sys.models) || [];
  const want = query.get('camera');

  const sel = (name, label, options) => {
    const id = nextId(`f-${name}`);
    return h('div', { class: 'field' }, h('label', { for: id }, label), h('select', { id, name }, options));
  };
  const form = h(
    'form',
    { class: 'ask card', novalidate: true },
    h(
      'div',
      { class: 'fields' },
      sel('camera', 'Camera', camList.map((c) => h('option', { value: c.id, selected: c.id === want }, c.name || c.id))),
      sel('model', 'Model', (models.length ? models : allModels).map((m) => h('option', { value: m.name }, `${m.name}${m.family ? ` (${m.family})` : ''}`))),
      sel('kind', 'Kind', KINDS.map((k) => h('option', { value: k }, k))),
      field({ name: 'ask', type: 'text', label: 'Question', required: true, wide: true }, {}),
      field({ name: 'label', type: 'optstr', label: 'Detector label', hint: 'e.g. person' }, {}),
      field({ name: 'labels', type: 'lines', label: 'Labels', hint: 'one per line' }, {}),
      field({ name: 'yes', type: 'lines', label: 'Yes prompts', hint: 'one per line' }, {}),
      field({ name: 'no', type: 'lines', label: 'No prompts', hint: 'one per line' }, {}),
      field({ name: 'pattern', type: 'optstr', label: 'Pattern', hint: 'a regular expression' }, {}),
      field({ name: 'detail', type: 'detail', label: 'Detail' }, {}),
      field({ name: 'region', type: 'region', label: 'Region', hint: 'x0, y0, x1, y1 or empty = whole frame', wide: true }, {}),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Ask')),
  );
  const note = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const result = h('div', { class: 'ask-result' });
  const el = (n) => form.elements.namedItem(n);

  const shown = () => {
    const uses = USES[el('kind').value] || [];
    for (const n of ['label', 'labels', 'yes', 'no', 'pattern', 'detail']) el(n).closest('.field').hidden = !uses.includes(n);
  };
  el('kind').addEventListener('change', shown);
  shown();

  const spec = () => {
    const v = (n) => String(el(n).value).trim();
    const lines = (n) => v(n).split('\n').map((l) => l.trim()).filter(Boolean);
    const sp = { ask: v('ask'), kind: v('kind'), model: v('model') };
    const uses = USES[sp.kind] || [];
    if (uses.includes('label') && v('label')) sp.label = v('label');
    for (const n of ['labels', 'yes', 'no']) if (uses.includes(n) && lines(n).length) sp[n] = lines(n);
    if (uses.includes('pattern') && v('pattern')) sp.pattern = v('pattern');
    if (uses.includes('detail')) sp.detail = v('detail');
    const region = parseRegion(v('region'));
    if (region) sp.region = region;
    return sp;
  };

  let last = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const cam = el('camera').value;
    let sp;
    try {
      sp = spec();
    } catch (err) {
      note.className = 'notice refusal';
      note.textContent = err.message;
      return;
    }
    if (!cam || !sp.ask || !sp.model) {
      note.className = 'notice refusal';
      note.textContent = 'A camera, a model and a question are needed.';
      return;
    }
    note.className = 'notice pending';
    note.textContent = 'asking…';
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    const r = await post(`/api/cameras/${enc(cam)}/ask`, sp, { expect: [400, 404, 409, 503, 504] });
    btn.disabled = false;
    if (!ctx.alive) return;
    if (!r.ok) {
      note.className = 'notice refusal';
      note.textContent = reason(r);
      return;
    }
    note.className = 'notice';
    note.textContent = '';
    last = { cam, spec: sp };
    showResult(result, r.data || {}, last, ctx);
  });

  fill(view, h('h1', {}, 'Ask'), h('p', { class: 'hint' }, 'Runs the question once on the camera’s current frame with a loaded model.'), h('div', { class: 'camera-layout' }, h('div', {}, form, note), result));
}

function showResult(root, d, last, ctx) {
  const a = d.answer || {};
  const t = d.timings || {};
  const pic = picture(last.cam, { src: d.image || null, alt: `frame ${d.frame && d.frame.seq !== undefined ? d.frame.seq : ''} of ${last.cam}` });
  pic.setDetections(d.detections);
  if (Array.isArray(last.spec.region)) pic.setRegions([{ id: 'region', region: last.spec.region }]);
  const timing = (k, label) => (typeof t[k] === 'number' ? h('li', {}, h('span', { class: 'k' }, label), ` ${t[k].toFixed(1)} ms`) : null);
  const captions = (d.captions || []).map((c) => h('p', { class: 'text' }, typeof c === 'string' ? c : c.text || ''));
  const idId = nextId('f-id');
  const idInput = h('input', { id: idId, name: 'id', type: 'text', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_-]{1,64}' });
  const keepNote = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  const keep = h('form', { class: 'keep', novalidate: true }, h('div', { class: 'field' }, h('label', { for: idId }, 'Query id'), idInput), h('button', { type: 'submit' }, 'Make it a standing query'), keepNote);
  keep.addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = idInput.value.trim();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      keepNote.className = 'notice refusal';
      keepNote.textContent = 'An id of 1–64 letters, digits, _ or -.';
      return;
    }
    const r = await put(`/api/queries/${enc(last.cam)}/${enc(id)}`, { id, ...last.spec }, { expect: [400, 404, 409, 422] });
    if (!ctx.alive) return;
    keepNote.className = r.ok ? 'notice saved' : 'notice refusal';
    fill(keepNote, r.ok ? ['saved: ', h('a', { href: route('camera', last.cam) }, `see it on ${last.cam}`)] : reason(r));
  });
  fill(
    root,
    h(
      'section',
      { class: 'answer card' },
      h('h2', {}, 'Answer'),
      h('div', { class: 'readout' }, h('div', { class: 'value' }, h('span', { class: 'k' }, 'state'), h('span', { class: `state ${stateClass(a.state)}` }, stateText(a.state))), h('div', { class: 'value' }, h('span', { class: 'k' }, 'score'), h('span', { class: 'score' }, num(a.score, 2))), h('div', { class: 'value' }, h('span', { class: 'k' }, 'confidence'), h('span', { class: 'confidence' }, num(a.confidence, 2)))),
      a.text ? h('p', { class: 'text' }, String(a.text)) : null,
      captions,
      pic.root,
      h('ul', { class: 'timings' }, timing('total_ms', 'total'), timing('preprocess_ms', 'preprocess'), timing('infer_ms', 'inference'), timing('postprocess_ms', 'postprocess')),
      keep,
    ),
  );
}
