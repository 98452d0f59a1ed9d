// The Operations tab (ADR 0022): firmware packages, starting a batch operation (a firmware update or any
// device command over the fleet filter — the same inputs as the Fleet tab, filters.js — and/or a list of
// ids), live progress of each operation, per-device status with the LwM2M Update Result of failures,
// cancel and retry. Self-contained: it fills the
// #tab-operations panel and refreshes it every second while the panel is shown. Same credential as the
// rest of the dashboard (the admin key in sessionStorage); no inline script or style (CSP).

import { $, api as call, esc } from './common.js';
import { fleetInputs } from './filters.js';

// The API's error with the field it names, as this tab has always shown it.
const api = (path, init) =>
  call(path, init).catch((e) => {
    throw new Error(`${e.message}${e.field ? ` (${e.field})` : ''}`);
  });

const PANEL = `
  <div class="row">
    <div class="panel grow">
      <h2>Operations <span class="small">(batch commands and firmware campaigns, newest first)</span></h2>
      <table id="ops-table"><thead><tr><th>Operation</th><th>Action</th><th>Devices</th><th>Status</th><th>Progress</th><th>Succeeded</th><th>Failed</th><th>Timed out</th><th>Cancelled</th><th>Started</th></tr></thead><tbody></tbody></table>
      <p id="ops-error" class="error" role="alert"></p>
    </div>
  </div>
  <div class="row">
    <div class="panel grow" id="op-detail-panel">
      <h2 id="op-title">Operation</h2>
      <div class="row tight">
        <progress id="op-progress" max="100" value="0"></progress>
        <span id="op-summary" class="small">Select an operation.</span>
        <button type="button" id="op-cancel" hidden>Cancel</button>
        <button type="button" id="op-retry" hidden>Retry failed</button>
        <label>Show <select id="op-filter">
          <option value="">all devices</option>
          <option value="failed">failed</option>
          <option value="timed-out">timed out</option>
          <option value="sent">in flight</option>
          <option value="pending">pending</option>
          <option value="succeeded">succeeded</option>
          <option value="cancelled">cancelled</option>
        </select></label>
      </div>
      <table id="op-targets"><thead><tr><th>Device</th><th>Status</th><th>Phase</th><th>Attempts</th><th>Reason</th><th>Update Result</th></tr></thead><tbody></tbody></table>
    </div>
  </div>
  <div class="row">
    <div class="panel grow">
      <h2>New operation</h2>
      <form id="op-form">
        <div class="row tight">
          ${fleetInputs('op')}
          <label>and/or device ids <input id="op-ids" placeholder="id1, id2, …"></label>
        </div>
        <div class="row tight">
          <label>Action <select id="op-kind">
            <option value="firmware-update">Firmware update (LwM2M /5)</option>
            <option value="command">Device command (JSON)</option>
          </select></label>
          <label>Package <select id="op-package"></select></label>
        </div>
        <div class="row tight">
          <label class="grow">Command <input id="op-command" class="grow" value='{"protocol":"lwm2m","operation":"read","path":"/3/0/3"}'></label>
        </div>
        <div class="row tight">
          <label>Concurrency <input id="op-concurrency" type="number" min="1" max="1000" value="20"></label>
          <label>Starts per second <input id="op-rate" type="number" min="0.1" max="1000" step="0.1" value="10"></label>
          <button type="submit">Start</button>
        </div>
        <p id="op-form-error" class="error" role="alert"></p>
      </form>
    </div>
    <div class="panel">
      <h2>Firmware packages</h2>
      <table id="fw-table"><thead><tr><th>Name</th><th>Version</th><th>Size</th><th>SHA-256</th></tr></thead><tbody></tbody></table>
      <form id="fw-form" class="row tight">
        <input id="fw-file" type="file" required>
        <input id="fw-version" placeholder="version, e.g. 2.1.0" required>
        <button type="submit">Upload</button>
      </form>
      <p id="fw-error" class="error" role="alert"></p>
    </div>
  </div>`;

const state = { selected: undefined, filter: '' };

function actionText(op) {
  if (op.action.kind === 'firmware-update') return `firmware ${op.action.packageId}`;
  const c = op.action.command;
  return `${c.protocol} ${c.operation}${c.path ? ` ${c.path}` : ''}`;
}

function filterText(f) {
  const tags = Object.entries(f.tags ?? {}).map(([k, v]) =>
    v === undefined || v === null ? k : `${k}:${v}`,
  );
  return [
    f.type ? `type ${f.type}` : '',
    f.group ? `group ${f.group}` : '',
    tags.length ? `tags ${tags.join(',')}` : '',
    f.protocol ? f.protocol : '',
    f.online === undefined ? '' : f.online ? 'online' : 'offline',
    f.deviceIds ? `${f.deviceIds.length} ids` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

async function refreshList() {
  try {
    const { operations } = await api('/operations?limit=20');
    $('#ops-error').textContent = '';
    $('#ops-table tbody').innerHTML =
      operations
        .map(
          (
            op,
          ) => `<tr data-op="${esc(op.id)}" class="clickable${op.id === state.selected ? ' selected' : ''}">
        <td><code>${esc(op.id.slice(0, 8))}</code></td><td>${esc(actionText(op))}</td><td>${esc(filterText(op.filter))} (${op.total})</td>
        <td>${esc(op.status)}</td><td><progress max="100" value="${op.progress.percent}"></progress> ${op.progress.percent}%</td>
        <td>${op.counts.succeeded}</td><td>${op.counts.failed}</td><td>${op.counts['timed-out']}</td><td>${op.counts.cancelled}</td>
        <td>${esc(new Date(op.createdAt).toLocaleTimeString())}</td></tr>`,
        )
        .join('') || '<tr><td colspan="10" class="small">No operation yet.</td></tr>';
    if (!state.selected && operations[0]) state.selected = operations[0].id;
  } catch (e) {
    $('#ops-error').textContent = e.message;
  }
}

async function refreshDetail() {
  if (!state.selected) return;
  try {
    const op = await api(`/operations/${encodeURIComponent(state.selected)}`);
    const q = state.filter ? `?status=${encodeURIComponent(state.filter)}` : '';
    const { targets } = await api(`/operations/${encodeURIComponent(op.id)}/targets${q}`);
    $('#op-title').textContent = `Operation ${op.id.slice(0, 8)} — ${actionText(op)}`;
    $('#op-progress').value = op.progress.percent;
    const c = op.counts;
    $('#op-summary').textContent =
      `${op.status}: ${op.progress.finished}/${op.total} finished — ${c.succeeded} succeeded, ${c.failed} failed, ` +
      `${c['timed-out']} timed out, ${c.cancelled} cancelled, ${c.sent} in flight, ${c.pending} pending` +
      (op.retries ? ` (retried ${op.retries}×)` : '');
    $('#op-cancel').hidden = op.status !== 'running';
    $('#op-retry').hidden = !(
      (op.status === 'completed' || op.status === 'cancelled') &&
      c.failed + c['timed-out'] > 0
    );
    $('#op-targets tbody').innerHTML = targets
      .slice(0, 500)
      .map(
        (
          t,
        ) => `<tr class="status-${esc(t.status)}"><td>${esc(t.deviceId)}</td><td>${esc(t.status)}</td><td>${esc(t.phase ?? '')}</td>
        <td>${t.attempts}</td><td>${esc(t.reason?.message ?? '')}</td><td>${t.reason?.updateResult ?? ''}</td></tr>`,
      )
      .join('');
  } catch (e) {
    $('#ops-error').textContent = e.message;
  }
}

async function refreshPackages() {
  try {
    const { packages } = await api('/firmware');
    $('#fw-table tbody').innerHTML = packages
      .map(
        (p) =>
          `<tr><td>${esc(p.name)}</td><td>${esc(p.version)}</td><td>${p.size.toLocaleString('en-US')}</td><td><code title="${esc(p.sha256)}">${esc(p.sha256.slice(0, 12))}…</code></td></tr>`,
      )
      .join('');
    const sel = $('#op-package');
    const current = sel.value;
    sel.innerHTML = packages
      .map((p) => `<option value="${esc(p.id)}">${esc(p.name)} (${esc(p.version)})</option>`)
      .join('');
    if (current) sel.value = current;
  } catch (e) {
    $('#fw-error').textContent = e.message;
  }
}

async function refresh() {
  await refreshList();
  await refreshDetail();
}

async function startOperation(ev) {
  ev.preventDefault();
  $('#op-form-error').textContent = '';
  try {
    // The fleet filter of GET /devices (type, group, tags, protocol, online) and/or explicit ids.
    const filter = {};
    for (const k of ['type', 'group', 'tag', 'protocol']) {
      const v = $(`#op-${k}`).value.trim();
      if (v) filter[k] = v;
    }
    if ($('#op-online').value) filter.online = $('#op-online').value === 'true';
    const ids = $('#op-ids')
      .value.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (ids.length) filter.deviceIds = ids;
    const kind = $('#op-kind').value;
    let operation;
    if (kind === 'firmware-update') operation = { kind, packageId: $('#op-package').value };
    else {
      let command;
      try {
        command = JSON.parse($('#op-command').value);
      } catch {
        throw new Error('the command is not valid JSON');
      }
      operation = { kind, command };
    }
    const settings = {
      concurrency: Number($('#op-concurrency').value),
      ratePerSecond: Number($('#op-rate').value),
    };
    const op = await api('/operations', { method: 'POST', body: { filter, operation, settings } });
    state.selected = op.id;
    await refresh();
  } catch (e) {
    $('#op-form-error').textContent = e.message;
  }
}

async function upload(ev) {
  ev.preventDefault();
  $('#fw-error').textContent = '';
  const file = $('#fw-file').files[0];
  if (!file) return;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000)
      bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    await api('/firmware', {
      method: 'POST',
      body: { name: file.name, version: $('#fw-version').value.trim(), contentBase64: btoa(bin) },
    });
    $('#fw-form').reset();
    await refreshPackages();
  } catch (e) {
    $('#fw-error').textContent = e.message;
  }
}

function init() {
  const panel = $('#tab-operations');
  if (!panel) return;
  panel.innerHTML = PANEL;
  $('#op-form').addEventListener('submit', startOperation);
  $('#fw-form').addEventListener('submit', upload);
  $('#ops-table').addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-op]');
    if (!row) return;
    state.selected = row.dataset.op;
    void refresh();
  });
  $('#op-filter').addEventListener('change', () => {
    state.filter = $('#op-filter').value;
    void refreshDetail();
  });
  $('#op-cancel').addEventListener('click', async () => {
    await api(`/operations/${encodeURIComponent(state.selected)}/cancel`, { method: 'POST' }).catch((e) => {
      $('#ops-error').textContent = e.message;
    });
    await refresh();
  });
  $('#op-retry').addEventListener('click', async () => {
    await api(`/operations/${encodeURIComponent(state.selected)}/retry`, { method: 'POST' }).catch((e) => {
      $('#ops-error').textContent = e.message;
    });
    await refresh();
  });
  let shown = false;
  let busy = false;
  setInterval(async () => {
    if (panel.hidden || busy || !sessionStorage.getItem('dualpath-key')) {
      shown = !panel.hidden && shown;
      return;
    }
    busy = true;
    try {
      if (!shown) await refreshPackages();
      shown = true;
      await refresh();
    } finally {
      busy = false;
    }
  }, 1000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
