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

/**
 * The fleet filter's inputs for a tab's form (ids `#{tab}-type`, `-group`, `-tag`, `-protocol`, `-online`);
 * also the Operations tab's new-operation form (`op`), so both ask for the same filter the same way.
 */
export function fleetInputs(tab) {
  return `<label>${tab === 'fleet' ? 'Type' : 'Device type'} <input id="${tab}-type" placeholder="any" size="12"></label>
    <label>Group <input id="${tab}-group" placeholder="any" size="10"></label>
    <label>Tags <input id="${tab}-tag" placeholder="key:value,key" size="18"></label>
    <label>Protocol <select id="${tab}-protocol">
      <option value="">any</option><option value="sparkplug">Sparkplug</option><option value="lwm2m">LwM2M</option>
    </select></label>
    <label>Online <select id="${tab}-online">
      <option value="">any</option><option value="true">online</option><option value="false">offline</option>
    </select></label>`;
}

// The forms that ask for the fleet filter get its inputs (modules run once the page is parsed).
for (const el of document.querySelectorAll('[data-fleet-filter]'))
  el.outerHTML = fleetInputs(el.dataset.fleetFilter);

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
