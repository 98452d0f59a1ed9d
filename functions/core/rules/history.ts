/**
 * The rule engine's history (RuleHistory, ADR 0016 amendment 10) over the telemetry store: the stored
 * numeric readings of a plain (device, metric) series after a time, for a state written behind them.
 */
import { MAX_READING_AHEAD_MS } from '../ingest.js';
import type { Clock } from '../processor.js';
import { MAX_RAW_LIMIT, type TelemetryStore } from '../telemetry.js';
import { numericValue, type RuleHistory } from './engine.js';

export function telemetryHistory(store: Pick<TelemetryStore, 'queryRaw'>, clock: Clock): RuleHistory {
  return {
    async samples({ deviceId, metric, after, until }) {
      const times: number[] = [];
      const values: number[] = [];
      // Node-level readings only (subDevice ''), up to the latest time a reading may carry.
      const query = {
        deviceId,
        metric,
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
          const v = numericValue(p);
          if (v === undefined) continue;
          times.push(p.time);
          values.push(v);
        }
        nextToken = page.nextToken;
      } while (nextToken !== undefined);
      // Ascending for one metric in every store; sorted here should one not be.
      if (times.some((t, i) => i > 0 && t < times[i - 1]!)) {
        const order = times.map((_, i) => i).sort((a, b) => times[a]! - times[b]!);
        return { times: order.map((i) => times[i]!), values: order.map((i) => values[i]!) };
      }
      return { times, values };
    },
  };
}
