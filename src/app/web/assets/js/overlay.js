// A camera picture with its SVG overlay: detection boxes (label + score), each
// query's region with its id, and — on the camera page — regions that can be moved
// and resized by pointer (mouse, touch, pen) or keyboard.

import { h, s, afterLoad, enc, num } from './dom.js';
import { getSession, toLogin } from './api.js';

const STEP = 0.01;
const MIN_SIZE = 0.02;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const round3 = (v) => Math.round(v * 1000) / 1000;

/** A region rounded to 3 decimals. */
export function rounded(r) {
  return r.map(round3);
}

/**
 * A picture: {root, img, svg, setRegions, setDetections, destroy}.
 * src: 'live' (the camera's live picture, refreshed at the session's tile_fps from
 * the load event on), or a URL (a still: an answer's frame).
 */
export function picture(camera, { src = 'live', alt } = {}) {
  const img = h('img', { class: 'live', alt: alt || `camera ${camera}`, decoding: 'async' });
  let W = 1600;
  let H = 900;
  const regions = s('g', { class: 'regions' });
  const boxes = s('g', { class: 'boxes' });
  const svg = s('svg', { class: 'overlay', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' }, boxes, regions);
  const root = h('div', { class: 'picture' }, img, svg);
  let pollTimer = null;
  let alive = true;
  let lastRegions = null;
  let lastBoxes = null;

  const sized = () => {
    if (!img.naturalWidth || !img.naturalHeight) return;
    if (img.naturalWidth === W && img.naturalHeight === H) return;
    W = img.naturalWidth;
    H = img.naturalHeight;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    root.style.aspectRatio = `${W} / ${H}`;
    if (lastRegions) api.setRegions(...lastRegions);
    if (lastBoxes) api.setDetections(lastBoxes);
  };
  img.addEventListener('load', () => {
    root.classList.remove('no-picture');
    sized();
  });
  img.addEventListener('error', () => root.classList.add('no-picture'));

  const base = `/api/cameras/${enc(camera)}`;
  let shown = null; // the x-frame-seq of the picture on screen
  let url = null; // its object URL
  if (src === 'live') {
    // Refreshed stills: each request renews the camera's "watched" lease; 204 means
    // the picture on screen is still the latest (or there is none yet). One request
    // at a time per tile, so 16 tiles share the browser's six connections.
    const every = () => 1000 / Math.max(0.1, Number(getSession()?.tile_fps) || 2);
    const next = async () => {
      if (!alive) return;
      let wait = every();
      try {
        const q = shown === null ? '' : `?after=${shown}`;
        const r = await fetch(`${base}/live.jpg${q}`, { cache: 'no-store', credentials: 'same-origin' });
        if (r.status === 200) {
          const blob = await r.blob();
          if (!alive) return;
          shown = r.headers.get('x-frame-seq');
          const old = url;
          url = URL.createObjectURL(blob);
          img.src = url;
          img.dataset.seq = shown ?? '';
          if (old) URL.revokeObjectURL(old);
        } else if (r.status === 401) {
          toLogin();
          return;
        } else if (r.status !== 204) {
          wait = 5000;
        }
      } catch (e) {
        wait = 5000;
      }
      if (alive) pollTimer = setTimeout(next, wait);
    };
    afterLoad(next);
  } else if (src) {
    img.src = src;
  }

  /** Viewbox units per CSS pixel (for text and handle sizes). */
  const unit = () => {
    const w = svg.clientWidth || svg.getBoundingClientRect().width;
    return w > 0 ? W / w : W / 640;
  };

  const api = {
    root,
    img,
    svg,
    size: () => [W, H],
    /**
     * regions: [{id, region:[x0,y0,x1,y1], editable}]; on: {input(id, r), commit(id, r)}.
     * An editable region being dragged keeps its own place until it is let go.
     */
    setRegions(list, on) {
      lastRegions = [list, on];
      const u = unit();
      regions.replaceChildren();
      for (const r of list) {
        if (!Array.isArray(r.region) || r.region.length !== 4) continue;
        regions.append(regionGroup(r, on, u));
      }
    },
    /** Boxes: [{label, score, box:[x0,y0,x1,y1]}] or null. */
    setDetections(dets) {
      lastBoxes = dets;
      const u = unit();
      boxes.replaceChildren();
      for (const d of dets || []) {
        if (!Array.isArray(d.box)) continue;
        const [x0, y0, x1, y1] = d.box;
        const text = `${d.label ?? '?'} ${num(d.score, 2)}`;
        boxes.append(
          s('rect', { class: 'box', x: x0 * W, y: y0 * H, width: (x1 - x0) * W, height: (y1 - y0) * H }),
          s('text', { class: 'box-label', x: x0 * W + 3 * u, y: Math.max(y0 * H - 4 * u, 13 * u), 'font-size': 12 * u }, text),
        );
      }
    },
    destroy() {
      alive = false;
      clearTimeout(pollTimer);
      img.removeAttribute('src');
      if (url) URL.revokeObjectURL(url);
    },
  };

  function regionGroup(r, on, u) {
    let reg = r.region.slice();
    const g = s('g', { class: r.editable ? 'region-group editable' : 'region-group', 'data-query': r.id });
    const rect = s('rect', { class: r.editable ? 'region editable' : 'region', 'data-query': r.id });
    const label = s('text', { class: 'region-label', 'font-size': 12 * u }, r.id);
    g.append(rect, label);
    const handles = [];
    if (r.editable) {
      rect.setAttribute('tabindex', '0');
      rect.setAttribute('role', 'slider');
      rect.setAttribute('aria-label', `region of ${r.id}: drag to move, corners to resize; arrow keys move, Shift+arrows resize, Enter saves`);
      for (const corner of ['nw', 'ne', 'sw', 'se']) {
        const hd = s('rect', { class: 'handle', 'data-corner': corner });
        handles.push(hd);
        g.append(hd);
      }
    }
    const coarse = window.matchMedia && window.matchMedia('(pointer: coarse)').matches;
    const hs = (coarse ? 22 : 12) * u;
    const place = () => {
      const [x0, y0, x1, y1] = reg;
      rect.setAttribute('x', x0 * W);
      rect.setAttribute('y', y0 * H);
      rect.setAttribute('width', Math.max(0, (x1 - x0) * W));
      rect.setAttribute('height', Math.max(0, (y1 - y0) * H));
      rect.setAttribute('aria-valuetext', rounded(reg).join(', '));
      label.setAttribute('x', x0 * W + (handles.length ? hs / 2 + 4 * u : 4 * u));
      label.setAttribute('y', y0 * H + 14 * u);
      for (const hd of handles) {
        const c = hd.dataset.corner;
        const cx = (c.includes('w') ? x0 : x1) * W;
        const cy = (c.includes('n') ? y0 : y1) * H;
        hd.setAttribute('x', cx - hs / 2);
        hd.setAttribute('y', cy - hs / 2);
        hd.setAttribute('width', hs);
        hd.setAttribute('height', hs);
      }
    };
    place();
    if (!r.editable) return g;

    const point = (e) => {
      const b = svg.getBoundingClientRect();
      return [clamp((e.clientX - b.left) / b.width, 0, 1), clamp((e.clientY - b.top) / b.height, 0, 1)];
    };
    let drag = null;
    const down = (e) => {
      if (e.button !== undefined && e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      const target = e.currentTarget;
      target.setPointerCapture(e.pointerId);
      drag = { id: e.pointerId, target, mode: target.dataset.corner || 'move', from: point(e), start: reg.slice(), moved: false };
      g.classList.add('dragging');
      rect.focus({ preventScroll: true });
    };
    const move = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      e.preventDefault();
      const [px, py] = point(e);
      const dx = px - drag.from[0];
      const dy = py - drag.from[1];
      const [x0, y0, x1, y1] = drag.start;
      if (drag.mode === 'move') {
        const w = x1 - x0;
        const hh = y1 - y0;
        const nx = clamp(x0 + dx, 0, 1 - w);
        const ny = clamp(y0 + dy, 0, 1 - hh);
        reg = [nx, ny, nx + w, ny + hh];
      } else {
        let [a, b, c, d] = drag.start;
        if (drag.mode.includes('w')) a = clamp(px, 0, c - MIN_SIZE);
        if (drag.mode.includes('e')) c = clamp(px, a + MIN_SIZE, 1);
        if (drag.mode.includes('n')) b = clamp(py, 0, d - MIN_SIZE);
        if (drag.mode.includes('s')) d = clamp(py, b + MIN_SIZE, 1);
        reg = [a, b, c, d];
      }
      drag.moved = drag.moved || Math.abs(dx) > 0.001 || Math.abs(dy) > 0.001;
      place();
      on?.input?.(r.id, rounded(reg));
    };
    const up = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const { target, moved } = drag;
      drag = null;
      g.classList.remove('dragging');
      if (target.hasPointerCapture(e.pointerId)) target.releasePointerCapture(e.pointerId);
      if (moved) {
        reg = rounded(reg);
        on?.commit?.(r.id, reg.slice());
      }
    };
    for (const el of [rect, ...handles]) {
      el.addEventListener('pointerdown', down);
      el.addEventListener('pointermove', move);
      el.addEventListener('pointerup', up);
      el.addEventListener('pointercancel', up);
    }
    rect.addEventListener('keydown', (e) => {
      const d = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP] }[e.key];
      if (e.key === 'Enter') {
        e.preventDefault();
        reg = rounded(reg);
        on?.commit?.(r.id, reg.slice());
        return;
      }
      if (!d) return;
      e.preventDefault();
      let [x0, y0, x1, y1] = reg;
      if (e.shiftKey) {
        x1 = clamp(x1 + d[0], x0 + MIN_SIZE, 1);
        y1 = clamp(y1 + d[1], y0 + MIN_SIZE, 1);
      } else {
        const w = x1 - x0;
        const hh = y1 - y0;
        x0 = clamp(x0 + d[0], 0, 1 - w);
        y0 = clamp(y0 + d[1], 0, 1 - hh);
        x1 = x0 + w;
        y1 = y0 + hh;
      }
      reg = rounded([x0, y0, x1, y1]);
      place();
      on?.input?.(r.id, reg.slice());
    });
    return g;
  }

  return api;
}
