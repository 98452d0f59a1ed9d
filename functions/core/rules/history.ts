/**
 * The rule engine's history (RuleHistory, ADR 0016 amendment 10) over the telemetry store: the stored
 * numeric readings of a device's plain (device, metric) series after a time, for states written behind
 * them. One read per call: a device's frames hold all its metrics.
 */
import { MAX_READING_AHEAD_MS } from '../ingest.js';
import type { Clock } from '../processor.js';
import { MAX_RAW_LIMIT, type TelemetryStore } from '../telemetry.js';
import { numericValue, type RuleHistory, type Samples } from './engine.js';

export function telemetryHistory(store: Pick<TelemetryStore, 'queryRaw'>, clock: Clock): RuleHistory {
  return {
    async samples({ deviceId, metrics, after, until }) {
      const out = new Map<string, Samples>();
      for (const m of metrics) out.set(m, { times: [], values: [] });
      // Node-level readings only (subDevice ''), up to the latest time a reading may carry; one metric
      // is filtered by the store, several here.
      const query = {
        deviceId,
        ...(metrics.length === 1 ? { metric: metrics[0]! } : {}),
        subDevice: '',
        from: Math.floor(after),
        to: Math.min(Math.floor(until) + 1, clock() + MAX_READING_AHEAD_MS + 1),
        limit: MAX_RAW_LIMIT,
        order: 'asc' as const,
        // Readings written by the invocation before, perhaps a second ago in another environment.
        consistent: true,
      };
      let nextToken: string | undefined;
      do {
        const page = await store.queryRaw(nextToken === undefined ? query : { ...query, nextToken });
        for (const p of page.points) {
          // Plain readings only: a row or an element is a series of its own.
          if (p.time <= after || p.time > until || p.row !== undefined || p.index !== undefined) continue;
          const s = out.get(p.metric);
          if (s === undefined) continue;
          const v = numericValue(p);
          if (v === undefined) continue;
          s.times.push(p.time);
          s.values.push(v);
        }
        nextToken = page.nextToken;
      } while (nextToken !== undefined);
      // Ascending per metric in every store; sorted here should one not be.
      for (const [m, s] of out) {
        if (!s.times.some((t, i) => i > 0 && t < s.times[i - 1]!)) continue;
        const order = s.times.map((_, i) => i).sort((a, b) => s.times[a]! - s.times[b]!);
        out.set(m, { times: order.map((i) => s.times[i]!), values: order.map((i) => s.values[i]!) });
      }
      return out;
    },
  };
}
