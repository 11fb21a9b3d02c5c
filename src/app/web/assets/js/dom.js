// Element helpers: build HTML/SVG elements with text content only (never innerHTML),
// plus small formatting helpers shared by the pages.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs, isSvg) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (!isSvg && (k === 'value' || k === 'checked' || k === 'selected' || k === 'htmlFor')) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: h('a', {href, class}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs, false);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs, true);
  append(el, children);
  return el;
}

/** Replaces el's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Runs fn once the window's load event has fired (at once if it has). */
export function afterLoad(fn) {
  if (document.readyState === 'complete') fn();
  else window.addEventListener('load', () => fn(), { once: true });
}

/** The path part of a route, each piece URI-encoded. */
export function route(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(p)).join('/');
}

export const enc = encodeURIComponent;

/** A number as text with `digits` decimals, or "—". */
export function num(x, digits = 2) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—';
}

/** An RFC 3339 time (or unix ms) as local time; today's as time only. */
export function when(t) {
  if (t === undefined || t === null || t === '') return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** A count of seconds as "4.2 s", "3 min", "2 h 5 min". */
export function ago(sec) {
  if (typeof sec !== 'number' || !Number.isFinite(sec)) return '—';
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
  return `${Math.floor(sec / 86400)} d ${Math.floor((sec % 86400) / 3600)} h`;
}

/** A state value (string, number, null) as text. */
export function stateText(v) {
  if (v === undefined || v === null || v === '') return '—';
  return String(v);
}

/** The CSS class of a state: on, off or other. */
export function stateClass(v) {
  const t = v === undefined || v === null ? '' : String(v);
  if (t === 'ON') return 'on';
  if (t === 'OFF') return 'off';
  return t === '' ? 'none' : 'other';
}

/** A unique id for label/for pairs. */
let uid = 0;
export function nextId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}
