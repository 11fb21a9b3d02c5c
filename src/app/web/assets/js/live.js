// The live stream (SSE /api/live): reconnects with backoff, keeps what the retained
// messages say (camera status, query state and attributes) and the latest frame
// report per camera, and hands every event to whoever subscribed.

import { request, toLogin } from './api.js';

const subscribers = new Map(); // topic -> Set(fn)
const cameraStatus = new Map(); // cam -> status text
const queries = new Map(); // "cam/q" -> {state, attributes, score, confidence}
const frames = new Map(); // cam -> last frame report
let connection = 'connecting';
let source = null;
let backoff = 1000;
let timer = null;

/** Subscribes fn to a topic: frame, mqtt, mqtt:<kind>, status, query, connection. Returns the unsubscribe. */
export function on(topic, fn) {
  if (!subscribers.has(topic)) subscribers.set(topic, new Set());
  subscribers.get(topic).add(fn);
  return () => subscribers.get(topic)?.delete(fn);
}

function emit(topic, value) {
  for (const fn of subscribers.get(topic) || []) {
    try {
      fn(value);
    } catch (e) {
      // A page's handler failing must not stop the others; show it.
      emit('failure', `live update failed: ${e && e.message ? e.message : e}`);
    }
  }
}

const key = (cam, q) => `${cam}/${q}`;

/** A camera's last known status (or undefined). */
export function statusOf(cam) {
  return cameraStatus.get(cam);
}

/** Sets a camera's status from /api/cameras unless the stream said otherwise already. */
export function seedStatus(cam, status) {
  if (!cameraStatus.has(cam) && status) cameraStatus.set(cam, status);
}

/** What is known of a query: {state, attributes, score, confidence}. */
export function queryOf(cam, q) {
  return queries.get(key(cam, q)) || {};
}

/** Whether the attributes say the query is taught (they carry examples/accuracy). */
export function taughtByAttributes(cam, q) {
  const a = queryOf(cam, q).attributes;
  return !!(a && typeof a === 'object' && ('examples' in a || 'accuracy' in a));
}

/** The last frame report of a camera. */
export function lastFrame(cam) {
  return frames.get(cam);
}

/** connecting | live | reconnecting */
export function connectionState() {
  return connection;
}

function setConnection(state) {
  connection = state;
  emit('connection', state);
}

function update(cam, q, patch) {
  const k = key(cam, q);
  const cur = queries.get(k) || {};
  const next = { ...cur, ...patch };
  queries.set(k, next);
  emit('query', { camera: cam, query: q, ...next });
}

function onMqtt(msg) {
  const { camera, query, kind, payload } = msg;
  const cleared = payload === '';
  if (kind === 'status' && camera) {
    if (cleared) cameraStatus.delete(camera);
    else cameraStatus.set(camera, String(payload));
    emit('status', { camera, status: cleared ? undefined : String(payload) });
  } else if (kind === 'state' && camera && query) {
    if (cleared) {
      queries.delete(key(camera, query));
      emit('query', { camera, query, removed: true });
    } else update(camera, query, { state: payload });
  } else if (kind === 'attributes' && camera && query && !cleared) {
    const a = payload && typeof payload === 'object' ? payload : {};
    const patch = { attributes: a };
    if ('score' in a) patch.score = a.score;
    if ('confidence' in a) patch.confidence = a.confidence;
    update(camera, query, patch);
  }
  emit('mqtt', msg);
  emit(`mqtt:${kind}`, msg);
}

function onFrame(f) {
  if (!f || !f.camera) return;
  frames.set(f.camera, f);
  for (const q of f.queries || []) {
    const k = key(f.camera, q.id);
    const cur = queries.get(k) || {};
    queries.set(k, { ...cur, state: q.state ?? cur.state, score: q.score, confidence: q.confidence });
  }
  emit('frame', f);
}

function parse(e) {
  try {
    return JSON.parse(e.data);
  } catch {
    return null;
  }
}

function connect() {
  timer = null;
  if (source) source.close();
  source = new EventSource('/api/live');
  source.addEventListener('open', () => {
    backoff = 1000;
    setConnection('live');
  });
  source.addEventListener('mqtt', (e) => {
    const m = parse(e);
    if (m) onMqtt(m);
  });
  source.addEventListener('frame', (e) => {
    const f = parse(e);
    if (f) onFrame(f);
  });
  // The daemon says this page fell behind: start again (the retained state comes first).
  source.addEventListener('lagged', () => reconnect(0));
  source.addEventListener('error', () => reconnect(backoff));
}

function reconnect(delay) {
  if (source) {
    source.close();
    source = null;
  }
  if (timer) return;
  setConnection('reconnecting');
  const wait = delay + Math.random() * 250;
  backoff = Math.min(backoff * 2, 30000);
  timer = setTimeout(async () => {
    // A session that expired gets 401 on the stream too: log in again instead of retrying.
    const r = await request('GET', '/api/session', undefined, { expect: [0, 401, 502, 503] });
    if (r.status === 401) {
      toLogin();
      return;
    }
    connect();
  }, wait);
}

/** Starts the stream (once). */
export function start() {
  if (!source && !timer) connect();
}
