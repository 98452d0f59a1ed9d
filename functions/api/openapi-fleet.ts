/** OpenAPI: the fleet filter of the device-scoped list routes (GET /events, GET /alerts; fleet-scope.ts). */
import { queryParam as q } from './openapi-parts.js';
import { FLEET_PARAMS, MAX_FLEET_DEVICES } from './routes/fleet-scope.js';

const WHY = `only items of devices matching every given fleet parameter (resolved once per request; more than ${MAX_FLEET_DEVICES} matching devices: 400 naming the parameter)`;

/** `group`, `tag`, `protocol`, `online`, as on GET /devices. */
export const fleetParams = () => {
  const out = [
    q('group', `Site / Sparkplug group: ${WHY}`),
    q('tag', `Tags the device must carry, comma-separated: key:value or key (at most 10): ${WHY}`, {
      type: 'string',
      examples: ['site:north,critical'],
    }),
    q('protocol', `Protocol the device speaks: ${WHY}`, { type: 'string', enum: ['sparkplug', 'lwm2m'] }),
    q('online', `Device online now on at least one protocol (true) or on none (false): ${WHY}`, {
      type: 'string',
      enum: ['true', 'false'],
    }),
  ];
  if (out.map((p) => p.name).join() !== FLEET_PARAMS.join()) throw new Error('fleet parameters out of date');
  return out;
};
