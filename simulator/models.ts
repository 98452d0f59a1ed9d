/**
 * Plausible, reproducible signals per device type. Pure: driven by an injected time (ms) and a seeded
 * RNG, no clock or Math.random inside. Each type also says how its signals map to LwM2M/IPSO paths.
 */
import { DataType } from '../functions/core/sparkplug/types.js';

/** mulberry32: small, fast, seedable PRNG. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SignalDef {
  name: string;
  datatype: number;
  /** LwM2M path carrying the same signal in Send, if any. */
  lwm2m?: string;
  unit?: string;
}

export interface DeviceModel {
  type: string;
  signals: SignalDef[];
  /** LwM2M objects the device registers (link format targets). */
  objects: string[];
  /** Next values; `state` is the model's own memory (e.g. totaliser, trip count). */
  sample(timeMs: number, rng: () => number, state: Record<string, number>): Record<string, number | boolean>;
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const noise = (rng: () => number, amp: number) => (rng() * 2 - 1) * amp;
const daily = (t: number) => Math.sin((2 * Math.PI * (t % 86_400_000)) / 86_400_000);

export const MODELS: Record<string, DeviceModel> = {
  'env-sensor': {
    type: 'env-sensor',
    signals: [
      { name: 'Temperature', datatype: DataType.Float, lwm2m: '/3303/0/5700', unit: 'Cel' },
      { name: 'Humidity', datatype: DataType.Float, lwm2m: '/3304/0/5700', unit: '%RH' },
    ],
    objects: ['/3/0', '/3303/0', '/3304/0'],
    sample: (t, rng) => ({
      Temperature: round(21 + 3 * daily(t) + noise(rng, 0.3)),
      Humidity: round(45 - 8 * daily(t) + noise(rng, 1)),
    }),
  },
  pressure: {
    type: 'pressure',
    signals: [{ name: 'Pressure', datatype: DataType.Double, lwm2m: '/3323/0/5700', unit: 'kPa' }],
    objects: ['/3/0', '/3323/0'],
    sample: (t, rng) => ({ Pressure: round(101.3 + 2 * Math.sin(t / 600_000) + noise(rng, 0.2), 3) }),
  },
  'flow-meter': {
    type: 'flow-meter',
    signals: [
      { name: 'Flow', datatype: DataType.Double, unit: 'm3/h' },
      { name: 'Totaliser', datatype: DataType.Double, unit: 'm3' },
      { name: 'Pump/Running', datatype: DataType.Boolean },
      { name: 'Pump/Current', datatype: DataType.Float, lwm2m: '/3317/0/5700', unit: 'A' },
    ],
    objects: ['/3/0', '/3317/0'],
    sample: (t, rng, s) => {
      const running = Math.floor(t / 300_000) % 4 !== 3; // off one period in four
      const flow = running ? round(12 + noise(rng, 0.8)) : 0;
      s.total = (s.total ?? 0) + flow / 3600;
      return {
        Flow: flow,
        Totaliser: round(s.total, 3),
        'Pump/Running': running,
        'Pump/Current': running ? round(7.5 + noise(rng, 0.4)) : 0,
      };
    },
  },
  breaker: {
    type: 'breaker',
    signals: [
      { name: 'Voltage/L1', datatype: DataType.Float, lwm2m: '/3316/0/5700', unit: 'V' },
      { name: 'Voltage/L2', datatype: DataType.Float, lwm2m: '/3316/1/5700', unit: 'V' },
      { name: 'Voltage/L3', datatype: DataType.Float, lwm2m: '/3316/2/5700', unit: 'V' },
      { name: 'Current/L1', datatype: DataType.Float, lwm2m: '/3317/0/5700', unit: 'A' },
      { name: 'Current/L2', datatype: DataType.Float, lwm2m: '/3317/1/5700', unit: 'A' },
      { name: 'Current/L3', datatype: DataType.Float, lwm2m: '/3317/2/5700', unit: 'A' },
      { name: 'Power', datatype: DataType.Double, lwm2m: '/3328/0/5700', unit: 'W' },
      { name: 'Frequency', datatype: DataType.Float, unit: 'Hz' },
      { name: 'Temperature', datatype: DataType.Float, lwm2m: '/3303/0/5700', unit: 'Cel' },
      { name: 'TripCount', datatype: DataType.UInt32 },
      { name: 'Closed', datatype: DataType.Boolean },
    ],
    objects: ['/3/0', '/3303/0', '/3316/0', '/3316/1', '/3316/2', '/3317/0', '/3317/1', '/3317/2', '/3328/0'],
    sample: (t, rng, s) => {
      const closed = (s.open ?? 0) === 0;
      if (closed && rng() < 0.0005) {
        s.trips = (s.trips ?? 0) + 1;
        s.open = 3;
      } else if (!closed) s.open = (s.open ?? 1) - 1;
      const v = [0, 1, 2].map(() => round(230 + noise(rng, 2)));
      const i = [0, 1, 2].map(() => (closed ? round(16 + 4 * daily(t) + noise(rng, 0.5)) : 0));
      const power = round(
        v.reduce((sum, vv, k) => sum + vv * i[k]! * 0.95, 0),
        1,
      );
      return {
        'Voltage/L1': v[0]!,
        'Voltage/L2': v[1]!,
        'Voltage/L3': v[2]!,
        'Current/L1': i[0]!,
        'Current/L2': i[1]!,
        'Current/L3': i[2]!,
        Power: power,
        Frequency: round(50 + noise(rng, 0.02), 3),
        Temperature: round(35 + i[0]! / 4 + noise(rng, 0.3)),
        TripCount: s.trips ?? 0,
        Closed: closed,
      };
    },
  },
};

export const MODEL_TYPES = Object.keys(MODELS);
