/**
 * One simulated device: ONE MQTT 3.1.1 session (client id = thing name) carrying both protocols.
 *  - Sparkplug B edge node (sparkplug-node.ts): NDEATH as the Will with bdSeq, NBIRTH + DBIRTHs after
 *    subscribing to NCMD/DCMD, alias-only DDATA/NDATA, rebirth on NCMD, DCMD writes applied and
 *    reported, DDEATH + NDEATH on a clean stop, a new bdSeq on every connect.
 *  - LwM2M 1.2 client (lwm2m-client.ts): Register (waits for 2.01), Update at half the lifetime, bulk
 *    Send of records sampled continuously (kept while offline, flushed after re-registration), Notify
 *    for observations, answers to the server's requests, reboot on Execute /3/0/4.
 * Everything time-driven runs on the fleet's one scheduler; values come from the device type's pure
 * generators with the device's seeded RNGs. Publishes pass a per-connection token bucket.
 *
 * Counting (exact): a message and its readings are counted in the publish callback without error, i.e.
 * when the client has written it (QoS 0) or the broker has acknowledged it (QoS 1).
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { SenmlValue } from '../functions/core/senml/index.js';
import { lwm2mUplinkTopic, sparkplugTopic } from '../functions/core/topics.js';
import { badLwm2m, badSparkplug } from './bad-messages.js';
import type { DeviceState, DeviceType, SignalDef, SignalValue } from './device-types.js';
import { backoffMs, nextEmissions, type TrafficShape } from './generators/traffic.js';
import {
  type ClientEvent,
  type FirmwareFailure,
  fetchPackage,
  Lwm2mClient,
  type Lwm2mClient as Lwm2mClientType,
  type Lwm2mOut,
} from './lwm2m-client.js';
import { createRng, deriveSeed, type Rng } from './rng.js';
import { type Scheduler, TokenBucket } from './scheduler.js';
import { type NodeValues, type Sample, SparkplugNode, type SpMessage } from './sparkplug-node.js';

export type Proto = 'sparkplug' | 'lwm2m';

const noop = (): void => undefined;
const quietMqtt = !/mqtt/i.test(process.env.DEBUG ?? '');

export interface DeviceStats {
  messages: Record<Proto, number>;
  readings: Record<Proto, number>;
  bad: Record<Proto, number>;
  commands: Record<Proto, number>;
  reconnects: number;
  connectFailures: number;
  /** Connect failures by reason (the error's code, or its message): made on the first failure. */
  connectFailureReasons?: Record<string, number>;
  publishErrors: number;
  /** Publishes delayed by the per-connection token bucket. */
  throttled: number;
  /** Messages or records dropped: publish queue full, offline buffer full, session ended while queued. */
  dropped: number;
}

export interface DeviceConfig {
  id: string;
  group: string;
  type: DeviceType;
  seed: number;
  url: string;
  clock: () => number;
  scheduler: Scheduler;
  mqtt?: IClientOptions;
  keepalive?: number;
  sparkplug: {
    shape: TrafficShape;
    /** Metrics per DDATA (default: one sample of every metric of the child device). */
    metricsPerMessage?: number;
    qos: 0 | 1;
    ndataEveryS: number;
  };
  lwm2m: {
    /** LwM2M Send messages per second per device (0: no Send). */
    sendRate: number;
    readingsPerSend: number;
    lifetime: number;
    maxBuffered: number;
    registerTimeoutMs: number;
    pmin?: number;
    pmax?: number;
    firmwareDownloadMs?: number;
    firmwareUpdateMs?: number;
    /** How firmware updates fail on this device (ADR 0022); absent: they succeed. */
    firmwareFailure?: FirmwareFailure;
    /** Package download (default: an HTTP GET with Node's fetch); the device checks its SHA-256. */
    download?: (url: string) => Promise<Uint8Array>;
    /**
     * Publish uplinks by AWS IoT Basic Ingest into this rule (`$aws/rules/{rule}/lwm2m/rd/{ep}`, ADR
     * 0024): the broker never delivers them, so the device does not get its own uplinks back. Absent:
     * the binding topic itself, where a subscribed sender receives each of its uplinks again.
     */
    ingestRule?: string;
  };
  badRatio: number;
  churn?: { meanSessionS: number; abruptShare: number };
  backoff: { baseMs: number; maxMs: number };
  /** Token bucket per connection: publishes per second and burst. */
  publishRate: number;
  publishBurst: number;
  maxQueued: number;
}

/** A connect failure's reason: the socket error's code (ECONNRESET…) or the MQTT error's message. */
function failureReason(error: Error & { code?: string | number }): string {
  if (typeof error.code === 'string') return error.code;
  return (error.message || error.name || 'unknown').slice(0, 60);
}

export const emptyStats = (): DeviceStats => ({
  messages: { sparkplug: 0, lwm2m: 0 },
  readings: { sparkplug: 0, lwm2m: 0 },
  bad: { sparkplug: 0, lwm2m: 0 },
  commands: { sparkplug: 0, lwm2m: 0 },
  reconnects: 0,
  connectFailures: 0,
  publishErrors: 0,
  throttled: 0,
  dropped: 0,
});

interface Outgoing {
  topic: string;
  bytes: Uint8Array;
  qos: 0 | 1;
  proto: Proto;
  readings: number;
  bad?: boolean;
  session: number;
  done?: (ok: boolean) => void;
}

const QOS0 = Object.freeze({ qos: 0 as const });
const QOS1 = Object.freeze({ qos: 1 as const });

type Record_ = { name: string; time: number; value: SenmlValue };

export class SimulatedDevice {
  readonly stats: DeviceStats = emptyStats();
  readonly node: SparkplugNode;
  readonly lwm2m: Lwm2mClientType;
  /** Where LwM2M uplinks go: Basic Ingest into the LwM2M rule, or the binding topic. */
  private readonly lwm2mUplink: string;
  readonly state: DeviceState;
  private readonly physics: Rng;
  private readonly traffic: Rng;
  private stateTime: number;
  private client: MqttClient | undefined;
  private session = 0;
  private everConnected = false;
  private attempt = 0;
  private stopping = false;
  private isConnected = false;
  private readonly queue: Outgoing[] = [];
  private draining = false;
  private bucket: TokenBucket;
  private readonly buffer: Record_[] = [];
  private readonly sendSignals: SignalDef[];
  private childTurn = 0;
  /** Per child device (index in type.childDevices): its Sparkplug signals and next metric in rotation. */
  private readonly childSignals: SignalDef[][];
  private readonly rotation: number[];
  private lastEmission = 0;
  /** Time of the last sample sent per child device. */
  private readonly lastSampleAt: number[];
  private connectedAt = 0;
  private registerAttempt = 0;
  /** Unanswered Registers in a row in `registerSession` (the retry timer doubles with each). */
  private registerTries = 0;
  private registerSession = -1;
  private observeLoop = false;
  /** Readings in the first LwM2M Send (a random share of a bulk, see scheduleSampling); then undefined. */
  private firstBulk: number | undefined;
  /** Publishes handed to the client and not yet settled (no per-publish promise: see settled()). */
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(readonly cfg: DeviceConfig) {
    const now = cfg.clock();
    this.physics = createRng(deriveSeed(cfg.seed, 0, 1));
    this.traffic = createRng(deriveSeed(cfg.seed, 0, 2));
    this.state = cfg.type.init(this.physics, now);
    this.stateTime = now;
    this.bucket = new TokenBucket(cfg.publishRate, cfg.publishBurst, now);
    this.node = new SparkplugNode(cfg.group, cfg.id, cfg.type, this.traffic.int(0, 255));
    this.sendSignals = cfg.type.signals.filter((s) => s.lwm2m && s.send);
    this.childSignals = cfg.type.childDevices.map((d) => this.node.signalsOf(d));
    this.rotation = cfg.type.childDevices.map(() => 0);
    this.lastSampleAt = cfg.type.childDevices.map(() => -1);
    this.lwm2mUplink = lwm2mUplinkTopic(cfg.id, cfg.lwm2m.ingestRule);
    this.lwm2m = new Lwm2mClient({
      endpoint: cfg.id,
      type: cfg.type,
      lifetime: cfg.lwm2m.lifetime,
      clock: cfg.clock,
      schedule: (ms, fn) => cfg.scheduler.after(ms, fn),
      read: (key) => {
        this.advance(cfg.clock());
        return this.state[key];
      },
      info: {
        manufacturer: 'Dualpath Devices',
        model: cfg.type.model,
        serial: `SN${deriveSeed(cfg.seed, 7).toString(16).toUpperCase().padStart(8, '0')}`,
        firmware: '1.4.2',
        hardware: 'rev-C',
        software: 'dualpath-sim 1.0',
      },
      status: () => ({
        memoryFree: 1800 + (deriveSeed(cfg.seed, 9) % 200),
        rssi: this.rssi(),
        linkQuality: 90,
      }),
      ...(cfg.lwm2m.pmin === undefined ? {} : { defaultPmin: cfg.lwm2m.pmin }),
      ...(cfg.lwm2m.pmax === undefined ? {} : { defaultPmax: cfg.lwm2m.pmax }),
      ...(cfg.lwm2m.firmwareDownloadMs === undefined
        ? {}
        : { firmwareDownloadMs: cfg.lwm2m.firmwareDownloadMs }),
      ...(cfg.lwm2m.firmwareUpdateMs === undefined ? {} : { firmwareUpdateMs: cfg.lwm2m.firmwareUpdateMs }),
      ...(cfg.lwm2m.firmwareFailure === undefined ? {} : { firmwareFailure: cfg.lwm2m.firmwareFailure }),
      download: cfg.lwm2m.download ?? ((url) => fetchPackage(url)),
    });
    this.lwm2m.onFirmware = () => {
      if (this.isConnected && this.lwm2m.registered) this.sendLwm2m(this.lwm2m.update(true));
    };
  }

  get id(): string {
    return this.cfg.id;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get registered(): boolean {
    return this.isConnected && this.lwm2m.registered;
  }

  /** Records sampled but not yet sent (offline backlog or below the bulk size). */
  get buffered(): number {
    return this.buffer.length;
  }

  private rssi(): number {
    return -65 - ((deriveSeed(this.cfg.seed, 11) % 20) | 0);
  }

  /** Advances the device physics to time t (monotonic; earlier times reuse the current state). */
  private advance(t: number): void {
    if (t <= this.stateTime) return;
    this.cfg.type.step(this.state, t, (t - this.stateTime) / 1000, this.physics);
    this.stateTime = t;
  }

  private nodeValues(now: number): NodeValues {
    return {
      type: this.cfg.type.id,
      firmware: this.lwm2m.info.firmware,
      uptime: this.connectedAt ? Math.floor((now - this.connectedAt) / 1000) : 0,
      rssi: this.rssi(),
    };
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Starts the device: LwM2M sampling (runs while offline too) and the first connect. */
  start(): void {
    this.scheduleSampling();
    this.connect();
  }

  connect(): void {
    if (this.stopping) return;
    const cfg = this.cfg;
    if (this.everConnected || this.session > 0) this.node.newSession();
    const session = ++this.session;
    const now = cfg.clock();
    const client = mqtt.connect(cfg.url, {
      clientId: cfg.id,
      protocolVersion: 4,
      clean: true,
      keepalive: cfg.keepalive ?? 60,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      resubscribe: false,
      // mqtt.js calls its logger ~15 times per publish (debug's rest arguments allocate even when
      // disabled): a no-op unless DEBUG asks for it.
      ...(quietMqtt ? { log: noop } : {}),
      will: {
        topic: sparkplugTopic(cfg.group, 'NDEATH', cfg.id),
        payload: Buffer.from(this.node.death(now).payload),
        qos: 1,
        retain: false,
      },
      ...cfg.mqtt,
    });
    this.client = client;
    client.on('connect', () => {
      if (session !== this.session) return;
      this.onConnected(session);
    });
    client.on('message', (topic, payload) => {
      if (session === this.session) this.onMessage(topic, payload);
    });
    client.on('error', (error: Error & { code?: string | number }) => {
      if (session !== this.session || this.isConnected) return;
      this.stats.connectFailures++;
      this.stats.connectFailureReasons ??= {};
      const reasons = this.stats.connectFailureReasons;
      const reason = failureReason(error);
      reasons[reason] = (reasons[reason] ?? 0) + 1;
    });
    client.on('close', () => {
      if (session !== this.session) return;
      this.onClosed(session);
    });
  }

  private onConnected(session: number): void {
    const cfg = this.cfg;
    const client = this.client!;
    this.isConnected = true;
    this.attempt = 0;
    if (this.everConnected) this.stats.reconnects++;
    this.everConnected = true;
    const now = cfg.clock();
    this.connectedAt = now;
    this.lastEmission = now;
    this.bucket = new TokenBucket(cfg.publishRate, cfg.publishBurst, now);
    client.subscribe(
      [
        sparkplugTopic(cfg.group, 'NCMD', cfg.id),
        `${sparkplugTopic(cfg.group, 'DCMD', cfg.id, 'x').slice(0, -1)}+`,
        this.lwm2m.topic,
      ],
      { qos: 1 },
      (err) => {
        if (err || session !== this.session) return;
        this.births();
        this.register(session);
        this.scheduleEmissions(session);
        this.scheduleNodeData(session);
        this.scheduleChurn(session);
      },
    );
  }

  private onClosed(session: number): void {
    // mqtt.js keeps the callbacks of QoS 1 publishes the broker never acknowledged until the client
    // ends (a reconnect of the same client would resend them, but each session has a new client): end
    // it, so they fail now. Otherwise they never settle — stop() waited for them forever, and the LwM2M
    // records they carried neither counted as sent nor went back to the buffer.
    this.client?.end(true);
    const wasConnected = this.isConnected;
    this.isConnected = false;
    this.lwm2m.disconnected();
    this.observeLoop = false;
    // Queued (not yet handed to the client) messages of this session are lost; records go back to the buffer.
    this.flushQueue(session, false);
    if (this.stopping) return;
    const delay = wasConnected
      ? backoffMs(0, this.cfg.backoff.baseMs, this.cfg.backoff.maxMs, this.traffic)
      : backoffMs(++this.attempt, this.cfg.backoff.baseMs, this.cfg.backoff.maxMs, this.traffic);
    this.cfg.scheduler.after(delay, () => {
      if (session === this.session && !this.stopping) this.connect();
    });
  }

  /** Drops the connection without DISCONNECT: the broker publishes the Will (NDEATH). */
  dropConnection(): void {
    this.client?.end(true);
  }

  /** Clean stop: flush the LwM2M backlog, DDEATHs, De-register, NDEATH, DISCONNECT. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const client = this.client;
    if (this.isConnected && client) {
      const now = this.cfg.clock();
      if (this.lwm2m.registered) this.flushBuffer(true);
      for (const d of this.cfg.type.childDevices) this.sendSp(this.node.deviceDeath(d, now));
      if (this.lwm2m.registered) this.sendLwm2m(this.lwm2m.deregister());
      this.sendSp(this.node.death(now), 1);
      this.flushQueue(this.session, true);
      await this.settled();
    }
    this.session++;
    this.isConnected = false;
    if (client) await client.endAsync().catch(() => undefined);
  }

  // ---- publishing ------------------------------------------------------------------------------

  private enqueue(out: Outgoing): void {
    if (!this.isConnected) {
      out.done?.(false);
      this.stats.dropped++;
      return;
    }
    if (this.queue.length === 0 && this.bucket.tryTake(this.cfg.clock())) {
      this.write(out);
      return;
    }
    if (this.queue.length >= this.cfg.maxQueued) {
      out.done?.(false);
      this.stats.dropped++;
      return;
    }
    this.stats.throttled++;
    this.queue.push(out);
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    this.cfg.scheduler.after(this.bucket.waitMs(this.cfg.clock()), () => {
      this.draining = false;
      const now = this.cfg.clock();
      while (this.queue.length > 0 && this.bucket.tryTake(now)) this.write(this.queue.shift()!);
      if (this.queue.length > 0) this.scheduleDrain();
    });
  }

  /** Stop: write everything queued now (send = true), or abandon it (session over). */
  private flushQueue(session: number, send: boolean): void {
    const items = this.queue.splice(0, this.queue.length);
    for (const o of items) {
      if (send && o.session === session) this.write(o);
      else {
        this.stats.dropped++;
        o.done?.(false);
      }
    }
  }

  private write(o: Outgoing): void {
    const client = this.client;
    if (!client || o.session !== this.session || !this.isConnected) {
      this.stats.dropped++;
      o.done?.(false);
      return;
    }
    this.inflight++;
    const bytes = o.bytes;
    client.publish(
      o.topic,
      Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      o.qos === 0 ? QOS0 : QOS1,
      (err) => {
        if (--this.inflight === 0 && this.idleWaiters.length > 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
        if (err) {
          this.stats.publishErrors++;
          o.done?.(false);
          return;
        }
        if (o.bad) this.stats.bad[o.proto]++;
        else {
          this.stats.messages[o.proto]++;
          this.stats.readings[o.proto] += o.readings;
        }
        o.done?.(true);
      },
    );
  }

  /** Resolves when every publish handed to the client so far has settled. */
  private settled(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private sendSp(m: SpMessage, qos: 0 | 1 = this.cfg.sparkplug.qos): void {
    this.enqueue({
      topic: m.topic,
      bytes: m.payload,
      qos,
      proto: 'sparkplug',
      readings: m.readings,
      session: this.session,
    });
  }

  private sendLwm2m(o: Lwm2mOut, done?: (ok: boolean) => void): void {
    this.enqueue({
      topic: this.lwm2mUplink,
      bytes: o.bytes,
      qos: 1,
      proto: 'lwm2m',
      readings: o.readings,
      session: this.session,
      ...(done ? { done } : {}),
    });
  }

  // ---- Sparkplug -------------------------------------------------------------------------------

  private births(): void {
    const now = this.cfg.clock();
    this.advance(now);
    for (const m of this.node.births(now, this.nodeValues(now), (k) => this.state[k])) this.sendSp(m);
    // The births carry a sample of every metric at `now`: DATA samples come after it.
    this.lastEmission = now;
    this.lastSampleAt.fill(now);
  }

  /**
   * Schedules the next emission(s) after `from`, the due time of the previous one (drift-free: a busy
   * event loop running callbacks late does not lower the configured rate). More than one gap behind,
   * the schedule restarts from now rather than catching up in a burst.
   */
  private scheduleEmissions(session: number, from?: number): void {
    const delays = nextEmissions(this.cfg.sparkplug.shape, this.traffic);
    const now = this.cfg.clock();
    const base = from !== undefined && now - from < delays[0]! ? from : now;
    for (let i = 0; i < delays.length; i++) {
      const due = base + delays[i]!;
      const last = i === delays.length - 1;
      this.cfg.scheduler.at(due, () => {
        if (session !== this.session || !this.isConnected) return;
        this.emit();
        if (last) this.scheduleEmissions(session, due);
      });
    }
  }

  /** One DDATA for the next child device (round robin) with K metrics, each with its own sample time. */
  emit(): void {
    const cfg = this.cfg;
    const now = cfg.clock();
    const children = cfg.type.childDevices;
    const c = this.childTurn++ % children.length;
    const device = children[c]!;
    const signals = this.childSignals[c]!;
    if (signals.length === 0) return;
    const k = cfg.sparkplug.metricsPerMessage ?? signals.length;
    const n = Math.ceil(k / signals.length);
    const span = Math.max(0, now - this.lastEmission);
    this.lastEmission = now;
    const start = this.rotation[c]!;
    this.rotation[c] = (start + k) % signals.length;
    const samples: Sample[] = [];
    // Sample times strictly increase per child device: after a scheduler catch-up two emissions can
    // be a few ms apart, and rounded slot times must not repeat a (device, metric, time) already sent.
    let last = this.lastSampleAt[c]!;
    for (let j = 0; j < n; j++) {
      const t = Math.max(Math.round(now - ((n - 1 - j) * span) / n), last + 1);
      last = t;
      this.advance(t);
      const time = Math.max(t, 0);
      for (let i = j * signals.length; i < Math.min(k, (j + 1) * signals.length); i++) {
        const def = signals[(start + i) % signals.length]!;
        const v = this.state[def.key];
        if (v !== undefined) samples.push({ key: def.key, time, value: v });
      }
    }
    this.lastSampleAt[c] = last;
    if (this.traffic.chance(cfg.badRatio)) {
      const bad = badSparkplug(this.node, device, now, this.traffic);
      this.enqueue({
        topic: bad.topic,
        bytes: bad.payload,
        qos: cfg.sparkplug.qos,
        proto: 'sparkplug',
        readings: 0,
        bad: true,
        session: this.session,
      });
      return;
    }
    this.sendSp(this.node.data(device, now, samples));
  }

  private scheduleNodeData(session: number): void {
    const every = this.cfg.sparkplug.ndataEveryS;
    if (!(every > 0)) return;
    this.cfg.scheduler.after(every * 1000, () => {
      if (session !== this.session || !this.isConnected) return;
      const now = this.cfg.clock();
      this.sendSp(this.node.nodeData(now, this.nodeValues(now)));
      this.scheduleNodeData(session);
    });
  }

  private scheduleChurn(session: number): void {
    const churn = this.cfg.churn;
    if (!churn || !(churn.meanSessionS > 0)) return;
    this.cfg.scheduler.after(this.traffic.exponential(churn.meanSessionS) * 1000, () => {
      if (session !== this.session || !this.isConnected || this.stopping) return;
      if (this.traffic.chance(churn.abruptShare)) {
        this.dropConnection();
        return;
      }
      // Clean disconnect: deaths first (the Will is then discarded by the broker), then DISCONNECT.
      const now = this.cfg.clock();
      for (const d of this.cfg.type.childDevices) this.sendSp(this.node.deviceDeath(d, now));
      if (this.lwm2m.registered) this.sendLwm2m(this.lwm2m.deregister());
      this.sendSp(this.node.death(now), 1);
      this.flushQueue(session, true);
      void this.settled().then(() => this.client?.end(false));
    });
  }

  // ---- LwM2M -----------------------------------------------------------------------------------

  private register(session: number): void {
    const attempt = ++this.registerAttempt;
    if (session !== this.registerSession) {
      this.registerSession = session;
      this.registerTries = 0;
    }
    // Unanswered Registers are retried after the timeout, doubling up to 8× (LwM2M 1.2 server object
    // /1/x/17-18, Communication Retry Count and Timer: timer × 2^(n-1)), with ±10 % jitter: a server
    // slowed by a connect storm is not sent the whole fleet's Registers again every timeout.
    const wait =
      this.cfg.lwm2m.registerTimeoutMs *
      Math.min(8, 2 ** this.registerTries++) *
      (0.9 + 0.2 * this.traffic.next());
    this.sendLwm2m(this.lwm2m.register());
    this.cfg.scheduler.after(wait, () => {
      if (session !== this.session || !this.isConnected || this.lwm2m.registered) return;
      if (attempt !== this.registerAttempt) return;
      this.register(session);
    });
  }

  private scheduleUpdate(session: number): void {
    this.cfg.scheduler.after(Math.max(1000, (this.lwm2m.lifetime * 1000) / 2), () => {
      if (session !== this.session || !this.isConnected || !this.lwm2m.registered) return;
      this.sendLwm2m(this.lwm2m.update());
      this.scheduleUpdate(session);
    });
  }

  private scheduleSampling(): void {
    const { sendRate, readingsPerSend } = this.cfg.lwm2m;
    if (!(sendRate > 0) || this.sendSignals.length === 0) return;
    const interval = (1000 * this.sendSignals.length) / (sendRate * readingsPerSend);
    // The first Send carries a random share of a full bulk: the fleet's Sends are spread over the Send
    // period from the start, as in a fleet that has run for a while (not all at one period after boot).
    this.firstBulk = Math.max(1, Math.ceil(this.traffic.next() * readingsPerSend));
    // Drift-free like the emissions: the next tick follows the previous one's due time.
    let due = this.cfg.clock() + interval * this.traffic.next();
    const tick = () => {
      if (this.stopping) return;
      this.sample();
      const next = interval * (0.9 + 0.2 * this.traffic.next());
      const now = this.cfg.clock();
      due = now - due < next ? due + next : now + next;
      this.cfg.scheduler.at(due, tick);
    };
    this.cfg.scheduler.at(due, tick);
  }

  /** Samples the LwM2M Send signals into the buffer (also while offline) and sends full bulks. */
  sample(): void {
    const now = this.cfg.clock();
    this.advance(now);
    for (const s of this.sendSignals) {
      const v = this.state[s.key];
      if (v === undefined) continue;
      if (typeof v === 'number') this.lwm2m.noteSample(s.lwm2m!, v);
      this.buffer.push({ name: s.lwm2m!, time: now, value: senml(v) });
    }
    const over = this.buffer.length - this.cfg.lwm2m.maxBuffered;
    if (over > 0) {
      this.buffer.splice(0, over);
      this.stats.dropped += over;
    }
    this.flushBuffer(false);
  }

  /** Sends the buffer in bulks of K (all of it, in larger bulks, after a reconnect or on stop). */
  private flushBuffer(all: boolean): void {
    if (!this.isConnected || !this.lwm2m.registered) return;
    for (;;) {
      const k = this.firstBulk ?? this.cfg.lwm2m.readingsPerSend;
      if (!(this.buffer.length >= k || (all && this.buffer.length > 0))) return;
      const chunk = all || this.buffer.length > 2 * k ? Math.max(k, 250) : k;
      const records = this.buffer.splice(0, Math.min(chunk, this.buffer.length));
      if (this.traffic.chance(this.cfg.badRatio)) {
        this.buffer.unshift(...records);
        const bad = badLwm2m(this.lwm2m, records, this.traffic);
        this.enqueue({
          topic: this.lwm2mUplink,
          bytes: bad,
          qos: 1,
          proto: 'lwm2m',
          readings: 0,
          bad: true,
          session: this.session,
        });
        if (!all) return;
        continue;
      }
      const session = this.session;
      this.firstBulk = undefined;
      this.sendLwm2m(this.lwm2m.send(records), (ok) => {
        // Not acknowledged: keep the records (with their own times) for the next session.
        if (!ok && !this.stopping && session <= this.session) this.buffer.unshift(...records);
      });
    }
  }

  private checkObservations(session: number): void {
    if (session !== this.session || !this.isConnected) {
      this.observeLoop = false;
      return;
    }
    const now = this.cfg.clock();
    this.advance(now);
    for (const o of this.lwm2m.notifications(now)) this.sendLwm2m(o);
    const period = this.lwm2m.checkPeriodS;
    if (!Number.isFinite(period)) {
      this.observeLoop = false;
      return;
    }
    this.cfg.scheduler.after(period * 1000, () => this.checkObservations(session));
  }

  private onLwm2mEvents(events: ClientEvent[]): void {
    const session = this.session;
    for (const e of events) {
      switch (e.kind) {
        case 'registered':
          this.registerTries = 0;
          this.scheduleUpdate(session);
          this.flushBuffer(true);
          break;
        case 'register-failed':
          this.cfg.scheduler.after(backoffMs(this.registerAttempt, 1000, 60_000, this.traffic), () => {
            if (session === this.session && this.isConnected && !this.lwm2m.registered)
              this.register(session);
          });
          break;
        case 'update-failed':
        case 'send-failed':
          if (!this.lwm2m.registered) this.register(session);
          break;
        case 'update-trigger':
          this.sendLwm2m(this.lwm2m.update());
          break;
        case 'reboot':
          this.reboot();
          break;
        default:
          break;
      }
    }
    if (this.lwm2m.observationCount > 0 && !this.observeLoop) {
      this.observeLoop = true;
      this.cfg.scheduler.after(this.lwm2m.checkPeriodS * 1000, () => this.checkObservations(session));
    }
  }

  /** Reboot: the reply goes out first, then the session drops (Will NDEATH) and reconnects. */
  private reboot(): void {
    const session = this.session;
    void this.settled().then(() => {
      this.cfg.scheduler.after(100, () => {
        if (session === this.session && this.isConnected) this.dropConnection();
      });
    });
  }

  // ---- incoming --------------------------------------------------------------------------------

  private onMessage(topic: string, payload: Uint8Array): void {
    const cfg = this.cfg;
    if (topic === this.lwm2m.topic) {
      const { replies, events } = this.lwm2m.receive(payload);
      if (replies.length > 0) this.stats.commands.lwm2m++;
      for (const r of replies) this.sendLwm2m(r);
      this.onLwm2mEvents(events);
      return;
    }
    let result: ReturnType<SparkplugNode['command']>;
    try {
      result = this.node.command(topic, payload);
    } catch {
      return; // not a command for this node, or undecodable: a real edge node ignores it too
    }
    this.stats.commands.sparkplug++;
    if (result.rebirth) this.births();
    const now = cfg.clock();
    const touched = new Set<string>();
    for (const w of result.writes) {
      this.advance(now);
      if (cfg.type.write(this.state, w.key, w.value as SignalValue, now)) touched.add(w.device);
    }
    for (const device of touched) {
      const samples = this.node
        .signalsOf(device)
        .map((d) => ({ key: d.key, time: now, value: this.state[d.key]! }));
      this.sendSp(this.node.data(device, now, samples));
    }
    if (result.reboot) this.reboot();
  }
}

function senml(v: SignalValue): SenmlValue {
  return typeof v === 'number'
    ? { kind: 'v', value: v }
    : typeof v === 'boolean'
      ? { kind: 'vb', value: v }
      : { kind: 'vs', value: v };
}
