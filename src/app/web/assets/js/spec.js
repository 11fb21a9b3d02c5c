// Query specs (QueryConfig in src/query/config.rs): the kinds, which queries can be
// taught and their states, and the edit form that shows every field and turns the
// edited values back into a whole spec.

import { h, nextId } from './dom.js';
import { taughtByAttributes } from './live.js';

/** QueryKind, as written in the config. */
export const KINDS = ['yes_no', 'count', 'classify', 'caption', 'detect', 'read', 'ground', 'answer'];
/** Detail (caption). */
export const DETAILS = ['brief', 'detailed', 'more_detailed'];

/** Whether a query of this kind can be taught (yes_no, classify). */
export function teachable(cfg) {
  return !!cfg && (cfg.kind === 'yes_no' || cfg.kind === 'classify');
}

/** The states a taught query is labelled with. */
export function statesOf(cfg) {
  if (!cfg) return [];
  if (cfg.kind === 'yes_no') return ['ON', 'OFF'];
  if (cfg.kind === 'classify') return (cfg.labels || []).map(String);
  return [];
}

/** Whether the query is taught: its attributes carry examples/accuracy, or its config has examples or review_below. */
export function isTaught(camera, cfg) {
  if (!teachable(cfg)) return false;
  return taughtByAttributes(camera, cfg.id) || cfg.examples != null || cfg.review_below != null;
}

/**
 * The form's fields: name (the spec field), type, label, hint; `more` ones sit in a
 * folded group. Types: text, lines (one per line), optstr (empty = unset), number,
 * int, optnum, optint, duration ("30s", "1m 30s"; empty = default), optduration,
 * bool, region, detail.
 */
export const FIELDS = [
  { name: 'ask', type: 'text', label: 'Question', wide: true, required: true },
  { name: 'yes', type: 'lines', label: 'Yes prompts', hint: 'one per line (default: the question)' },
  { name: 'no', type: 'lines', label: 'No prompts', hint: 'one per line' },
  { name: 'labels', type: 'lines', label: 'Labels', hint: 'one per line (classify)' },
  { name: 'label', type: 'optstr', label: 'Detector label', hint: 'e.g. person (yolox)' },
  { name: 'on', type: 'number', label: 'ON at score ≥', step: '0.01' },
  { name: 'off', type: 'number', label: 'OFF at score ≤', step: '0.01' },
  { name: 'min_frames', type: 'int', label: 'Min frames' },
  { name: 'min_duration', type: 'duration', label: 'Min duration', hint: 'e.g. 2s' },
  { name: 'cooldown', type: 'duration', label: 'Cooldown', hint: 'e.g. 1m' },
  { name: 'every', type: 'duration', label: 'Every', hint: 'slow models, e.g. 30s' },
  { name: 'region', type: 'region', label: 'Region', hint: 'x0, y0, x1, y1 (0–1) or empty = whole frame', wide: true },
  { name: 'off_delay', type: 'duration', label: 'Off delay', more: true },
  { name: 'min_interval', type: 'duration', label: 'Min interval', more: true },
  { name: 'expire_after', type: 'optduration', label: 'Expire after', more: true },
  { name: 'on_change', type: 'bool', label: 'Also run on change', more: true },
  { name: 'min_score', type: 'optnum', label: 'Min detection score', step: '0.01', more: true },
  { name: 'pattern', type: 'optstr', label: 'Pattern (read)', more: true },
  { name: 'max_tokens', type: 'optint', label: 'Max tokens', more: true },
  { name: 'detail', type: 'detail', label: 'Detail (caption)', more: true },
  { name: 'name', type: 'optstr', label: 'Entity name', more: true },
  { name: 'unit', type: 'optstr', label: 'Unit', more: true },
  { name: 'review_below', type: 'optnum', label: 'Review below confidence', step: '0.01', more: true },
  { name: 'escalate', type: 'optstr', label: 'Escalate to model', more: true },
];

/** A region as the form shows it. */
export function regionText(r) {
  return Array.isArray(r) && r.length === 4 ? r.map((v) => Number(v).toFixed(3)).join(', ') : '';
}

/** Parses the region field: null for whole frame; throws a one-line reason. */
export function parseRegion(text) {
  const t = String(text || '').trim();
  if (t === '' || /^whole( frame)?$/i.test(t)) return null;
  const parts = t.split(/[\s,;]+/).filter(Boolean).map(Number);
  if (parts.length !== 4 || parts.some((v) => !Number.isFinite(v))) throw new Error('region: four numbers x0, y0, x1, y1, or empty for the whole frame');
  const [x0, y0, x1, y1] = parts;
  if (parts.some((v) => v < 0 || v > 1)) throw new Error('region: every number between 0 and 1');
  if (!(x0 < x1 && y0 < y1)) throw new Error('region: x0 < x1 and y0 < y1');
  return parts.map((v) => Math.round(v * 1000) / 1000);
}

function fieldValue(f, cfg) {
  const v = cfg[f.name];
  if (v === undefined || v === null) return '';
  if (f.type === 'lines') return Array.isArray(v) ? v.join('\n') : String(v);
  if (f.type === 'region') return regionText(v);
  // Thresholds arrive as f32 (0.6000000238...): shown as they were written.
  if (typeof v === 'number' && !Number.isInteger(v)) return String(Math.round(v * 1e4) / 1e4);
  return String(v);
}

function input(f, cfg, id) {
  const value = fieldValue(f, cfg);
  if (f.type === 'lines') return h('textarea', { id, name: f.name, rows: 2, value, spellcheck: 'false' });
  if (f.type === 'bool') return h('input', { id, name: f.name, type: 'checkbox', checked: cfg[f.name] !== false });
  if (f.type === 'detail') {
    const cur = cfg.detail || 'brief';
    return h('select', { id, name: f.name }, DETAILS.map((d) => h('option', { value: d, selected: d === cur }, d)));
  }
  const numeric = ['number', 'int', 'optnum', 'optint'].includes(f.type);
  return h('input', {
    id,
    name: f.name,
    type: numeric ? 'number' : 'text',
    step: numeric ? f.step || '1' : undefined,
    inputmode: f.type === 'region' ? 'decimal' : undefined,
    placeholder: f.type === 'region' ? 'whole frame' : f.hint && !numeric ? f.hint : undefined,
    required: f.required || undefined,
    autocomplete: 'off',
    value,
  });
}

/** One labelled field. */
export function field(f, cfg, extra) {
  const id = nextId(`f-${f.name}`);
  const el = input(f, cfg, id);
  const cls = ['field', f.wide && 'wide', f.type === 'bool' && 'check'];
  if (f.type === 'bool') return h('div', { class: cls }, el, h('label', { for: id }, f.label));
  return h('div', { class: cls }, h('label', { for: id }, f.label), el, f.hint && (f.type === 'lines' || f.type === 'region') ? h('small', { class: 'hint' }, f.hint) : null, extra);
}

/** The fields of an edit form for cfg (the main ones, then a folded group of the rest). */
export function editFields(cfg) {
  const main = FIELDS.filter((f) => !f.more).map((f) => field(f, cfg));
  const more = FIELDS.filter((f) => f.more).map((f) => field(f, cfg));
  return [h('div', { class: 'fields' }, main), h('details', { class: 'more' }, h('summary', {}, 'More settings'), h('div', { class: 'fields' }, more))];
}

/** The whole spec: cfg with the form's values; throws a one-line reason for a bad value. */
export function specFrom(form, cfg) {
  const spec = structuredClone(cfg);
  for (const f of FIELDS) {
    const el = form.elements.namedItem(f.name);
    if (!el) continue;
    const raw = f.type === 'bool' ? el.checked : String(el.value).trim();
    switch (f.type) {
      case 'text':
        spec[f.name] = raw;
        break;
      case 'lines':
        spec[f.name] = raw.split('\n').map((l) => l.trim()).filter(Boolean);
        break;
      case 'optstr':
        if (raw === '') delete spec[f.name];
        else spec[f.name] = raw;
        break;
      case 'number':
      case 'optnum':
      case 'int':
      case 'optint': {
        if (raw === '') {
          delete spec[f.name];
          break;
        }
        const n = Number(raw);
        if (!Number.isFinite(n)) throw new Error(`${f.label}: a number`);
        if (f.type.endsWith('int') && !Number.isInteger(n)) throw new Error(`${f.label}: a whole number`);
        spec[f.name] = n;
        break;
      }
      case 'duration':
      case 'optduration':
        if (raw === '') delete spec[f.name];
        else spec[f.name] = raw;
        break;
      case 'bool':
        spec[f.name] = raw;
        break;
      case 'detail':
        spec[f.name] = raw || 'brief';
        break;
      case 'region':
        spec.region = parseRegion(raw);
        break;
      default:
        break;
    }
  }
  return spec;
}
