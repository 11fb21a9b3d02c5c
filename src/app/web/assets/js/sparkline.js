// Sparklines: a query's score over the last 10 minutes as an inline SVG polyline,
// fed from .../history on load and then from frame events (bounded per query).

import { s } from './dom.js';

export const WINDOW_MS = 10 * 60 * 1000;
const MAX_POINTS = 1200; // 2 a second for 10 minutes
const MIN_GAP_MS = 500;
const W = 200;
const H = 40;

/** A bounded, time-ordered series of [unix_ms, score]. */
export class Series {
  constructor(points = []) {
    this.points = points.filter((p) => Array.isArray(p) && Number.isFinite(p[1])).slice(-MAX_POINTS);
  }

  /** Appends a point (at most 2 a second); drops what fell out of the window. */
  push(t, score) {
    if (typeof score !== 'number' || !Number.isFinite(score)) return;
    const last = this.points[this.points.length - 1];
    if (last && t - last[0] < MIN_GAP_MS) return;
    this.points.push([t, score]);
    const from = t - WINDOW_MS;
    let drop = 0;
    while (drop < this.points.length && this.points[drop][0] < from) drop += 1;
    if (this.points.length - drop > MAX_POINTS) drop = this.points.length - MAX_POINTS;
    if (drop) this.points.splice(0, drop);
  }
}

/** An empty sparkline SVG (class sparkline) with an ON and OFF threshold line. */
export function sparkline(label) {
  return s(
    'svg',
    { class: 'sparkline', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label },
    s('line', { class: 'threshold on', x1: 0, x2: W, y1: -1, y2: -1 }),
    s('line', { class: 'threshold off', x1: 0, x2: W, y1: -1, y2: -1 }),
    s('polyline', { class: 'line', points: '' }),
  );
}

/** Redraws svg from series; scores are 0..1 unless they go beyond (counts). */
export function draw(svg, series, { on, off, now = Date.now() } = {}) {
  const pts = series.points;
  let max = 1;
  for (const p of pts) if (p[1] > max) max = p[1];
  const min = 0;
  const x = (t) => ((t - (now - WINDOW_MS)) / WINDOW_MS) * W;
  const y = (v) => H - 2 - ((v - min) / (max - min)) * (H - 4);
  const line = svg.querySelector('polyline');
  line.setAttribute('points', pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '));
  const [lon, loff] = svg.querySelectorAll('line.threshold');
  for (const [el, v] of [[lon, on], [loff, off]]) {
    const yy = typeof v === 'number' && max === 1 ? y(v) : -1;
    el.setAttribute('y1', yy);
    el.setAttribute('y2', yy);
  }
}
