/** GET /health: public, no data beyond counts and, when degraded, the reasons. */

import { onlineOn } from '../../core/device-filter.js';
import { describeError } from '../../core/errors.js';
import type { RegistryPort } from '../../core/registry.js';
import type { Principal } from '../auth.js';
import type { Router } from '../http.js';
import { type ApiDeps, type HealthCounts, json } from './context.js';

export function registerHealthRoutes(r: Router<Principal>, deps: ApiDeps): void {
  r.add(
    'GET',
    '/health',
    async () => {
      const time = deps.clock();
      try {
        const { degraded, ...counts } = await deps.health();
        // Degraded (503, with the reasons) when the health source reports a problem, e.g. locally a
        // stuck Kinesis forwarder or a lagging stream.
        if (degraded && degraded.length > 0)
          return json({ status: 'degraded', time, reasons: degraded, ...counts }, 503);
        return json({ status: 'ok', time, ...counts });
      } catch (error) {
        // A health check must answer even when a dependency does not: 503 says which.
        const { code } = describeError(error);
        return json({ status: 'degraded', time, error: { code, message: 'counts unavailable' } }, 503);
      }
    },
    { public: true },
  );
}

/** Whether a device is online on a protocol now (an LwM2M registration past its lifetime is not). */
export const isOnline = onlineOn;

/**
 * Health counts computed from the registry (AWS): devices and devices online per protocol. Pages
 * through the registry at most `maxPages` × 1000 devices (`truncated` says when it stopped early) and
 * caches the answer for `ttlMs`, so a health probe cannot turn into a table scan per request.
 */
export function registryHealth(
  registry: Pick<RegistryPort, 'listDevices'>,
  clock: () => number,
  opts: { ttlMs?: number; maxPages?: number } = {},
): () => Promise<HealthCounts> {
  const ttl = opts.ttlMs ?? 30_000;
  const maxPages = opts.maxPages ?? 10;
  let cached: { at: number; counts: HealthCounts } | undefined;
  return async () => {
    const now = clock();
    if (cached && now - cached.at < ttl) return cached.counts;
    const online = { sparkplug: 0, lwm2m: 0, devices: 0 };
    let devices = 0;
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await registry.listDevices({ limit: 1000, ...(nextToken ? { nextToken } : {}) });
      for (const d of page.items) {
        devices++;
        const sp = isOnline(d, 'sparkplug', now);
        const lw = isOnline(d, 'lwm2m', now);
        if (sp) online.sparkplug++;
        if (lw) online.lwm2m++;
        // One physical device on both protocols is one device online, not two.
        if (sp || lw) online.devices++;
      }
      nextToken = page.nextToken;
    } while (nextToken && ++pages < maxPages);
    const counts: HealthCounts = { devices, online, ...(nextToken ? { truncated: true } : {}) };
    cached = { at: now, counts };
    return counts;
  };
}
