// The Events tab: lifecycle events (births, deaths, registrations, quarantined, alerts, ...) of a time
// window, newest first, with the fleet filters of GET /events (deviceType, group, tag, protocol, online),
// the event type and a device. Filters go into the hash (filters.js). Refreshes every 3 s while shown.
import { $, api, clock, esc, whileShown } from './common.js';
import { filterParams, saveHash } from './filters.js';

const SHOWN = 200;
const PAGES = 10;

async function load() {
  const q = filterParams('events');
  const windowMs = Number(q.get('window') ?? 3_600_000);
  q.delete('window');
  q.set('limit', '1000');
  // A cursor is an event id (15 digits of epoch ms, '-', a suffix): start just before any id of that ms.
  let since = `${String(Date.now() - windowMs).padStart(15, '0')}-!`;
  const events = [];
  let more = false;
  const table = $('#events-table');
  try {
    for (let page = 0; since; page++) {
      if (page === PAGES) {
        more = true;
        break;
      }
      q.set('since', since);
      const res = await api(`/events?${q}`);
      events.push(...(res.events ?? []));
      since = res.nextCursor;
    }
    $('#events-error').textContent = '';
  } catch (e) {
    $('#events-error').textContent = e.message;
    $('#events-table tbody').innerHTML = '';
    table.dataset.count = '0';
    return;
  }
  // Oldest first from the API; newest first here, the most recent SHOWN.
  const shown = events.slice(-SHOWN).reverse();
  $('#events-table tbody').innerHTML =
    shown
      .map(
        (e) => `<tr data-event-id="${esc(e.id)}" data-device="${esc(e.deviceId)}">
        <td>${esc(`${new Date(e.time).toLocaleDateString('en-CA')} ${clock(e.time)}`)}</td>
        <td><span class="tag ${esc(e.type)}">${esc(e.type)}</span></td>
        <td>${esc(e.subDevice ? `${e.deviceId}/${e.subDevice}` : e.deviceId)}</td>
        <td>${esc(e.deviceType ?? '')}</td><td>${esc(e.protocol ?? '')}</td><td>${esc(e.detail ?? '')}</td></tr>`,
      )
      .join('') || '<tr class="empty"><td colspan="6">No event matches in this window.</td></tr>';
  $('#events-title').textContent =
    `Events: ${events.length}${more ? '+' : ''} in the window${events.length > SHOWN ? `, newest ${SHOWN} shown` : ''}`;
  table.dataset.count = String(events.length);
}

function init() {
  const panel = $('#tab-events');
  if (!panel) return;
  $('#events-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveHash('events');
    $('#events-table').removeAttribute('data-count');
    void load();
  });
  // The tab opened: load now, then every 3 s.
  document.querySelector('.tabs button[data-tab="events"]')?.addEventListener('click', () => void load());
  whileShown(panel, 3000, load);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
