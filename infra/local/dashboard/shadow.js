// The device shadow panel on the Device tab (ADR 0023, ADR 0021 amendment): desired vs reported vs
// delta for the device type's writable fields, a form to set (or clear) one desired value, the recent
// reconciliations. Values are validated by the API (its error names the field, shown as is); the write
// carries the version the user started editing from, so a change made meanwhile is a 409 shown as a
// conflict instead of being overwritten. Self-contained: refreshes every 2 s while the tab is shown.
import { $, ago, api, clock, esc, formatValue, whileShown } from './common.js';

const PANEL = `
  <h2>Shadow <span class="small" id="shadow-version"></span></h2>
  <table id="shadow-table"><thead><tr><th>Field</th><th>Writes</th><th>Desired</th><th>Reported</th><th>Delta</th></tr></thead><tbody></tbody></table>
  <form id="shadow-form" class="row tight" hidden>
    <label>Field <select id="shadow-field"></select></label>
    <label>Desired value <input id="shadow-value" autocomplete="off" placeholder="empty clears the field"></label>
    <button type="submit">Set desired</button>
  </form>
  <p id="shadow-message" class="small" role="status"></p>
  <p id="shadow-error" class="error" role="alert"></p>
  <h3>Reconciliations <span class="small">(newest first)</span></h3>
  <ul id="shadow-recs" class="events"></ul>`;

const state = { device: null, view: null, editVersion: null };

const typeOf = (s) => (s.protocol === 'sparkplug' ? s.datatype : s.type);
const specText = (s) =>
  s.protocol === 'sparkplug'
    ? `Sparkplug ${s.device ? `${s.device}/` : ''}${s.metric} (${s.datatype})`
    : `LwM2M ${s.path} (${s.type})`;

/** The typed value for the API, from the input's text (the API validates it against the field). */
function parse(text, spec) {
  if (text === '') return null;
  const t = typeOf(spec);
  if (/^bool/i.test(t)) return text === 'true' ? true : text === 'false' ? false : text;
  if (/^(string|text)$/i.test(t)) return text;
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

function render(view) {
  state.view = view;
  const panel = $('#shadow-panel');
  panel.dataset.device = view.deviceId;
  panel.dataset.version = String(view.version);
  panel.dataset.delta = String(Object.keys(view.delta).length);
  $('#shadow-version').textContent = `version ${view.version}`;
  const names = Object.keys(view.writable);
  $('#shadow-form').hidden = names.length === 0;
  $('#shadow-table tbody').innerHTML = names.length
    ? names
        .map((k) => {
          const spec = view.writable[k];
          const t = typeOf(spec);
          const has = Object.hasOwn(view.desired, k);
          const rep = view.reported[k];
          const pending = Object.hasOwn(view.delta, k);
          return `<tr data-field="${esc(k)}"><td>${esc(k)}</td><td class="small">${esc(specText(spec))}</td>
            <td class="desired">${has ? esc(formatValue(view.desired[k], t)) : '–'}</td>
            <td class="reported">${rep ? `${esc(formatValue(rep.value, t))} <span class="small">${esc(ago(rep.time))}</span>` : '–'}</td>
            <td class="delta" data-pending="${pending}">${pending ? `<span class="st st-open">pending ${esc(formatValue(view.delta[k], t))}</span>` : has ? '<span class="st st-resolved">in sync</span>' : '–'}</td></tr>`;
        })
        .join('')
    : '<tr class="empty"><td colspan="5">This device type declares no writable fields (PUT /device-types/{type} with <code>writable</code>).</td></tr>';
  const sel = $('#shadow-field');
  if ([...sel.options].map((o) => o.value).join('\n') !== names.join('\n')) {
    const current = sel.value;
    sel.innerHTML = names.map((k) => `<option value="${esc(k)}">${esc(k)}</option>`).join('');
    if (names.includes(current)) sel.value = current;
  }
  $('#shadow-recs').innerHTML =
    view.reconciliations
      .slice(0, 5)
      .map(
        (r) =>
          `<li><span class="tag">${esc(r.status)}</span> ${esc(clock(r.at))} ${esc(r.fields.join(', '))}${r.commandId ? ` <span class="small">${esc(r.commandId)}</span>` : ''}${r.error ? ` — ${esc(r.error)}` : ''}</li>`,
      )
      .join('') || '<li class="small">None yet.</li>';
}

async function refresh() {
  const id = $('#device-select')?.value;
  if (!id) return;
  if (id !== state.device) {
    state.device = id;
    state.editVersion = null;
    $('#shadow-message').textContent = '';
    $('#shadow-error').textContent = '';
  }
  try {
    const view = await api(`/devices/${encodeURIComponent(id)}/shadow`);
    if ($('#device-select').value === id) render(view);
  } catch (e) {
    $('#shadow-form').hidden = true;
    $('#shadow-table tbody').innerHTML = '';
    $('#shadow-error').textContent = e.message;
  }
}

async function submit(ev) {
  ev.preventDefault();
  const view = state.view;
  const field = $('#shadow-field').value;
  if (!view || !field) return;
  const value = parse($('#shadow-value').value, view.writable[field]);
  const version = state.editVersion ?? view.version;
  const out = $('#shadow-message');
  const err = $('#shadow-error');
  out.textContent = '';
  err.textContent = '';
  delete err.dataset.field;
  delete err.dataset.status;
  try {
    const next = await api(
      `/devices/${encodeURIComponent(view.deviceId)}/shadow/desired?version=${encodeURIComponent(version)}`,
      { method: 'PUT', body: { [field]: value } },
    );
    state.editVersion = null;
    $('#shadow-value').value = '';
    const rec = next.reconciliations[0];
    out.textContent =
      value === null
        ? `Cleared ${field}.`
        : `Set ${field} = ${formatValue(value, typeOf(view.writable[field]))}${
            rec && Object.hasOwn(next.delta, field) ? `; command ${rec.status}` : ''
          }.`;
    render(next);
  } catch (e) {
    err.dataset.status = String(e.status ?? '');
    if (e.field) err.dataset.field = e.field;
    if (e.status === 409) {
      // Someone changed the shadow after this edit began: nothing was written. Show the current values.
      err.textContent = `Conflict: the shadow changed after you started editing (version ${version}); nothing was written. The current values are shown — check them and set again.`;
      state.editVersion = null;
      await refresh();
    } else {
      err.textContent = e.field && !e.message.includes(e.field) ? `${e.field}: ${e.message}` : e.message;
    }
  }
}

function init() {
  const panel = $('#shadow-panel');
  if (!panel) return;
  panel.innerHTML = PANEL;
  // The version an edit starts from: taken when the user begins typing or picks a field.
  const begin = () => {
    if (state.editVersion === null && state.view) state.editVersion = state.view.version;
  };
  $('#shadow-value').addEventListener('input', begin);
  $('#shadow-field').addEventListener('change', begin);
  $('#shadow-form').addEventListener('submit', submit);
  $('#device-select').addEventListener('change', () => void refresh());
  whileShown($('#tab-device'), 2000, refresh);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
