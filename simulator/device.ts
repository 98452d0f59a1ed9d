/**
 * One simulated device: ONE MQTT session (client id = thing name) speaking both protocols.
 * Sparkplug B: NDEATH as the Will with bdSeq, NBIRTH (with Node Control/Rebirth), DBIRTH of its child
 * device, alias-only DDATA with seq 0-255 wrapping, answers NCMD rebirth and DCMD writes.
 * LwM2M 1.2 over the OMA MQTT binding: Register, Update within the lifetime, bulk Send (SenML CBOR with
 * each record's own timestamp, including records buffered while offline), answers Read / Write /
 * Execute / Observe (+ Notify) from the server, and ignores its own messages echoed on the topic.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../functions/core/lwm2m/message.js';
import { compressRecords, encodeSenml, type SenmlValue } from '../functions/core/senml/index.js';
import { decodePayload, encodePayload, type SpMetricInput } from '../functions/core/sparkplug/codec.js';
import { DataType } from '../functions/core/sparkplug/types.js';
import { lwm2mTopic, sparkplugTopic } from '../functions/core/topics.js';
import { createRng, type DeviceModel } from './models.js';

export interface DeviceStats {
  messages: { sparkplug: number; lwm2m: number };
  readings: { sparkplug: number; lwm2m: number };
  bad: number;
  reconnects: number;
  commandsAnswered: number;
}

export interface DeviceOptions {
  id: string;
  group: string;
  model: DeviceModel;
  url: string;
  seed: number;
  clock: () => number;
  /** Records per LwM2M Send (bulk size). */
  readingsPerSend: number;
  lifetime: number;
  badRatio: number;
  mqtt?: IClientOptions;
}

const CHILD = 'meter';

export class SimulatedDevice {
  readonly stats: DeviceStats = {
    messages: { sparkplug: 0, lwm2m: 0 },
    readings: { sparkplug: 0, lwm2m: 0 },
    bad: 0,
    reconnects: 0,
    commandsAnswered: 0,
  };
  private client: MqttClient | undefined;
  private readonly rng: () => number;
  private readonly state: Record<string, number> = {};
  private bdSeq = 0;
  private seq = 0;
  private token = 0;
  private lastUpdate = 0;
  private readonly sentTokens = new Set<number>();
  private readonly bulk: Array<{ name: string; time: number; value: SenmlValue }> = [];
  private readonly observations = new Map<string, number>();
  private last: Record<string, number | boolean> = {};
  private stopped = false;

  constructor(private readonly o: DeviceOptions) {
    this.rng = createRng(o.seed);
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  async connect(): Promise<void> {
    const o = this.o;
    const will = encodePayload({
      timestamp: o.clock(),
      metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq }],
    });
    this.client = await mqtt.connectAsync(o.url, {
      clientId: o.id,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      will: {
        topic: sparkplugTopic(o.group, 'NDEATH', o.id),
        payload: Buffer.from(will),
        qos: 1,
        retain: false,
      },
      ...o.mqtt,
    });
    this.client.on(
      'message',
      (topic, payload) => void this.onMessage(topic, new Uint8Array(payload)).catch(() => {}),
    );
    await this.client.subscribeAsync(
      [sparkplugTopic(o.group, 'NCMD', o.id), `spBv1.0/${o.group}/DCMD/${o.id}/+`, lwm2mTopic(o.id)],
      { qos: 1 },
    );
    this.last = o.model.sample(o.clock(), this.rng, this.state);
    await this.births();
    await this.register();
  }

  private publish(
    topic: string,
    payload: Uint8Array,
    protocol: 'sparkplug' | 'lwm2m',
    readings: number,
    qos: 0 | 1 = 1,
  ): Promise<void> {
    if (!this.client?.connected) return Promise.resolve();
    return this.client.publishAsync(topic, Buffer.from(payload), { qos }).then(() => {
      this.stats.messages[protocol]++;
      this.stats.readings[protocol] += readings;
    });
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) % 256;
    return s;
  }

  private async births(): Promise<void> {
    const { group, id, model, clock } = this.o;
    const now = clock();
    this.seq = 0;
    await this.publish(
      sparkplugTopic(group, 'NBIRTH', id),
      encodePayload({
        timestamp: now,
        seq: this.nextSeq(),
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq, timestamp: now },
          { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false, timestamp: now },
          { name: 'Properties/Type', alias: 1, datatype: DataType.String, value: model.type, timestamp: now },
        ],
      }),
      'sparkplug',
      1,
    );
    await this.publish(
      sparkplugTopic(group, 'DBIRTH', id, CHILD),
      encodePayload({
        timestamp: now,
        seq: this.nextSeq(),
        metrics: model.signals.map((s, i) => ({
          name: s.name,
          alias: 100 + i,
          datatype: s.datatype,
          value: this.last[s.name] ?? null,
          timestamp: now,
          ...(s.unit
            ? { properties: { keys: ['engUnit'], values: [{ type: DataType.String, value: s.unit }] } }
            : {}),
        })),
      }),
      'sparkplug',
      model.signals.length,
    );
  }

  private async register(): Promise<void> {
    const links = ['</>;ct="112 110"', ...this.o.model.objects.map((p) => `<${p}>`)].join(',');
    await this.lwm2mRequest({
      operation: Operation.Register,
      ep: this.o.id,
      lifetime: this.o.lifetime,
      version: '1.2',
      binding: 'M',
      payload: new TextEncoder().encode(links),
    });
    this.lastUpdate = this.o.clock();
  }

  private lwm2mRequest(m: Lwm2mMessage, readings = 0): Promise<void> {
    this.token = (this.token % 0xffff_ff00) + 1;
    this.sentTokens.add(this.token);
    if (this.sentTokens.size > 256) this.sentTokens.delete(this.sentTokens.values().next().value!);
    return this.publish(lwm2mTopic(this.o.id), encodeMessage({ ...m, token: this.token }), 'lwm2m', readings);
  }

  /** One tick: Sparkplug DDATA with fresh values; LwM2M records buffered and sent in bulk. */
  async tick(): Promise<void> {
    const { model, clock, group, id } = this.o;
    const now = clock();
    this.last = model.sample(now, this.rng, this.state);
    for (const s of model.signals) {
      const v = this.last[s.name];
      if (s.lwm2m && typeof v === 'number')
        this.bulk.push({ name: s.lwm2m, time: now, value: { kind: 'v', value: v } });
    }
    if (!this.connected) return; // offline: LwM2M records stay buffered with their own timestamps
    if (this.rng() < this.o.badRatio) {
      this.stats.bad++;
      await this.client!.publishAsync(
        sparkplugTopic(group, 'DDATA', id, CHILD),
        Buffer.from([0x0a, 0xff, 0xff]),
        { qos: 1 },
      );
      return;
    }
    const metrics: SpMetricInput[] = model.signals.map((s, i) => ({
      alias: 100 + i,
      datatype: s.datatype,
      value: this.last[s.name] ?? null,
      omitDatatype: true,
      timestamp: now,
    }));
    await this.publish(
      sparkplugTopic(group, 'DDATA', id, CHILD),
      encodePayload({ timestamp: now, seq: this.nextSeq(), metrics }),
      'sparkplug',
      metrics.length,
      0,
    );
    if (this.bulk.length >= this.o.readingsPerSend) await this.flushBulk();
    if (now - this.lastUpdate > (this.o.lifetime * 1000) / 2) {
      await this.lwm2mRequest({ operation: Operation.Update });
      this.lastUpdate = now;
    }
    for (const [path, token] of this.observations) {
      const v = this.valueAt(path);
      if (v !== undefined) {
        await this.publish(
          lwm2mTopic(id),
          encodeMessage({
            operation: Operation.Notify,
            token,
            contentFormat: ContentFormat.SenmlCbor,
            payload: encodeSenml(compressRecords([{ name: path, value: v }]), 112),
          }),
          'lwm2m',
          1,
        );
      }
    }
  }

  private async flushBulk(): Promise<void> {
    const records = this.bulk.splice(0, this.bulk.length);
    await this.lwm2mRequest(
      {
        operation: Operation.Send,
        contentFormat: ContentFormat.SenmlCbor,
        payload: encodeSenml(compressRecords(records), 112),
      },
      records.length,
    );
  }

  private valueAt(path: string): SenmlValue | undefined {
    if (path === '/3/0/0') return { kind: 'vs', value: 'Dualpath Simulator' };
    if (path === '/3/0/1') return { kind: 'vs', value: this.o.model.type };
    if (path === '/3/0/2') return { kind: 'vs', value: `SN-${this.o.id}` };
    if (path === '/3/0/3') return { kind: 'vs', value: '1.0.0' };
    if (path === '/3/0/9') return { kind: 'v', value: 87 };
    const s = this.o.model.signals.find((x) => x.lwm2m === path);
    const v = s ? this.last[s.name] : undefined;
    return typeof v === 'number' ? { kind: 'v', value: v } : undefined;
  }

  private async onMessage(topic: string, payload: Uint8Array): Promise<void> {
    const { id, group } = this.o;
    if (topic === lwm2mTopic(id)) {
      const m = decodeMessage(payload);
      if (m.operation === undefined) return; // responses from the server (201/204) or our own echoes
      if (
        [
          Operation.Register,
          Operation.Update,
          Operation.Deregister,
          Operation.Send,
          Operation.Notify,
        ].includes(m.operation as 6)
      )
        return;
      await this.answer(m);
      return;
    }
    if (topic === sparkplugTopic(group, 'NCMD', id)) {
      const p = decodePayload(payload);
      if (p.metrics.some((x) => x.name === 'Node Control/Rebirth' && x.value === true)) await this.births();
      return;
    }
    if (topic.startsWith(`spBv1.0/${group}/DCMD/${id}/`)) {
      const p = decodePayload(payload);
      const metrics: SpMetricInput[] = [];
      for (const x of p.metrics) {
        const i = this.o.model.signals.findIndex((s) => s.name === x.name);
        const s = this.o.model.signals[i];
        if (!s || (typeof x.value !== 'number' && typeof x.value !== 'boolean')) continue;
        this.last[s.name] = x.value;
        metrics.push({
          alias: 100 + i,
          datatype: s.datatype,
          value: x.value,
          omitDatatype: true,
          timestamp: this.o.clock(),
        });
      }
      this.stats.commandsAnswered++;
      if (metrics.length > 0) {
        await this.publish(
          sparkplugTopic(group, 'DDATA', id, CHILD),
          encodePayload({ timestamp: this.o.clock(), seq: this.nextSeq(), metrics }),
          'sparkplug',
          metrics.length,
        );
      }
    }
  }

  private async answer(m: Lwm2mMessage): Promise<void> {
    const reply = (r: Lwm2mMessage) =>
      this.publish(lwm2mTopic(this.o.id), encodeMessage({ ...r, token: m.token! }), 'lwm2m', 0);
    this.stats.commandsAnswered++;
    const path = m.uri ?? '';
    switch (m.operation) {
      case Operation.Read:
      case Operation.Observe: {
        const v = this.valueAt(path);
        if (!v) return reply({ result: 404 });
        if (m.operation === Operation.Observe) this.observations.set(path, Number(m.token));
        return reply({
          result: 205,
          contentFormat: ContentFormat.SenmlCbor,
          payload: encodeSenml(compressRecords([{ name: path, value: v }]), 112),
        });
      }
      case Operation.CancelObserve:
        this.observations.delete(path);
        return reply({ result: 205 });
      case Operation.WriteReplace:
      case Operation.WritePartial:
        return reply({ result: path.startsWith('/1/') || path.startsWith('/3/0/13') ? 204 : 405 });
      case Operation.Execute:
        if (path === '/3/0/4') {
          await reply({ result: 204 });
          this.reboot();
          return;
        }
        return reply({ result: 405 });
      default:
        return reply({ result: 501 });
    }
  }

  /** Simulated reboot / connection churn: drop the session (the broker fires the Will), reconnect with a new bdSeq. */
  reboot(): void {
    this.client?.end(true);
    this.stats.reconnects++;
    setTimeout(() => {
      if (this.stopped) return;
      this.bdSeq = (this.bdSeq + 1) % 256;
      void this.connect().catch(() => {});
    }, 500);
  }

  /** Clean stop: flush bulk, De-register, NDEATH with the current bdSeq, disconnect. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.connected) {
      if (this.bulk.length > 0) await this.flushBulk();
      await this.lwm2mRequest({ operation: Operation.Deregister });
      await this.publish(
        sparkplugTopic(this.o.group, 'NDEATH', this.o.id),
        encodePayload({
          timestamp: this.o.clock(),
          metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq }],
        }),
        'sparkplug',
        0,
      );
    }
    await this.client?.endAsync();
  }
}
