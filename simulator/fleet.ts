/**
 * Many simulated devices in one process, each its own MQTT session. One scheduler tick for the whole
 * fleet (no per-device timers); connects are ramped; stats are exact counts of what was published.
 */
import type { IClientOptions } from 'mqtt';
import { type DeviceStats, SimulatedDevice } from './device.js';
import { MODEL_TYPES, MODELS } from './models.js';

export interface FleetOptions {
  url: string;
  devices: number;
  /** Sparkplug DDATA messages per second per device. */
  rate: number;
  seed?: number;
  group?: string;
  prefix?: string;
  /** Device types to cycle through (default: all models). */
  types?: string[];
  readingsPerSend?: number;
  lifetime?: number;
  badRatio?: number;
  connectsPerSecond?: number;
  clock?: () => number;
  mqtt?: IClientOptions;
}

export interface FleetStats extends Omit<DeviceStats, 'commandsAnswered'> {
  devices: number;
  connected: number;
  commandsAnswered: number;
  elapsedMs: number;
}

export interface Fleet {
  devices: Array<{ id: string; type: string }>;
  stats(): FleetStats;
  stop(): Promise<void>;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const clock = o.clock ?? Date.now;
  const types = o.types ?? MODEL_TYPES;
  const prefix = o.prefix ?? 'sim-';
  const started = clock();
  const devices = Array.from({ length: o.devices }, (_, i) => {
    const type = types[i % types.length]!;
    const model = MODELS[type];
    if (!model) throw new Error(`unknown device type ${type}; known: ${MODEL_TYPES.join(', ')}`);
    return new SimulatedDevice({
      id: `${prefix}${type}-${String(i).padStart(5, '0')}`,
      group: o.group ?? 'sim',
      model,
      url: o.url,
      seed: (o.seed ?? 1) * 100_003 + i,
      clock,
      readingsPerSend: o.readingsPerSend ?? 50,
      lifetime: o.lifetime ?? 300,
      badRatio: o.badRatio ?? 0,
      ...(o.mqtt ? { mqtt: o.mqtt } : {}),
    });
  });

  // Ramp the connects (IoT Core allows 500 CONNECT/s per account).
  const perSecond = o.connectsPerSecond ?? 200;
  for (let i = 0; i < devices.length; i += perSecond) {
    await Promise.all(devices.slice(i, i + perSecond).map((d) => d.connect().catch(() => {})));
    if (i + perSecond < devices.length) await new Promise((r) => setTimeout(r, 1000));
  }

  const intervalMs = 1000 / Math.max(0.001, o.rate);
  let running = true;
  let ticking = Promise.resolve();
  const loop = async () => {
    let next = clock();
    while (running) {
      await Promise.all(devices.map((d) => d.tick().catch(() => {})));
      next += intervalMs;
      const wait = next - clock();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = clock();
    }
  };
  ticking = loop();

  return {
    devices: devices.map((d, i) => ({
      id: `${prefix}${types[i % types.length]}-${String(i).padStart(5, '0')}`,
      type: types[i % types.length]!,
    })),
    stats() {
      const s: FleetStats = {
        devices: devices.length,
        connected: devices.filter((d) => d.connected).length,
        messages: { sparkplug: 0, lwm2m: 0 },
        readings: { sparkplug: 0, lwm2m: 0 },
        bad: 0,
        reconnects: 0,
        commandsAnswered: 0,
        elapsedMs: clock() - started,
      };
      for (const d of devices) {
        s.messages.sparkplug += d.stats.messages.sparkplug;
        s.messages.lwm2m += d.stats.messages.lwm2m;
        s.readings.sparkplug += d.stats.readings.sparkplug;
        s.readings.lwm2m += d.stats.readings.lwm2m;
        s.bad += d.stats.bad;
        s.reconnects += d.stats.reconnects;
        s.commandsAnswered += d.stats.commandsAnswered;
      }
      return s;
    },
    async stop() {
      running = false;
      await ticking;
      await Promise.all(devices.map((d) => d.stop().catch(() => {})));
    },
  };
}
