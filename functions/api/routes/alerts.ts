/**
 * /alerts (ADR 0016): the alerts rules opened, newest first, with filters and pagination; one alert with
 * its history; acknowledge and resolve (who and when). An application key sees only alerts of its
 * device types: with several types it names one (`deviceType`), with one it is implied. The fleet
 * filter (`group`, `tag`, `protocol`, `online`) keeps the alerts of the matching devices (fleet-scope.ts).
 */
import {
  type Alert,
  type AlertFilter,
  type AlertStatus,
  type AlertStore,
  SEVERITIES,
  type Severity,
} from '../../core/rules/index.js';
import type { Principal } from '../auth.js';
import {
  badRequest,
  forbidden,
  notFound,
  optionalString,
  queryInt,
  queryTime,
  type Router,
} from '../http.js';
import { type ApiDeps, json, queryString } from './context.js';
import { fleetDeviceIds } from './fleet-scope.js';

const STATUSES: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved'];
const ALERT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export interface AlertsApiDeps {
  alerts: AlertStore;
}

function who(principal: Principal): string {
  return principal.kind === 'admin' ? 'admin' : `app:${principal.name}`;
}

export function registerAlertRoutes(
  r: Router<Principal>,
  deps: ApiDeps & { alertsApi?: AlertsApiDeps },
): void {
  const api = deps.alertsApi;
  if (!api) return;
  const { alerts } = api;

  const visible = async (principal: Principal, raw: string | undefined): Promise<Alert> => {
    if (raw === undefined || !ALERT_ID.test(raw)) throw badRequest('id must be an alert id', 'id');
    const alert = await alerts.get(raw);
    if (principal.kind === 'app') {
      if (!alert || alert.deviceType === undefined || !principal.deviceTypes.includes(alert.deviceType)) {
        throw forbidden(`application "${principal.name}" may not access alert ${raw}`);
      }
      return alert;
    }
    if (!alert) throw notFound(`alert ${raw} not found`);
    return alert;
  };

  r.add('GET', '/alerts', async (req, _p, principal) => {
    const q = req.query;
    const filter: AlertFilter = { limit: queryInt(q, 'limit', { min: 1, max: 100, default: 50 })! };
    if (q.status !== undefined) {
      if (!STATUSES.includes(q.status as AlertStatus))
        throw badRequest(`status must be one of ${STATUSES.join(', ')}`, 'status');
      filter.status = q.status as AlertStatus;
    }
    if (q.severity !== undefined) {
      if (!SEVERITIES.includes(q.severity as Severity))
        throw badRequest(`severity must be one of ${SEVERITIES.join(', ')}`, 'severity');
      filter.severity = q.severity as Severity;
    }
    const ruleId = queryString(q, 'ruleId', 64);
    if (ruleId !== undefined) filter.ruleId = ruleId;
    const deviceId = queryString(q, 'deviceId', 128);
    if (deviceId !== undefined) filter.deviceId = deviceId;
    let deviceType = queryString(q, 'deviceType', 64);
    if (principal.kind === 'app') {
      if (deviceType === undefined && principal.deviceTypes.length === 1)
        deviceType = principal.deviceTypes[0];
      if (deviceType === undefined)
        throw badRequest(
          'deviceType is required for an application registered for several device types',
          'deviceType',
        );
      if (!principal.deviceTypes.includes(deviceType))
        throw forbidden(`application "${principal.name}" is not registered for device type ${deviceType}`);
    }
    if (deviceType !== undefined) filter.deviceType = deviceType;
    if (q.since !== undefined) filter.since = queryTime(q, 'since', 0);
    if (q.until !== undefined) filter.until = queryTime(q, 'until', 0);
    const nextToken = queryString(q, 'nextToken', 2048);
    if (nextToken !== undefined) filter.nextToken = nextToken;
    const fleet = await fleetDeviceIds(
      deps,
      principal,
      q,
      deviceType !== undefined ? [deviceType] : undefined,
    );
    if (fleet) {
      // No matching device (or the named deviceId is not among them): no alert, and no read of the store.
      if (fleet.size === 0 || (deviceId !== undefined && !fleet.has(deviceId))) return json({ alerts: [] });
      if (deviceId === undefined) filter.deviceIds = [...fleet];
    }
    const page = await alerts.list(filter);
    return json({ alerts: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) });
  });

  r.add('GET', '/alerts/{id}', async (_req, p, principal) => {
    const alert = await visible(principal, p.id);
    const history = await alerts.history(alert.id);
    return json({
      ...alert,
      history: history.map((h) => {
        const { actions: _a, ...t } = h.transition;
        return {
          ...t,
          recordedAt: h.recordedAt,
          ...(h.dispatchedAt !== undefined ? { dispatchedAt: h.dispatchedAt } : {}),
        };
      }),
    });
  });

  r.add('POST', '/alerts/{id}/ack', async (req, p, principal) => {
    const alert = await visible(principal, p.id);
    const body = req.body === undefined || req.body === null ? {} : (req.body as Record<string, unknown>);
    if (typeof body !== 'object' || Array.isArray(body))
      throw badRequest('body must be a JSON object', 'body');
    const note = optionalString(body, 'note', 1024);
    return json(await alerts.acknowledge(alert.id, who(principal), deps.clock(), note));
  });

  r.add('POST', '/alerts/{id}/resolve', async (_req, p, principal) => {
    const alert = await visible(principal, p.id);
    return json(await alerts.resolve(alert.id, who(principal), deps.clock()));
  });
}
