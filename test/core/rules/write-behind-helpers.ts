import type { EnrichedReading } from '../../../functions/core/reading.js';
import type { RuleHistory, Samples } from '../../../functions/core/rules/index.js';

/** The time origin of the write-behind tests; `rd`'s times are seconds after it. */
export const T0 = 1_700_000_000_000;
export const S = 1000;

/** A Sparkplug reading of d1's metric m (pump) at `t` seconds after T0. */
export function rd(value: number | string, t: number, o: Partial<EnrichedReading> = {}): EnrichedReading {
  return {
    protocol: 'sparkplug',
    deviceId: 'd1',
    group: 'plant',
    metric: 'm',
    type: 'Double',
    value,
    time: T0 + t * S,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'pump', applications: [] },
    ...o,
  } as EnrichedReading;
}

/**
 * A RuleHistory over readings the test keeps: `points(deviceId, metric)` gives a series' stored
 * (time, value) pairs in any order. It keeps the port's contract exactly — (after, until], ascending,
 * the asked metrics only — so a test fails if the engine asks for too short a range.
 */
export function fakeHistory(
  points: (deviceId: string, metric: string) => Iterable<[number, number]>,
): RuleHistory {
  return {
    async samples({ deviceId, metrics, after, until }) {
      const out = new Map<string, Samples>();
      for (const m of metrics) {
        const p = [...points(deviceId, m)]
          .filter(([t]) => t > after && t <= until)
          .sort((a, b) => a[0] - b[0]);
        out.set(m, { times: p.map((x) => x[0]), values: p.map((x) => x[1]) });
      }
      return out;
    },
  };
}
