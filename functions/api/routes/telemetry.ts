/**
 * The device shadow (latest value of every metric) and telemetry: raw points with a cursor, or
 * buckets (`interval` + `agg`). Values are JSON-safe: bigint beyond 2^53 → decimal string, bytes →
 * base64.
 */
import {
  BUCKET_AGGS,
  type BucketAgg,
  bucketCount,
  MAX_BUCKETS,
  MAX_RAW_LIMIT,
} from '../../core/telemetry.js';
import type { Principal } from '../auth.js';
import { badRequest, parseInterval, queryInt, queryTime, type Router } from '../http.js';
import { type ApiDeps, deviceFor, json, queryString } from './context.js';

const HOUR = 3_600_000;

export function registerTelemetryRoutes(r: Router<Principal>, deps: ApiDeps): void {
  r.add('GET', '/devices/{id}/state', async (req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const subDevice = req.query.subDevice;
    if (subDevice !== undefined && subDevice.length > 256)
      throw badRequest('subDevice must be at most 256 characters', 'subDevice');
    const points = await deps.store.latest({
      deviceId: device.id,
      ...(subDevice !== undefined ? { subDevice } : {}),
    });
    return json({ deviceId: device.id, points });
  });

  r.add('GET', '/devices/{id}/telemetry', async (req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const q = req.query;
    const to = queryTime(q, 'to', deps.clock() + 1);
    const from = queryTime(q, 'from', to - HOUR);
    if (to < from) throw badRequest('to must not be before from', 'to');
    const metric = queryString(q, 'metric', 512);
    const subDevice = q.subDevice;
    if (subDevice !== undefined && subDevice.length > 256)
      throw badRequest('subDevice must be at most 256 characters', 'subDevice');
    const sub = subDevice !== undefined ? { subDevice } : {};

    if (q.interval !== undefined) {
      if (metric === undefined) throw badRequest('metric is required with interval', 'metric');
      for (const f of ['limit', 'nextToken', 'order'])
        if (q[f] !== undefined) throw badRequest(`${f} does not apply to buckets`, f);
      const intervalMs = parseInterval(q.interval);
      const aggs = (q.agg ?? 'avg,min,max,count').split(',');
      for (const a of aggs) {
        if (!BUCKET_AGGS.includes(a as BucketAgg))
          throw badRequest(`agg must be a comma-separated list of ${BUCKET_AGGS.join(', ')}`, 'agg');
      }
      const n = bucketCount(from, to, intervalMs);
      if (n > MAX_BUCKETS)
        throw badRequest(
          `from..to holds ${n} intervals, more than ${MAX_BUCKETS}; widen interval`,
          'interval',
        );
      const buckets = await deps.store.queryBuckets({
        deviceId: device.id,
        metric,
        from,
        to,
        intervalMs,
        aggs: aggs as BucketAgg[],
        ...sub,
      });
      return json({ deviceId: device.id, metric, from, to, interval: q.interval, buckets });
    }

    if (q.agg !== undefined) throw badRequest('agg needs interval', 'interval');
    const order = q.order ?? 'asc';
    if (order !== 'asc' && order !== 'desc') throw badRequest('order must be asc or desc', 'order');
    const limit = queryInt(q, 'limit', { min: 1, max: MAX_RAW_LIMIT, default: 1000 })!;
    const nextToken = queryString(q, 'nextToken', 2048);
    const out = await deps.store.queryRaw({
      deviceId: device.id,
      from,
      to,
      order,
      limit,
      ...(metric !== undefined ? { metric } : {}),
      ...(nextToken !== undefined ? { nextToken } : {}),
      ...sub,
    });
    return json({
      deviceId: device.id,
      from,
      to,
      points: out.points,
      ...(out.nextToken ? { nextToken: out.nextToken } : {}),
    });
  });
}
