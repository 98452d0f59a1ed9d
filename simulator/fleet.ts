/**
 * Many simulated devices in one process, each its own MQTT session, all driven by ONE scheduler (no
 * per-device timers). Connects are ramped (IoT Core: 500 CONNECT/s per account, 1/s per client id);
 * each connection has a publish token bucket (IoT Core: 100 publishes/s per connection). Stats are exact
 * counts of what was published (see device.ts for when a message counts).
 */
import type { IClientOptions } from 'mqtt';
import { ValidationError } from '../functions/core/errors.js';
import { type DeviceStats, emptyStats, type Proto, SimulatedDevice } from './device.js';
import { DEVICE_TYPE_IDS, getDeviceType } from './device-types.js';
import type { TrafficShape } from './generators/traffic.js';
import { FIRMWARE_FAILURES, type FirmwareFailure } from './lwm2m-client.js';
import { deriveSeed } from './rng.js';
import { createScheduler, type Scheduler } from './scheduler.js';

export interface FleetOptions {
  /** mqtt://host:1883 or mqtts://endpoint:8883 (then `mqtt` carries cert/key/ca). */
  url: string;
  devices: number;
  /** Sparkplug DDATA messages per second per device (steady shape). Default 1. */
  rate?: number;
  /** 'burst' = the seeds' mode: random 3-8 s gaps and occasional bursts. Default 'steady'. */
  shape?: 'steady' | 'burst' | TrafficShape;
  /** LwM2M Send messages per second per device. Default rate / 10. */
  lwm2mRate?: number;
  /** Bulk size for both protocols: metrics per DDATA and records per Send. */
  readingsPerMessage?: number;
  /** Metrics per DDATA (default: one sample of each metric of the child device). */
  metricsPerData?: number;
  /**
   * IoT rule that receives LwM2M uplinks by Basic Ingest (ADR 0024; locally the pipeline's
   * `dualpath_lwm2m`, on AWS the stack's rule name). Absent: uplinks on the binding topic (echoed).
   */
  lwm2mIngestRule?: string;
  /** Records per LwM2M Send (default 20). */
  readingsPerSend?: number;
  seed?: number;
  group?: string;
  /** Thing-name prefix. Default 'sim-'. */
  prefix?: string;
  /** 'typed': {prefix}{type}-{00000} (local default); 'indexed': {prefix}{0000} as the AWS provisioner names things. */
  naming?: 'typed' | 'indexed';
  /** First device index (several processes/tasks sharing one provisioned fleet). */
  firstIndex?: number;
  /** Device types to cycle through, or weights per type. Default: all four. */
  types?: string[] | Record<string, number>;
  /** LwM2M registration lifetime, seconds. Default 300. */
  lifetime?: number;
  /** Share of messages that are deliberately bad (counted separately). Default 0. */
  badRatio?: number;
  /** Connection churn: mean session length (s) and the share of abrupt drops (Will NDEATH). */
  churn?: { meanSessionS: number; abruptShare?: number };
  /** Connect ramp, connects per second across the fleet. Default 100. */
  connectsPerSecond?: number;
  /** Per-connection publish token bucket. Default 100/s (the IoT Core limit), burst 100. */
  publishRate?: number;
  publishBurst?: number;
  sparkplugQos?: 0 | 1;
  ndataEveryS?: number;
  keepalive?: number;
  registerTimeoutMs?: number;
  maxBuffered?: number;
  pmin?: number;
  pmax?: number;
  firmwareDownloadMs?: number;
  firmwareUpdateMs?: number;
  /**
   * Devices whose firmware updates fail, and how (an OMA object 5 Update Result): the listed ids, and/or
   * a deterministic fraction of the fleet (by a hash of the id and the seed).
   */
  firmwareFailures?: { ids?: string[]; fraction?: number; kind: FirmwareFailure };
  backoff?: { baseMs: number; maxMs: number };
  /** Extra MQTT options (TLS cert/key/ca for IoT Core). */
  mqtt?: IClientOptions;
  /** Explicit thing names, one per device (index - firstIndex); overrides `naming` (ADR 0018). */
  ids?: string[];
  /** Per-device MQTT options (each device's own certificate), merged over `mqtt`. */
  mqttFor?: (id: string) => IClientOptions | undefined;
  /** Injected clock (default Date.now at this edge) and scheduler (tests drive time by hand). */
  clock?: () => number;
  scheduler?: Scheduler;
  /** Aborting it ends the wait for the connect ramp: startFleet resolves at once, and stop() then
   * stops the devices started so far (the rest never start). A SIGTERM during a long ramp. */
  signal?: AbortSignal;
}

/**
 * `--firmware-fail KIND:FRACTION` or `KIND:ID,ID,...` (e.g. `integrity:0.05`,
 * `update-failed:sim-breaker-00003`) as the fleet's `firmwareFailures`.
 */
export function parseFirmwareFailures(spec: string): NonNullable<FleetOptions['firmwareFailures']> {
  const field = 'firmware-fail';
  const at = spec.indexOf(':');
  const kind = spec.slice(0, at) as FirmwareFailure;
  const rest = spec.slice(at + 1).trim();
  if (at < 0 || !(kind in FIRMWARE_FAILURES))
    throw new ValidationError(
      `--firmware-fail must be KIND:FRACTION or KIND:ID,... with KIND one of ${Object.keys(FIRMWARE_FAILURES).join(', ')}`,
      { field },
    );
  if (/^(0(\.\d+)?|1(\.0+)?)$/.test(rest)) return { kind, fraction: Number(rest) };
  const ids = rest.split(',').map((x) => x.trim());
  if (ids.length === 0 || ids.some((x) => x.length === 0))
    throw new ValidationError('--firmware-fail needs a fraction in [0, 1] or device ids after the colon', {
      field,
    });
  return { kind, ids };
}

/** Whether `id` is one of the devices `firmwareFailures` chose. */
export function failsFirmware(o: Pick<FleetOptions, 'firmwareFailures' | 'seed'>, id: string): boolean {
  const f = o.firmwareFailures;
  if (!f) return false;
  if (f.ids?.includes(id)) return true;
  if (!f.fraction) return false;
  let h = deriveSeed(o.seed ?? 1, 17);
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return (h % 10_000) / 10_000 < f.fraction;
}

export interface FleetStats {
  devices: number;
  connected: number;
  registered: number;
  messages: Record<Proto, number>;
  readings: Record<Proto, number>;
  bad: Record<Proto, number>;
  commands: Record<Proto, number>;
  reconnects: number;
  connectFailures: number;
  /** Connect failures by reason (see DeviceStats); empty when there were none. */
  connectFailureReasons: Record<string, number>;
  publishErrors: number;
  throttled: number;
  dropped: number;
  /** LwM2M records sampled and not yet sent (offline backlog and partial bulks). */
  buffered: number;
  elapsedMs: number;
}

export interface Fleet {
  devices: Array<{ id: string; type: string }>;
  stats(): FleetStats;
  /** The simulated device by thing name (tests, diagnostics). */
  device(id: string): SimulatedDevice | undefined;
  /** Resolves when every device is connected and LwM2M-registered (false on timeout). */
  ready(timeoutMs?: number): Promise<boolean>;
  /** Clean stop: LwM2M backlog flushed, DDEATHs, De-register, NDEATH, DISCONNECT. */
  stop(): Promise<void>;
}

function pickTypes(o: FleetOptions): string[] {
  const t = o.types ?? DEVICE_TYPE_IDS;
  const ids = Array.isArray(t) ? t : Object.keys(t);
  for (const id of ids) {
    if (!getDeviceType(id))
      throw new ValidationError(`unknown device type "${id}"; known: ${DEVICE_TYPE_IDS.join(', ')}`, {
        field: 'types',
      });
  }
  if (ids.length === 0)
    throw new ValidationError('types must name at least one device type', { field: 'types' });
  return ids;
}

/** The type of device i: cycling through the list, or by weights (deterministic, spread evenly). */
export function typeAt(o: FleetOptions, i: number): string {
  const ids = pickTypes(o);
  if (Array.isArray(o.types) || o.types === undefined) return ids[i % ids.length]!;
  const weights = ids.map((id) => Math.max(0, (o.types as Record<string, number>)[id] ?? 0));
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return ids[i % ids.length]!;
  const x = ((deriveSeed(o.seed ?? 1, i, 3) % 1_000_000) / 1_000_000) * total;
  let acc = 0;
  for (let k = 0; k < ids.length; k++) {
    acc += weights[k]!;
    if (x < acc) return ids[k]!;
  }
  return ids[ids.length - 1]!;
}

/** The devices startFleet(o) will run (id and type), without starting them: certificates, registration. */
export function plannedDevices(o: FleetOptions): Array<{ id: string; type: string }> {
  const first = o.firstIndex ?? 0;
  return Array.from({ length: o.devices }, (_, n) => {
    const type = typeAt(o, first + n);
    return { id: thingName(o, first + n, type), type };
  });
}

export function thingName(o: FleetOptions, i: number, type: string): string {
  const explicit = o.ids?.[i - (o.firstIndex ?? 0)];
  if (explicit !== undefined) return explicit;
  const prefix = o.prefix ?? 'sim-';
  if (o.naming === 'indexed') {
    const width = Math.max(4, String(Math.max(0, o.devices + (o.firstIndex ?? 0) - 1)).length);
    return `${prefix}${String(i).padStart(width, '0')}`;
  }
  return `${prefix}${type}-${String(i).padStart(5, '0')}`;
}

function validate(o: FleetOptions): void {
  const check = (ok: boolean, field: string, msg: string) => {
    if (!ok) throw new ValidationError(`${field} ${msg}`, { field });
  };
  check(Number.isInteger(o.devices) && o.devices >= 0, 'devices', 'must be a non-negative integer');
  check(/^mqtts?:\/\/|^wss?:\/\//.test(o.url), 'url', 'must be mqtt://, mqtts://, ws:// or wss://');
  if (o.rate !== undefined) check(o.rate > 0 && o.rate <= 1000, 'rate', 'must be in (0, 1000]');
  if (o.lwm2mRate !== undefined) check(o.lwm2mRate >= 0, 'lwm2mRate', 'must be ≥ 0');
  if (o.badRatio !== undefined) check(o.badRatio >= 0 && o.badRatio <= 1, 'badRatio', 'must be in [0, 1]');
  for (const f of ['readingsPerMessage', 'metricsPerData', 'readingsPerSend'] as const) {
    const v = o[f];
    if (v !== undefined)
      check(Number.isInteger(v) && v >= 1 && v <= 10_000, f, 'must be an integer in [1, 10000]');
  }
  if (o.connectsPerSecond !== undefined) check(o.connectsPerSecond > 0, 'connectsPerSecond', 'must be > 0');
  if (o.lifetime !== undefined) check(o.lifetime >= 10, 'lifetime', 'must be ≥ 10 s');
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  validate(o);
  const clock = o.clock ?? Date.now;
  const scheduler = o.scheduler ?? createScheduler(clock);
  const ownScheduler = o.scheduler === undefined;
  const started = clock();
  const rate = o.rate ?? 1;
  const shape: TrafficShape =
    o.shape === undefined || o.shape === 'steady'
      ? { kind: 'steady', rate }
      : o.shape === 'burst'
        ? { kind: 'burst' }
        : o.shape;
  const first = o.firstIndex ?? 0;
  const devices: SimulatedDevice[] = [];
  for (let n = 0; n < o.devices; n++) {
    const i = first + n;
    const typeId = typeAt(o, i);
    const type = getDeviceType(typeId)!;
    const metricsPerData = o.metricsPerData ?? o.readingsPerMessage;
    const id = thingName(o, i, typeId);
    const own = o.mqttFor?.(id);
    const mqttOptions = own ? { ...o.mqtt, ...own } : o.mqtt;
    devices.push(
      new SimulatedDevice({
        id,
        group: o.group ?? 'sim',
        type,
        seed: deriveSeed(o.seed ?? 1, i),
        url: o.url,
        clock,
        scheduler,
        ...(mqttOptions ? { mqtt: mqttOptions } : {}),
        ...(o.keepalive ? { keepalive: o.keepalive } : {}),
        sparkplug: {
          shape,
          ...(metricsPerData === undefined ? {} : { metricsPerMessage: metricsPerData }),
          qos: o.sparkplugQos ?? 0,
          ndataEveryS: o.ndataEveryS ?? 60,
        },
        lwm2m: {
          sendRate: o.lwm2mRate ?? rate / 10,
          readingsPerSend: o.readingsPerSend ?? o.readingsPerMessage ?? 20,
          lifetime: o.lifetime ?? 300,
          maxBuffered: o.maxBuffered ?? 10_000,
          registerTimeoutMs: o.registerTimeoutMs ?? 30_000,
          ...(o.pmin === undefined ? {} : { pmin: o.pmin }),
          ...(o.pmax === undefined ? {} : { pmax: o.pmax }),
          ...(o.firmwareDownloadMs === undefined ? {} : { firmwareDownloadMs: o.firmwareDownloadMs }),
          ...(o.firmwareUpdateMs === undefined ? {} : { firmwareUpdateMs: o.firmwareUpdateMs }),
          ...(failsFirmware(o, id) ? { firmwareFailure: o.firmwareFailures!.kind } : {}),
          ...(o.lwm2mIngestRule === undefined ? {} : { ingestRule: o.lwm2mIngestRule }),
        },
        badRatio: o.badRatio ?? 0,
        ...(o.churn
          ? { churn: { meanSessionS: o.churn.meanSessionS, abruptShare: o.churn.abruptShare ?? 0.5 } }
          : {}),
        backoff: o.backoff ?? { baseMs: 1000, maxMs: 60_000 },
        publishRate: o.publishRate ?? 100,
        publishBurst: o.publishBurst ?? o.publishRate ?? 100,
        maxQueued: 1000,
      }),
    );
  }
  const byId = new Map(devices.map((d) => [d.id, d]));
  if (byId.size !== devices.length) throw new ValidationError('thing names collide', { field: 'prefix' });

  // Connect ramp on the shared scheduler.
  const perSecond = o.connectsPerSecond ?? 100;
  let rampDone!: () => void;
  const ramp = new Promise<void>((r) => {
    rampDone = r;
  });
  devices.forEach((d, n) => {
    scheduler.at(started + (n * 1000) / perSecond, () => {
      d.start();
      if (n === devices.length - 1) rampDone();
    });
  });
  if (devices.length === 0) rampDone();
  if (ownScheduler) scheduler.start();
  if (ownScheduler && !o.signal?.aborted) {
    const signal = o.signal;
    let onAbort = (): void => undefined;
    const aborted = new Promise<void>((r) => {
      onAbort = () => r();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    await Promise.race([ramp, aborted]);
    signal?.removeEventListener('abort', onAbort);
  }

  const fleet: Fleet = {
    devices: devices.map((d) => ({ id: d.id, type: d.cfg.type.id })),
    device: (id) => byId.get(id),
    stats() {
      const s: FleetStats = {
        devices: devices.length,
        connected: 0,
        registered: 0,
        ...emptyStats(),
        connectFailureReasons: {},
        buffered: 0,
        elapsedMs: clock() - started,
      };
      for (const d of devices) {
        if (d.connected) s.connected++;
        if (d.registered) s.registered++;
        s.buffered += d.buffered;
        add(s, d.stats);
      }
      return s;
    },
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (devices.every((d) => d.registered)) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    },
    async stop() {
      if (ownScheduler) scheduler.stop();
      await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
    },
  };
  return fleet;
}

function add(s: DeviceStats, d: DeviceStats): void {
  for (const p of ['sparkplug', 'lwm2m'] as const) {
    s.messages[p] += d.messages[p];
    s.readings[p] += d.readings[p];
    s.bad[p] += d.bad[p];
    s.commands[p] += d.commands[p];
  }
  s.reconnects += d.reconnects;
  s.connectFailures += d.connectFailures;
  if (d.connectFailureReasons) {
    s.connectFailureReasons ??= {};
    const into = s.connectFailureReasons;
    for (const [k, v] of Object.entries(d.connectFailureReasons)) into[k] = (into[k] ?? 0) + v;
  }
  s.publishErrors += d.publishErrors;
  s.throttled += d.throttled;
  s.dropped += d.dropped;
}
