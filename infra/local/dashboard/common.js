// Helpers shared by the dashboard's self-contained modules (shadow.js, events.js, filters.js): the
// signed-in key is the one app.js keeps in sessionStorage; API errors keep their status and field.
/**
 * Where the API is: the directory above this script (`<base>/dashboard/common.js`), so the page works
 * at the local stack's root and under API Gateway's stage prefix (`https://…/v1/`) alike.
 */
export const API_BASE = new URL('../', import.meta.url);

/** An API path (`/devices?limit=1`) as a URL under API_BASE. */
export const apiUrl = (path) => new URL(String(path).replace(/^\//, ''), API_BASE);

export const $ = (sel, root = document) => root.querySelector(sel);

export const esc = (v) =>
  String(v ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

/** An API error: `status` (HTTP), `code` and `field` from the API's {"error":{...}} body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.field = body?.error?.field;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const key = sessionStorage.getItem('dualpath-key') ?? '';
  const res = await fetch(apiUrl(path), {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

export const clock = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });

export const ago = (t) => {
  if (!t) return '–';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};

/** Runs `fn` every `ms` while `panel` is shown and a key is set; never two at once. */
export function whileShown(panel, ms, fn) {
  let busy = false;
  setInterval(async () => {
    if (panel.hidden || busy || !sessionStorage.getItem('dualpath-key')) return;
    busy = true;
    try {
      await fn();
    } catch {
      /* each module shows its own errors */
    } finally {
      busy = false;
    }
  }, ms);
}

const show = (v) =>
  v === null || v === undefined ? '∅' : typeof v === 'object' ? JSON.stringify(v) : String(v);

// A value at its type's precision: a 32-bit float is shown as the shortest decimal that reads back as
// the same float32 (16.86, not 16.860000610351562), a double as is, an integer as an integer. "Float"
// is Sparkplug's float32 and LwM2M's float (32 or 64 bits on the wire): a value exactly representable
// as float32 is shown at float32 precision, any other as the double it is.
const INTEGER_TYPES = /^(u?int(8|16|32|64)|integer|unsigned ?integer|datetime|time)$/i;
export function formatValue(value, type) {
  if (typeof value === 'number' && Number.isFinite(value)) {
    if (INTEGER_TYPES.test(type ?? '') && Number.isInteger(value)) return String(value);
    if (/^float$/i.test(type ?? '') && Math.fround(value) === value) {
      for (let p = 1; p <= 9; p++) {
        const s = Number(value.toPrecision(p));
        if (Math.fround(s) === value) return String(s);
      }
    }
    return String(value);
  }
  if (Array.isArray(value) && /float/i.test(type ?? ''))
    return `[${value.map((v) => formatValue(v, 'Float')).join(', ')}]`;
  return show(value);
}
