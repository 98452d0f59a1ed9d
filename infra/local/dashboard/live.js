// Live updates for the dashboard (ADR 0023): the device page subscribes to the live transport named by
// dashboard/config.json — Server-Sent Events at /live on the local stack (read with fetch because
// EventSource cannot send the Authorization header), or the API Gateway WebSocket API in AWS (the key
// as the second subprotocol, ['dualpath', key]; events arrive as {"events":[...]}) — and updates the
// state table in place. While connected, app.js skips its 2 s device poll (a full refresh every 30 s keeps
// the charts); when the stream drops, it reconnects with backoff and the poll is the fallback.
import { apiUrl, formatValue } from './common.js';

const FULL_REFRESH_MS = 30_000;
const live = {
  device: null,
  key: null,
  controller: null,
  connected: false,
  lastFull: 0,
  received: 0,
  backoff: 500,
};

const cellText = (p) => (p.subDevice ? `${p.subDevice}/${p.metric}` : p.metric);

function applyReading(e) {
  const body = document.querySelector('#state-table tbody');
  if (!body) return;
  const name = cellText(e);
  let row = [...body.rows].find((r) => r.cells[0]?.textContent === name);
  if (!row) {
    row = body.insertRow();
    for (let i = 0; i < 6; i++) row.insertCell();
    row.cells[0].textContent = name;
    row.cells[1].textContent = e.name ?? '';
    row.cells[3].textContent = e.unit ?? '';
  }
  // At its type's precision: the type is the one the state table's cell carries (live events have none).
  row.cells[2].textContent = formatValue(e.value, row.cells[2].title);
  row.cells[4].textContent = 'just now';
  row.cells[5].textContent = e.quality ?? '';
  row.dataset.liveAt = String(Date.now());
  live.received++;
  document.body.dataset.liveReceived = String(live.received);
}

function setStatus(text) {
  const el = document.querySelector('#live-status');
  if (el) el.textContent = text;
  document.body.dataset.live = live.connected ? 'connected' : 'disconnected';
}

const KINDS = 'reading,lifecycle,alert';
const PING_MS = 5 * 60_000; // under API Gateway's 10-minute idle limit

/** The live transport: {transport: 'sse'|'websocket', url}; SSE at /live when config.json is missing. */
let config;
function liveConfig() {
  config ??= fetch(new URL('config.json', import.meta.url))
    .then((r) => (r.ok ? r.json() : {}))
    .catch(() => ({}))
    .then((c) => (c?.live?.transport === 'websocket' ? c.live : { transport: 'sse', url: 'live' }));
  return config;
}

function connected() {
  live.connected = true;
  live.backoff = 500;
  setStatus('live');
}

/** One SSE session until the stream ends or fails. */
async function sse(url, device, key, signal) {
  const res = await fetch(apiUrl(`${url}?device=${encodeURIComponent(device)}&kinds=${KINDS}`), {
    headers: { authorization: `Bearer ${key}` },
    signal,
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      i = buf.indexOf('\n\n');
      let event = 'message';
      let data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (event === 'ready') connected();
      else if (event === 'reading' && data) applyReading(JSON.parse(data));
    }
  }
}

/**
 * One WebSocket session until it closes (functions/live-connections: $connect authorizes the key and
 * the subscription in the query string; a refused upgrade closes before open).
 */
function websocket(url, device, key, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const ws = new WebSocket(`${url}?device=${encodeURIComponent(device)}&kinds=${KINDS}`, ['dualpath', key]);
    let ping;
    const done = () => {
      clearInterval(ping);
      signal.removeEventListener('abort', abort);
      resolve();
    };
    const abort = () => ws.close(1000);
    signal.addEventListener('abort', abort);
    ws.onopen = () => {
      connected();
      ping = setInterval(() => ws.send(JSON.stringify({ action: 'ping' })), PING_MS);
    };
    ws.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      for (const e of Array.isArray(msg?.events) ? msg.events : [])
        if (e?.kind === 'reading' && (e.deviceId === undefined || e.deviceId === live.device))
          applyReading(e);
    };
    ws.onclose = done;
  });
}

async function run(device, key, signal) {
  live.backoff = 500;
  const { transport, url } = await liveConfig();
  while (!signal.aborted) {
    try {
      if (transport === 'websocket') await websocket(url, device, key, signal);
      else await sse(url, device, key, signal);
    } catch {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    live.connected = false;
    setStatus('polling (live reconnecting)');
    await new Promise((r) => setTimeout(r, live.backoff));
    live.backoff = Math.min(live.backoff * 2, 15_000);
  }
}

/** The device page opened (or its device changed): subscribe to that device's live events. */
export function watchDevice(device, key) {
  live.lastFull = Date.now(); // called by the device page's full refresh
  if (live.device === device && live.key === key && live.controller) return;
  live.controller?.abort();
  live.device = device;
  live.key = key;
  live.connected = false;
  live.controller = new AbortController();
  void run(device, key, live.controller.signal);
}

/** Left the device page: drop the subscription. */
export function unwatch() {
  live.controller?.abort();
  live.controller = null;
  live.device = null;
  live.connected = false;
  setStatus('');
}

/** Should the poll skip the device refresh now? Yes while live, except a full refresh every 30 s. */
export function skipDevicePoll() {
  if (!live.connected) return false;
  if (Date.now() - live.lastFull >= FULL_REFRESH_MS) {
    live.lastFull = Date.now();
    return false;
  }
  return true;
}
