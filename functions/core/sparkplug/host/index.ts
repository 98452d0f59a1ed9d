/** The Sparkplug B host: public entry points. */
import type { Clock } from '../../processor.js';
import { SparkplugHost } from './host.js';
import { InMemorySparkplugStateStore } from './state.js';

export * from '../codec.js';
export * from '../types.js';
export {
  type BirthHint,
  type FlattenContext,
  flattenMetric,
  qualityOf,
  staticProps,
  unitOf,
} from './flatten.js';
export { rebirthAction, SparkplugHost, type SparkplugHostOptions } from './host.js';
export * from './state.js';

export function createInMemorySparkplugHost(opts: {
  clock: Clock;
  rebirthThrottleMs?: number;
  reorderTimeoutMs?: number;
}): SparkplugHost {
  return new SparkplugHost({ store: new InMemorySparkplugStateStore(), ...opts });
}
