// Dualpath local dashboard: plain ES module, no build step. Talks only to the REST API (the same routes
// API Gateway serves) plus /local/status, which the local stack adds for pipeline counters.
import { apiUrl, formatValue } from './common.js';
import { filterParams, readHash, saveHash, setFilters } from './filters.js';
import * as live from './live.js';

const $ = (sel) => document.querySelector(sel);
const state = {
  key: null,
  principal: null,
  device: null,
  lastStored: null,
  flow: [],
  events: null,
  eventsNewest: null,
};

function esc(text) {
  return String(text ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

async function api(path, { key = state.key, method = 'GET', body } = {}) {
  const res = await fetch(apiUrl(path), {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(json?.error?.message ?? `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return json;
}

const fmt = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US'));
const ago = (t) => {
  if (!t) return '–';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};

export { formatValue };

// ---- charts: a tiny SVG line chart ------------------------------------------------------------
// `markers` (alerts: { id, at, severity, label }) are drawn as vertical lines at their time; the time axis
// spans the data and the markers, so an alert opened after the last bucket's start is still shown.
function lineChart(svg, points, { width = 600, height = 160, markers = [] } = {}) {
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  if (points.length === 0) {
    svg.innerHTML = `<text x="10" y="20">no data in this window</text>`;
    svg.dataset.alerts = '0';
    return;
  }
  const pad = { l: 44, r: 8, t: 8, b: 18 };
  const xs = [...points.map((p) => p.x), ...markers.map((m) => m.at)];
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x) => pad.l + ((x - x0) / Math.max(1, x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join('');
  const t = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
  svg.innerHTML = `
    <line class="axis" x1="${pad.l}" y1="${height - pad.b}" x2="${width - pad.r}" y2="${height - pad.b}"/>
    <line class="axis" x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${height - pad.b}"/>
    <text x="2" y="${pad.t + 8}">${esc(y1.toPrecision(4))}</text>
    <text x="2" y="${height - pad.b}">${esc(y0.toPrecision(4))}</text>
    <text x="${pad.l}" y="${height - 4}">${t(x0)}</text>
    <text x="${width - pad.r - 48}" y="${height - 4}">${t(x1)}</text>
    <path class="line" d="${d}"><title>${points.length} points</title></path>
    ${markers
      .map(
        (m) => `<g class="alert-marker sev-${esc(m.severity)}" data-alert-id="${esc(m.id)}">
      <line x1="${sx(m.at).toFixed(1)}" y1="${pad.t}" x2="${sx(m.at).toFixed(1)}" y2="${height - pad.b}"/>
      <circle cx="${sx(m.at).toFixed(1)}" cy="${pad.t + 3}" r="3.5"/><title>${esc(m.label)}</title></g>`,
      )
      .join('')}`;
  svg.dataset.points = String(points.length);
  svg.dataset.alerts = String(markers.length);
}

// ---- overview ----------------------------------------------------------------------------------
async function refreshOverview() {
  if (state.principal?.kind === 'admin') {
    try {
      const s = await api('/local/status');
      $('#m-messages').textContent = fmt((s.messages?.sparkplug ?? 0) + (s.messages?.lwm2m ?? 0));
      $('#m-messages-split').textContent =
        `Sparkplug ${fmt(s.messages?.sparkplug)} · LwM2M ${fmt(s.messages?.lwm2m)} · refused ${fmt(s.refused)}`;
      $('#m-stored').textContent = fmt(s.readingsStored);
      $('#m-quarantined').textContent = fmt(s.quarantined);
      $('#m-lag').textContent = `${fmt(s.lag?.records ?? 0)} rec`;
      $('#m-lag-split').textContent = `Sparkplug ${fmt(s.lag?.sparkplug)} · LwM2M ${fmt(s.lag?.lwm2m)}`;
      // Physical devices: one device on both protocols counts once (the split below counts per protocol).
      $('#m-online').textContent = fmt(
        s.online?.devices ?? Math.max(s.online?.sparkplug ?? 0, s.online?.lwm2m ?? 0),
      );
      $('#m-online-split').textContent =
        `Sparkplug ${fmt(s.online?.sparkplug)} · LwM2M ${fmt(s.online?.lwm2m)}`;
      const now = Date.now();
      if (state.lastStored) {
        const rate = ((s.readingsStored - state.lastStored.v) * 1000) / Math.max(1, now - state.lastStored.t);
        state.flow.push({ x: now, y: Math.max(0, rate) });
        state.flow = state.flow.slice(-120);
        $('#m-rate').textContent = `${fmt(Math.round(rate))} readings/s`;
      }
      state.lastStored = { t: now, v: s.readingsStored };
      lineChart($('#flow-chart'), state.flow);
    } catch (e) {
      $('#m-rate').textContent = e.message;
    }
  }
  try {
    const { devices = [] } = await api('/devices?limit=100');
    $('#devices-table tbody').innerHTML = devices
      .map(
        (
          d,
        ) => `<tr data-device="${esc(d.id)}"><td><a href="#" data-open="${esc(d.id)}">${esc(d.id)}</a></td><td>${esc(d.type)}</td>
        <td>${esc((d.protocols ?? []).join(', '))}</td><td>${d.sparkplug ? (d.sparkplug.online ? 'online' : 'offline') : '–'}</td>
        <td>${d.lwm2m ? (d.lwm2m.online ? 'registered' : 'expired') : '–'}</td><td>${esc(ago(d.lastSeen))}</td></tr>`,
      )
      .join('');
    fillDeviceSelect(devices);
  } catch (e) {
    $('#devices-table tbody').innerHTML = `<tr><td colspan="6" class="error">${esc(e.message)}</td></tr>`;
  }
  try {
    await refreshEvents();
  } catch {
    /* events are best-effort on the overview */
  }
}

// Recent lifecycle events. An event's id sorts by its time, and that is the device's timestamp (a
// Sparkplug birth carries the edge node's clock), so an event can be stored after a later one has been
// shown: a cursor that only moves forward would skip it for good. Each poll re-reads from a look-back
// window behind the newest event shown and merges by id.
const EVENTS_LOOKBACK_MS = 5 * 60_000;
const EVENTS_SHOWN = 200;
async function refreshEvents() {
  // The first poll shows the last 10 minutes; a device clock ahead of ours does not move the window.
  const from = state.eventsNewest
    ? Math.min(state.eventsNewest, Date.now()) - EVENTS_LOOKBACK_MS
    : Date.now() - 10 * 60_000;
  // A cursor is an event id (15 digits of epoch ms, '-', a suffix): start just before any id of that ms.
  let since = `${String(from).padStart(15, '0')}-!`;
  state.events ??= new Map();
  for (let page = 0; page < 5 && since; page++) {
    const { events = [], nextCursor } = await api(`/events?limit=200&since=${encodeURIComponent(since)}`);
    for (const e of events) {
      state.events.set(e.id, e);
      state.eventsNewest = Math.max(state.eventsNewest ?? 0, e.time ?? 0);
    }
    since = nextCursor;
  }
  const shown = [...state.events.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  for (const e of shown.slice(EVENTS_SHOWN)) state.events.delete(e.id);
  const list = $('#events');
  list.innerHTML = shown
    .slice(0, EVENTS_SHOWN)
    .map(
      (e) =>
        `<li data-event-id="${esc(e.id)}"><span class="tag ${esc(e.type)}">${esc(e.type)}</span> ${esc(new Date(e.time).toLocaleTimeString('en-GB'))} <b>${esc(e.deviceId)}</b>${e.subDevice ? `/${esc(e.subDevice)}` : ''} ${esc(e.detail ?? '')}</li>`,
    )
    .join('');
}

// The Device tab on one device (a device past the overview's first page gets its own option).
function openDevice(id) {
  const sel = $('#device-select');
  if (![...sel.options].some((o) => o.value === id)) sel.add(new Option(id, id));
  sel.value = id;
  selectTab('device');
}

function fillDeviceSelect(devices) {
  const sel = $('#device-select');
  const current = sel.value;
  sel.innerHTML = devices
    .map((d) => `<option value="${esc(d.id)}">${esc(d.id)} (${esc(d.type)})</option>`)
    .join('');
  if (current && devices.some((d) => d.id === current)) sel.value = current;
}

// ---- device view -------------------------------------------------------------------------------
// Refreshes overlap (the poll, a device change, the window select): only the latest may draw, and
// the page says when one is in flight (data-device-refresh) so a viewer or a test can wait it out.
let deviceRefreshes = 0;
let deviceRefreshing = 0;
async function refreshDevice() {
  const id = $('#device-select').value;
  if (!id) return;
  const gen = ++deviceRefreshes;
  deviceRefreshing++;
  document.body.dataset.deviceRefresh = 'busy';
  try {
    await drawDevice(id, () => gen !== deviceRefreshes);
  } finally {
    if (--deviceRefreshing === 0) document.body.dataset.deviceRefresh = 'idle';
  }
}

async function drawDevice(id, superseded) {
  const windowMs = Number($('#window-select').value);
  const to = Date.now();
  const from = to - windowMs;
  let device;
  try {
    device = await api(`/devices/${encodeURIComponent(id)}`);
  } catch (e) {
    if (superseded()) return;
    // A device this key may not see (an application key: another type's, or missing: one answer for
    // both) or that does not exist: say so, and show nothing of it.
    if (e.status !== 403 && e.status !== 404) throw e;
    live.unwatch();
    const err = $('#device-error');
    err.hidden = false;
    err.dataset.status = String(e.status);
    err.textContent = `${e.status === 403 ? 'Not allowed' : 'Not found'}: ${e.message}`;
    for (const sel of ['#charts', '#state-table tbody', '#objects']) $(sel).innerHTML = '';
    $('#device-status').textContent = '';
    $('#device-status').className = 'badge';
    return;
  }
  if (superseded()) return;
  $('#device-error').hidden = true;
  live.watchDevice(id, state.key);
  const online = device.sparkplug?.online || device.lwm2m?.online;
  $('#device-status').textContent = online ? 'online' : 'offline';
  $('#device-status').className = `badge ${online ? 'online' : 'offline'}`;
  const objects = device.lwm2m?.objects ?? device.lwm2m?.registration?.objects ?? [];
  $('#objects').innerHTML = objects.length
    ? objects
        .map(
          (o) =>
            `<li>/${esc(o.id)} ${o.version ? `v${esc(o.version)}` : ''} instances ${esc((o.instances ?? []).join(', '))}</li>`,
        )
        .join('')
    : '<li>–</li>';
  const stateRes = await api(`/devices/${encodeURIComponent(id)}/state`);
  if (superseded()) return;
  const points = Array.isArray(stateRes) ? stateRes : (stateRes.points ?? stateRes.metrics ?? []);
  $('#state-table tbody').innerHTML = points
    .map(
      (
        p,
      ) => `<tr data-metric="${esc(p.subDevice ? `${p.subDevice}/${p.metric}` : p.metric)}"><td>${esc(p.subDevice ? `${p.subDevice}/${p.metric}` : p.metric)}</td><td>${esc(p.name ?? '')}</td><td class="value" title="${esc(p.type ?? '')}">${esc(formatValue(p.value, p.type))}</td>
      <td>${esc(p.unit ?? '')}</td><td>${esc(ago(p.time))}</td><td>${esc(p.quality)}</td></tr>`,
    )
    .join('');
  const numeric = points
    .filter((p) => typeof p.value === 'number' || typeof p.value === 'boolean')
    .slice(0, 12);
  const interval = windowMs <= 900_000 ? '10s' : windowMs <= 3_600_000 ? '1m' : '15m';
  // The device's alerts opened in this window, as markers on the chart of their metric (alerts of
  // device-level rules, which have no metric, on every chart). Best effort: the charts render without.
  const alerts = await api(
    `/alerts?deviceId=${encodeURIComponent(id)}&since=${from}&until=${to}&limit=100`,
  ).then(
    (r) => r.alerts ?? [],
    () => [],
  );
  const markersFor = (p) =>
    alerts
      .filter(
        (a) =>
          a.metric === undefined ||
          (a.metric === p.metric && (a.subDevice ?? undefined) === (p.subDevice ?? undefined)),
      )
      .map((a) => ({
        id: a.id,
        at: a.openedAt,
        severity: a.severity,
        label: `${a.severity}: ${a.ruleName} (${a.status}) opened ${clock(a.openedAt)}${a.value !== undefined ? `, value ${alertValue(a.value)}` : ''}`,
      }));
  // Drawn off the page and swapped in whole: the charts (and their alert markers) never blink empty.
  const charts = document.createElement('div');
  charts.innerHTML = numeric
    .map(
      (p, i) =>
        `<div class="chart-box"><h4>${esc(p.name ? `${p.name} (${p.metric})` : p.metric)}${p.unit ? ` [${esc(p.unit)}]` : ''}</h4><svg class="chart" id="chart-${i}"></svg></div>`,
    )
    .join('');
  await Promise.all(
    numeric.map(async (p, i) => {
      const q = new URLSearchParams({
        metric: p.metric,
        from: String(from),
        to: String(to),
        interval,
        agg: 'avg,min,max,count',
      });
      if (p.subDevice) q.set('subDevice', p.subDevice);
      const res = await api(`/devices/${encodeURIComponent(id)}/telemetry?${q}`);
      const buckets = res.buckets ?? [];
      lineChart(
        charts.querySelector(`#chart-${i}`),
        buckets.filter((b) => b.avg !== undefined && b.avg !== null).map((b) => ({ x: b.start, y: b.avg })),
        { height: 120, width: 320, markers: markersFor(p) },
      );
    }),
  );
  if (superseded()) return;
  $('#charts').replaceChildren(...charts.childNodes);
}

async function sendCommand(ev) {
  ev.preventDefault();
  const id = $('#device-select').value;
  const [protocol, operation] = $('#cmd-op').value.split(':');
  const body = { protocol, operation };
  if (protocol === 'lwm2m') body.path = $('#cmd-path').value;
  const value = $('#cmd-value').value;
  if (operation === 'write') body.value = Number.isNaN(Number(value)) || value === '' ? value : Number(value);
  if (operation === 'execute' && value) body.args = value;
  const out = $('#command-result');
  try {
    const created = await api(`/devices/${encodeURIComponent(id)}/commands`, { method: 'POST', body });
    out.textContent = `${created.commandId}: pending…`;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const cmd = await api(
        `/devices/${encodeURIComponent(id)}/commands/${encodeURIComponent(created.commandId)}`,
      );
      out.textContent = JSON.stringify(cmd, null, 2);
      out.dataset.status = cmd.status;
      if (cmd.status !== 'pending') break;
    }
  } catch (e) {
    out.textContent = `error: ${e.message}`;
  }
}

// ---- alerts --------------------------------------------------------------------------------------
const clock = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });
const when = (t) => (t ? `${new Date(t).toLocaleDateString('en-CA')} ${clock(t)}` : '–');
const alertsState = { historyToken: undefined, historyPages: 0, selected: null };

// An alert carries the reading's value, not its type: a number that is exactly a float32 (a Sparkplug
// Float, the common case) is shown as the float32's shortest decimal; any other number as is.
const alertValue = (v) => formatValue(v, 'Float');

function alertCells(a, { ruleId = true } = {}) {
  const where = a.subDevice ? `${a.deviceId}/${a.subDevice}` : a.deviceId;
  return `<td><span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span></td>
    <td title="${esc(a.ruleId)}">${esc(a.ruleName)}${ruleId ? ` <span class="small">${esc(a.ruleId)}</span>` : ''}</td>
    <td>${esc(where)}</td><td>${esc(a.metric ?? '–')}</td>
    <td class="value">${esc(a.value !== undefined ? alertValue(a.value) : (a.score ?? '–'))}</td><td title="${esc(a.reason)}">${esc(when(a.openedAt))}</td>
    <td class="status" data-status="${esc(a.status)}"><span class="st st-${esc(a.status)}">${esc(a.status)}</span></td>`;
}

// The number of open alerts on the tab, kept current from every tab (best effort).
function showAlertCount(open) {
  const count = open.alerts?.length ?? 0;
  $('#alerts-count').hidden = count === 0;
  $('#alerts-count').textContent = open.nextToken ? `${count}+` : String(count);
}

async function refreshAlerts() {
  try {
    // Active = open + acknowledged (an acknowledged alert stays until its condition clears or a user resolves it).
    const f = filterParams('alerts');
    const [open, acked] = await Promise.all([
      api(`/alerts?status=open&limit=100&${f}`),
      api(`/alerts?status=acknowledged&limit=100&${f}`),
    ]);
    const active = [...(open.alerts ?? []), ...(acked.alerts ?? [])].sort((a, b) => b.openedAt - a.openedAt);
    // The tab's count is of every open alert the key sees, not of the filtered list.
    if (f.size === 0) showAlertCount(open);
    $('#alerts-active tbody').innerHTML = active.length
      ? active
          .map(
            (a) =>
              `<tr data-alert-id="${esc(a.id)}" data-device="${esc(a.deviceId)}">${alertCells(a)}<td>${
                a.status === 'open'
                  ? `<button type="button" class="ack" data-ack="${esc(a.id)}">Ack</button>`
                  : `<span class="small">by ${esc(a.acknowledgedBy ?? '?')}</span>`
              }</td></tr>`,
          )
          .join('')
      : '<tr class="empty"><td colspan="8">No active alerts.</td></tr>';
    $('#alerts-error').textContent = '';
  } catch (e) {
    $('#alerts-error').textContent = e.message;
  }
  // The history is re-read from its first page, unless the user has paged back (then it stays put).
  if (alertsState.historyPages <= 1) await loadHistory(false);
  if (alertsState.selected) await showAlert(alertsState.selected);
}

async function loadHistory(more) {
  const status = $('#history-status').value;
  const q = filterParams('alerts');
  q.set('limit', '20');
  if (status) q.set('status', status);
  if (more && alertsState.historyToken) q.set('nextToken', alertsState.historyToken);
  try {
    const page = await api(`/alerts?${q}`);
    const rows = (page.alerts ?? [])
      .map(
        (a) =>
          `<tr data-alert-id="${esc(a.id)}" data-device="${esc(a.deviceId)}">${alertCells(a, { ruleId: false })}<td>${esc(
            a.status === 'resolved'
              ? `${a.resolvedBy ?? '?'} ${a.resolvedAt ? clock(a.resolvedAt) : ''}`
              : a.status === 'acknowledged'
                ? `${a.acknowledgedBy ?? '?'} ${a.acknowledgedAt ? clock(a.acknowledgedAt) : ''}`
                : '–',
          )}</td></tr>`,
      )
      .join('');
    const body = $('#alerts-history tbody');
    if (more) body.insertAdjacentHTML('beforeend', rows);
    else body.innerHTML = rows || '<tr class="empty"><td colspan="8">No alerts.</td></tr>';
    alertsState.historyToken = page.nextToken;
    alertsState.historyPages = more ? alertsState.historyPages + 1 : 1;
    $('#history-more').hidden = !page.nextToken;
  } catch (e) {
    $('#alerts-error').textContent = e.message;
  }
}

async function showAlert(id) {
  alertsState.selected = id;
  const out = $('#alert-detail');
  try {
    const a = await api(`/alerts/${encodeURIComponent(id)}`);
    out.dataset.alertId = a.id;
    out.innerHTML = `<p><span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span> <b>${esc(a.ruleName)}</b>
      on ${esc(a.subDevice ? `${a.deviceId}/${a.subDevice}` : a.deviceId)}${a.metric ? ` · ${esc(a.metric)}` : ''}</p>
      <p>${esc(a.reason)}</p>
      <p>Status <span class="st st-${esc(a.status)}">${esc(a.status)}</span>${a.note ? ` · note: ${esc(a.note)}` : ''}${a.suppressed ? ` · ${esc(a.suppressed)} suppressed by the throttle` : ''}</p>
      <ol class="history">${(a.history ?? [])
        .map(
          (h) =>
            `<li><b>${esc(h.kind)}</b> ${esc(when(h.at ?? h.recordedAt))}${h.value !== undefined ? ` value ${esc(h.value)}` : ''}${h.resolvedBy ? ` by ${esc(h.resolvedBy)}` : ''}${h.dispatchedAt ? ` · delivered ${esc(clock(h.dispatchedAt))}` : ''}</li>`,
        )
        .join('')}${
        a.acknowledgedAt
          ? `<li><b>acknowledged</b> ${esc(when(a.acknowledgedAt))} by ${esc(a.acknowledgedBy ?? '?')}</li>`
          : ''
      }</ol>`;
  } catch (e) {
    out.textContent = e.message;
  }
}

async function onAlertsClick(e) {
  const ack = e.target?.closest?.('button[data-ack]');
  if (ack) {
    ack.disabled = true;
    try {
      await api(`/alerts/${encodeURIComponent(ack.dataset.ack)}/ack`, { method: 'POST', body: {} });
    } catch (err) {
      // 409: someone else acknowledged (or it resolved) meanwhile; the re-render shows the current state.
      $('#alerts-error').textContent = err.message;
    }
    alertsState.historyPages = 0;
    await refreshAlerts();
    return;
  }
  const row = e.target?.closest?.('tr[data-alert-id]');
  if (row) await showAlert(row.dataset.alertId);
}

// ---- application view --------------------------------------------------------------------------
// The admin's list of applications (GET /apps), for the picker.
async function loadApps() {
  // Before the key is checked nothing is known yet: signIn() calls again when this tab is open.
  if (!state.principal) return;
  if (state.principal.kind !== 'admin') {
    $('#app-select').closest('.row').hidden = true;
    $('#app-select').dataset.hiddenFor = 'app';
    return;
  }
  try {
    const { apps = [] } = await api('/apps');
    const sel = $('#app-select');
    const current = sel.value;
    sel.innerHTML = `<option value="">(choose an application)</option>${apps
      .map(
        (a) =>
          `<option value="${esc(a.id)}">${esc(a.name ?? a.id)} (${esc((a.deviceTypes ?? []).join(', '))})</option>`,
      )
      .join('')}`;
    if (current && apps.some((a) => a.id === current)) sel.value = current;
  } catch (e) {
    $('#app-error').textContent = e.message;
  }
}

// An application picked by the admin: the devices of its device types, read with the admin key and the
// same `type` filter the API applies to the application's own key.
async function viewApp() {
  const id = $('#app-select').value;
  $('#app-error').textContent = '';
  if (!id) return;
  try {
    const app = await api(`/apps/${encodeURIComponent(id)}`).then((r) => r.app ?? r);
    const devices = [];
    for (const type of app.deviceTypes ?? []) {
      const page = await api(`/devices?limit=100&type=${encodeURIComponent(type)}`);
      devices.push(...(page.devices ?? []));
    }
    await renderAppDevices(`${app.name ?? app.id}`, devices, state.key);
  } catch (e) {
    $('#app-error').textContent = e.message;
  }
}

async function viewAsApp(ev) {
  ev.preventDefault();
  const key = $('#app-key').value.trim();
  $('#app-error').textContent = '';
  try {
    const { devices = [] } = await api('/devices?limit=100', { key });
    await renderAppDevices('Application view', devices, key);
  } catch (e) {
    $('#app-error').textContent = e.message;
  }
}

async function renderAppDevices(title, devices, key) {
  const rows = await Promise.all(
    devices.map(async (d) => {
      const s = await api(`/devices/${encodeURIComponent(d.id)}/state`, { key }).catch(() => ({
        points: [],
      }));
      const points = Array.isArray(s) ? s : (s.points ?? []);
      const latest = points
        .slice(0, 3)
        .map((p) => `${p.name ?? p.metric}=${formatValue(p.value, p.type)}`)
        .join(', ');
      return `<tr><td>${esc(d.id)}</td><td>${esc(d.type)}</td><td>${esc(latest)}</td></tr>`;
    }),
  );
  $('#app-devices tbody').innerHTML = rows.join('');
  $('#app-title').textContent = `${title}: ${devices.length} device(s)`;
}

// ---- fleet: the device list with the API's filters (type, group, tag, protocol, online) ----------
const fleetState = { nextToken: undefined, count: 0 };

function fleetQuery() {
  const q = filterParams('fleet');
  q.set('limit', '100');
  return q;
}

async function loadFleet(more = false) {
  const q = fleetQuery();
  if (more && fleetState.nextToken) q.set('nextToken', fleetState.nextToken);
  $('#fleet-error').textContent = '';
  try {
    const { devices = [], nextToken } = await api(`/devices?${q}`);
    const rows = devices
      .map(
        (d) => `<tr data-device="${esc(d.id)}"><td><a href="#" data-open="${esc(d.id)}">${esc(d.id)}</a></td>
        <td>${esc(d.type)}</td><td>${esc(d.group ?? '–')}</td>
        <td>${Object.entries(d.tags ?? {})
          .map(([k, v]) => `<span class="kv">${esc(k)}=${esc(v)}</span>`)
          .join(' ')}</td>
        <td>${esc((d.protocols ?? []).join(', '))}</td>
        <td>${esc(
          Object.entries(d.connectivity ?? {})
            .map(([p, c]) => `${p} ${c}`)
            .join(' · ') || '–',
        )}</td><td>${esc(ago(d.lastSeen))}</td></tr>`,
      )
      .join('');
    const body = $('#fleet-table tbody');
    if (more) body.insertAdjacentHTML('beforeend', rows);
    else body.innerHTML = rows || '<tr class="empty"><td colspan="7">No device matches.</td></tr>';
    fleetState.count = (more ? fleetState.count : 0) + devices.length;
    fleetState.nextToken = nextToken;
    $('#fleet-more').hidden = !nextToken;
    $('#fleet-title').textContent = `Fleet: ${fmt(fleetState.count)}${nextToken ? '+' : ''} device(s)`;
    $('#fleet-table').dataset.count = String(fleetState.count);
  } catch (e) {
    $('#fleet-error').textContent = e.message;
  }
}

// ---- shell -------------------------------------------------------------------------------------
function selectTab(name) {
  for (const b of document.querySelectorAll('.tabs button'))
    b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const p of document.querySelectorAll('[data-panel]')) p.hidden = p.dataset.panel !== name;
  if (name !== 'device') live.unwatch();
  if (name === 'device') refreshDevice().catch((e) => ($('#device-status').textContent = e.message));
  if (name === 'alerts') refreshAlerts();
  if (name === 'app') loadApps();
  if (name === 'fleet') loadFleet(false);
  saveHash(name, name === 'device' ? { device: $('#device-select').value } : {});
}

async function signIn(key) {
  const previous = state.key;
  state.key = key;
  try {
    const me = await api('/devices?limit=1');
    state.principal = key.startsWith('dp_app_') ? { kind: 'app' } : { kind: 'admin' };
    sessionStorage.setItem('dualpath-key', key);
    $('#login').hidden = true;
    $('main').hidden = false;
    $('#who').textContent =
      state.principal.kind === 'admin' ? 'signed in as admin' : 'signed in with an application key';
    void me;
    if (!$('#tab-app').hidden) loadApps();
    return true;
  } catch (e) {
    state.key = previous;
    $('#login-error').textContent = e.message;
    return false;
  }
}

async function boot() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
  // The view the hash names (tab, filters, device: filters.js); the key is dropped from the address.
  const view = readHash();
  if (fromHash) history.replaceState(null, '', `${location.pathname}${view.size ? `#${view}` : ''}`);
  const key = fromHash ?? sessionStorage.getItem('dualpath-key');
  $('main').hidden = true;
  // Handlers first: the tabs are visible while the key is checked, and a click then must not be lost.
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await signIn($('#login-key').value.trim())) tick();
  });
  for (const b of document.querySelectorAll('.tabs button'))
    b.addEventListener('click', () => selectTab(b.dataset.tab));
  $('#devices-table').addEventListener('click', (e) => {
    const id = e.target?.dataset?.open;
    if (!id) return;
    e.preventDefault();
    openDevice(id);
  });
  $('#fleet-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveHash('fleet');
    loadFleet(false);
  });
  $('#alerts-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveHash('alerts');
    alertsState.historyPages = 0;
    refreshAlerts();
  });
  $('#fleet-more').addEventListener('click', () => loadFleet(true));
  $('#fleet-table').addEventListener('click', (e) => {
    const id = e.target?.dataset?.open;
    if (!id) return;
    e.preventDefault();
    openDevice(id);
  });
  $('#device-select').addEventListener('change', () => {
    saveHash('device', { device: $('#device-select').value });
    refreshDevice();
  });
  $('#window-select').addEventListener('change', () => refreshDevice());
  $('#command-form').addEventListener('submit', sendCommand);
  $('#app-form').addEventListener('submit', viewAsApp);
  $('#app-select').addEventListener('change', viewApp);
  $('#alerts-active').addEventListener('click', onAlertsClick);
  $('#alerts-history').addEventListener('click', onAlertsClick);
  $('#history-status').addEventListener('change', () => loadHistory(false));
  $('#history-more').addEventListener('click', () => loadHistory(true));
  if (key && (await signIn(key))) {
    openView(view);
    tick();
  } else $('#login').hidden = false;
}

/** Opens the tab the hash names, with its filters (and its device on the Device tab). */
function openView(view) {
  const tab = view.get('tab');
  if (!tab || !document.querySelector(`.tabs button[data-tab="${CSS.escape(tab)}"]`)) return;
  setFilters(tab, view);
  if (tab === 'device' && view.get('device')) openDevice(view.get('device'));
  else selectTab(tab);
}

let timer;
function tick() {
  clearTimeout(timer);
  const run = async () => {
    if (!$('#tab-overview').hidden) await refreshOverview().catch(() => {});
    else if (!$('#tab-device').hidden && !live.skipDevicePoll()) await refreshDevice().catch(() => {});
    else if (!$('#tab-alerts').hidden) await refreshAlerts().catch(() => {});
    if ($('#tab-alerts').hidden) await api('/alerts?status=open&limit=100').then(showAlertCount, () => {});
    timer = setTimeout(run, 2000);
  };
  run();
}

boot();
