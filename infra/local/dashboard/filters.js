// The list filters of the Fleet, Alerts and Events tabs, and the page's location hash: the open tab,
// its filters and the open device live in the hash (`#tab=alerts&deviceType=meter&severity=major`), so a
// reload or a shared link opens the same view. The sign-in key is never kept there (app.js drops it).
import { $ } from './common.js';

const FLEET = { group: 'group', tag: 'tag', protocol: 'protocol', online: 'online' };
/** Per tab: query parameter → the id of its input (the API's names: GET /devices, /alerts, /events). */
export const FILTERS = {
  fleet: { type: '#fleet-type', ...prefixed('fleet') },
  alerts: {
    deviceType: '#alerts-type',
    ...prefixed('alerts'),
    severity: '#alerts-severity',
    deviceId: '#alerts-device',
  },
  events: {
    deviceType: '#events-type',
    ...prefixed('events'),
    type: '#events-kind',
    deviceId: '#events-device',
    window: '#events-window',
  },
};

function prefixed(tab) {
  return Object.fromEntries(Object.entries(FLEET).map(([param, name]) => [param, `#${tab}-${name}`]));
}

/** The tab's filter values that are set, as query parameters (`window` is the Events tab's own). */
export function filterParams(tab) {
  const q = new URLSearchParams();
  for (const [param, sel] of Object.entries(FILTERS[tab] ?? {})) {
    const v = $(sel)?.value.trim();
    if (v) q.set(param, v);
  }
  return q;
}

/** Puts the parameters of `params` into the tab's inputs (the others back to empty). */
export function setFilters(tab, params) {
  for (const [param, sel] of Object.entries(FILTERS[tab] ?? {})) {
    const el = $(sel);
    if (el && params.has(param)) el.value = params.get(param);
  }
}

/** The hash's parameters, the key left out. */
export function readHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  q.delete('key');
  return q;
}

/** Writes the open tab, its filters and `extra` (e.g. the device) into the hash, without a navigation. */
export function saveHash(tab, extra = {}) {
  const q = new URLSearchParams({ tab });
  for (const [k, v] of filterParams(tab)) q.set(k, v);
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  history.replaceState(null, '', `${location.pathname}${location.search}#${q}`);
}
