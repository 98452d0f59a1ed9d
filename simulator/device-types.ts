/**
 * The simulated device types and their plausible signals. A type is data plus three pure functions:
 * `init` (initial state from a seeded RNG), `step` (advance the physics by dt with the RNG) and `write`
 * (apply a command). Each signal says which protocol carries it: Sparkplug (high-rate edge telemetry,
 * a metric of one of the node's child devices) and/or LwM2M (an IPSO resource path; `send: true` puts
 * it in the bulk Send, otherwise it is only readable/observable by the server).
 */
import { DataType } from '../functions/core/sparkplug/types.js';
import { clamp, diurnal, firstOrder, ou, round } from './generators/signals.js';
import type { Rng } from './rng.js';

export type SignalValue = number | boolean | string;
export type DeviceState = Record<string, SignalValue>;

export interface SignalDef {
  key: string;
  sparkplug?: { device: string; name: string; datatype: number; unit?: string; writable?: boolean };
  /** IPSO resource path, e.g. /3303/0/5700. */
  lwm2m?: string;
  /** Included in the LwM2M bulk Send. */
  send?: boolean;
  unit?: string;
}

export interface DeviceType {
  id: string;
  name: string;
  model: string;
  /** Sparkplug child devices of the edge node, in DBIRTH order. */
  childDevices: string[];
  signals: SignalDef[];
  /** IPSO object instances registered (besides /1/0, /3/0, /4/0, /5/0). */
  objects: Record<number, number[]>;
  init(rng: Rng, timeMs: number): DeviceState;
  step(s: DeviceState, timeMs: number, dtS: number, rng: Rng): void;
  /** Applies a command write; false when the value is not acceptable (wrong type or range). */
  write(s: DeviceState, key: string, value: SignalValue, timeMs: number): boolean;
}

const num = (s: DeviceState, k: string): number => {
  const v = s[k];
  return typeof v === 'number' ? v : 0;
};

const envSensor: DeviceType = {
  id: 'env-sensor',
  name: 'Temperature / humidity sensor',
  model: 'DP-ENV-200',
  childDevices: ['sensor'],
  signals: [
    {
      key: 'temperature',
      sparkplug: { device: 'sensor', name: 'Temperature', datatype: DataType.Float, unit: 'Cel' },
      lwm2m: '/3303/0/5700',
      send: true,
      unit: 'Cel',
    },
    {
      key: 'humidity',
      sparkplug: { device: 'sensor', name: 'Humidity', datatype: DataType.Float, unit: '%RH' },
      lwm2m: '/3304/0/5700',
      send: true,
      unit: '%RH',
    },
    { key: 'battery', lwm2m: '/3/0/9', send: true, unit: '%' },
  ],
  objects: { 3303: [0], 3304: [0] },
  init: (rng, t) => ({
    _drift: rng.normal() * 0.5,
    _base: rng.uniform(19, 23),
    temperature: 21,
    humidity: 50,
    battery: rng.int(60, 100),
    _battery: 0,
    _t: t,
  }),
  step(s, t, dt, rng) {
    s._drift = ou(num(s, '_drift'), 0, 0.01, 0.05, dt, rng);
    const temp = num(s, '_base') + diurnal(t, 2.5, 15) + num(s, '_drift');
    s.temperature = round(temp, 2);
    s.humidity = round(clamp(55 - 1.8 * (temp - num(s, '_base')) + rng.normal() * 0.4, 5, 95), 1);
    // ~1 % battery per simulated day.
    s._battery = num(s, '_battery') + dt / 86_400;
    if (num(s, '_battery') >= 1) {
      s._battery = num(s, '_battery') - 1;
      s.battery = Math.max(0, num(s, 'battery') - 1);
    }
  },
  write: () => false,
};

const pressure: DeviceType = {
  id: 'pressure',
  name: 'Pressure transmitter',
  model: 'DP-PT-400',
  childDevices: ['transmitter'],
  signals: [
    {
      key: 'pressure',
      sparkplug: { device: 'transmitter', name: 'Pressure', datatype: DataType.Double, unit: 'kPa' },
      lwm2m: '/3323/0/5700',
      send: true,
      unit: 'kPa',
    },
    { key: 'processTemp', lwm2m: '/3303/0/5700', send: true, unit: 'Cel' },
  ],
  objects: { 3303: [0], 3323: [0] },
  init: (rng) => ({ _set: rng.uniform(350, 450), pressure: 400, processTemp: 45, _spike: 0 }),
  step(s, _t, dt, rng) {
    if (num(s, '_spike') <= 0 && rng.chance(dt / 600)) s._spike = rng.uniform(30, 80); // water hammer
    s._spike = firstOrder(num(s, '_spike'), 0, 2, dt);
    const p = ou(num(s, 'pressure') - num(s, '_spike'), num(s, '_set'), 0.2, 1.5, dt, rng);
    s.pressure = round(p + num(s, '_spike'), 3);
    s.processTemp = round(ou(num(s, 'processTemp'), 45, 0.01, 0.1, dt, rng), 2);
  },
  write: () => false,
};

const flowMeter: DeviceType = {
  id: 'flow-meter',
  name: 'Flow meter with pump',
  model: 'DP-FM-50',
  childDevices: ['meter', 'pump'],
  signals: [
    {
      key: 'flow',
      sparkplug: { device: 'meter', name: 'Flow', datatype: DataType.Float, unit: 'm3/h' },
      unit: 'm3/h',
    },
    {
      key: 'totaliser',
      sparkplug: { device: 'meter', name: 'Totaliser', datatype: DataType.Double, unit: 'm3' },
      unit: 'm3',
    },
    {
      key: 'running',
      sparkplug: { device: 'pump', name: 'Running', datatype: DataType.Boolean, writable: true },
    },
    {
      key: 'speed',
      sparkplug: {
        device: 'pump',
        name: 'Speed Setpoint',
        datatype: DataType.Float,
        unit: '%',
        writable: true,
      },
      unit: '%',
    },
    {
      key: 'motorCurrent',
      sparkplug: { device: 'pump', name: 'Motor Current', datatype: DataType.Float, unit: 'A' },
      lwm2m: '/3317/0/5700',
      send: true,
      unit: 'A',
    },
    { key: 'linePressure', lwm2m: '/3323/0/5700', send: true, unit: 'kPa' },
  ],
  objects: { 3317: [0], 3323: [0] },
  init: (rng) => ({
    running: true,
    speed: 80,
    flow: 0,
    _flow: 0,
    _amps: 0,
    totaliser: round(rng.uniform(1000, 50_000), 3),
    motorCurrent: 0,
    linePressure: 250,
    _noise: 0,
  }),
  step(s, _t, dt, rng) {
    const on = s.running === true;
    s._noise = ou(num(s, '_noise'), 0, 0.5, 0.6, dt, rng);
    const target = on ? (42 * num(s, 'speed')) / 100 + num(s, '_noise') : 0;
    const flow = Math.max(0, firstOrder(num(s, '_flow'), target, 4, dt));
    s._flow = flow;
    s.flow = round(flow, 2);
    s.totaliser = round(num(s, 'totaliser') + (flow * dt) / 3600, 4);
    const amps = on ? 2.5 + 0.22 * flow + rng.normal() * 0.1 : 0;
    s._amps = Math.max(0, firstOrder(num(s, '_amps'), amps, 1.5, dt));
    s.motorCurrent = round(s._amps, 2);
    s.linePressure = round(180 + 2.1 * flow + rng.normal() * 0.8, 1);
  },
  write(s, key, value) {
    if (key === 'running' && typeof value === 'boolean') {
      s.running = value;
      return true;
    }
    if (key === 'speed' && typeof value === 'number' && value >= 0 && value <= 100) {
      s.speed = value;
      return true;
    }
    return false;
  },
};

const PHASES = [1, 2, 3] as const;
const breaker: DeviceType = {
  id: 'breaker',
  name: 'Smart circuit breaker',
  model: 'DP-CB-63',
  childDevices: ['breaker'],
  signals: [
    ...PHASES.map(
      (p): SignalDef => ({
        key: `voltage${p}`,
        sparkplug: { device: 'breaker', name: `Voltage/L${p}`, datatype: DataType.Float, unit: 'V' },
        lwm2m: `/3316/${p - 1}/5700`,
        send: true,
        unit: 'V',
      }),
    ),
    ...PHASES.map(
      (p): SignalDef => ({
        key: `current${p}`,
        sparkplug: { device: 'breaker', name: `Current/L${p}`, datatype: DataType.Float, unit: 'A' },
        lwm2m: `/3317/${p - 1}/5700`,
        send: true,
        unit: 'A',
      }),
    ),
    {
      key: 'power',
      sparkplug: { device: 'breaker', name: 'Power', datatype: DataType.Double, unit: 'W' },
      lwm2m: '/3328/0/5700',
      send: true,
      unit: 'W',
    },
    {
      key: 'frequency',
      sparkplug: { device: 'breaker', name: 'Frequency', datatype: DataType.Float, unit: 'Hz' },
      unit: 'Hz',
    },
    {
      key: 'temperature',
      sparkplug: { device: 'breaker', name: 'Temperature', datatype: DataType.Float, unit: 'Cel' },
      lwm2m: '/3303/0/5700',
      unit: 'Cel',
    },
    { key: 'tripCount', sparkplug: { device: 'breaker', name: 'Trip Count', datatype: DataType.UInt32 } },
    { key: 'status', sparkplug: { device: 'breaker', name: 'Status', datatype: DataType.String } },
    {
      key: 'trip',
      sparkplug: { device: 'breaker', name: 'Control/Trip', datatype: DataType.Boolean, writable: true },
    },
  ],
  objects: { 3303: [0], 3316: [0, 1, 2], 3317: [0, 1, 2], 3328: [0] },
  init: (rng) => ({
    _load: rng.uniform(12, 30),
    _l1: 0,
    _l2: 0,
    _l3: 0,
    voltage1: 230,
    voltage2: 230,
    voltage3: 230,
    current1: 0,
    current2: 0,
    current3: 0,
    power: 0,
    frequency: 50,
    temperature: 30,
    _temp: 30,
    tripCount: 0,
    status: 'CLOSED',
    trip: false,
  }),
  step(s, t, dt, rng) {
    const closed = s.trip !== true;
    const load = num(s, '_load') + diurnal(t, 8, 18);
    let p = 0;
    for (const ph of PHASES) {
      const v = ou(num(s, `voltage${ph}`), 230, 0.3, 0.8, dt, rng);
      s[`_l${ph}`] = ou(num(s, `_l${ph}`), 0, 0.05, 1.2, dt, rng);
      const i = closed ? Math.max(0, load + num(s, `_l${ph}`)) : 0;
      s[`voltage${ph}`] = round(v, 1);
      s[`current${ph}`] = round(i, 2);
      p += v * i * 0.93;
    }
    s.power = round(p, 1);
    s.frequency = round(ou(num(s, 'frequency'), 50, 0.5, 0.01, dt, rng), 3);
    const i2 = PHASES.reduce((sum, ph) => sum + num(s, `current${ph}`) ** 2, 0);
    s._temp = firstOrder(num(s, '_temp'), 28 + 0.004 * i2, 600, dt);
    s.temperature = round(num(s, '_temp'), 2);
    // Overcurrent or a rare fault trips the breaker (~one fault per simulated week).
    const over = PHASES.some((ph) => num(s, `current${ph}`) > 63);
    if (closed && (over || rng.chance(dt / 604_800))) {
      s.trip = true;
      s.status = 'TRIPPED';
      s.tripCount = num(s, 'tripCount') + 1;
    }
  },
  write(s, key, value) {
    if (key !== 'trip' || typeof value !== 'boolean') return false;
    if (value && s.trip !== true) s.tripCount = num(s, 'tripCount') + 1;
    s.trip = value;
    s.status = value ? 'OPEN' : 'CLOSED';
    return true;
  },
};

export const DEVICE_TYPES: Record<string, DeviceType> = {
  [envSensor.id]: envSensor,
  [pressure.id]: pressure,
  [flowMeter.id]: flowMeter,
  [breaker.id]: breaker,
};

export const DEVICE_TYPE_IDS = Object.keys(DEVICE_TYPES);

export function getDeviceType(id: string): DeviceType | undefined {
  return DEVICE_TYPES[id];
}
