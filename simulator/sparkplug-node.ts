/**
 * The Sparkplug B 3.0 edge-node side of a simulated device, without I/O: it builds the payloads
 * (NDEATH Will, NBIRTH, DBIRTH, NDATA, DDATA, DDEATH) with the shared codec and topics module, keeps
 * bdSeq and the one seq counter shared by N* and D* messages (0-255, wrapping), and interprets
 * NCMD/DCMD. The device does the publishing.
 */
import { DecodeError, ProtocolError } from '../functions/core/errors.js';
import {
  decodePayload,
  encodePayload,
  interpretValue,
  type SpMetricInput,
} from '../functions/core/sparkplug/codec.js';
import { DataType } from '../functions/core/sparkplug/types.js';
import { parseSparkplugTopic, type SparkplugMessageType, sparkplugTopic } from '../functions/core/topics.js';
import type { DeviceType, SignalDef, SignalValue } from './device-types.js';

export const REBIRTH = 'Node Control/Rebirth';
export const REBOOT = 'Node Control/Reboot';

/** Node-level metrics (besides bdSeq and Node Control/*), with their aliases. */
export const NODE_METRICS = [
  { key: 'type', name: 'Node Info/Type', datatype: DataType.String, alias: 1 },
  { key: 'firmware', name: 'Node Info/Firmware', datatype: DataType.String, alias: 2 },
  { key: 'uptime', name: 'Node Info/Uptime', datatype: DataType.Int64, alias: 3 },
  { key: 'rssi', name: 'Node Info/RSSI', datatype: DataType.Int32, alias: 4 },
] as const;
export type NodeValues = { type: string; firmware: string; uptime: number; rssi: number };

/** A value of one signal at one time. */
export interface Sample {
  key: string;
  time: number;
  value: SignalValue;
}

export interface SpMessage {
  type: SparkplugMessageType;
  topic: string;
  payload: Uint8Array;
  /** Metrics the host turns into readings (all but bdSeq and Node Control/*). */
  readings: number;
}

export interface CommandResult {
  rebirth: boolean;
  reboot: boolean;
  /** Writes to apply, by child device. */
  writes: Array<{ device: string; key: string; value: SignalValue }>;
  /** Metrics that were refused (unknown, read-only, wrong type), for logs and tests. */
  refused: string[];
}

const FIRST_ALIAS = 10;

export class SparkplugNode {
  /** 0-255; the Will and the NBIRTH of one MQTT session carry the same value. */
  bdSeq: number;
  private seq = 0;
  private readonly bySignal = new Map<string, { def: SignalDef; alias: number }>();
  private readonly byAlias = new Map<number, { def: SignalDef; alias: number }>();
  /** DDATA topic per child device (built once: one DDATA per device per second adds up). */
  private readonly ddataTopics = new Map<string, string>();

  constructor(
    readonly group: string,
    readonly node: string,
    readonly type: DeviceType,
    initialBdSeq = 0,
  ) {
    this.bdSeq = initialBdSeq & 0xff;
    let alias = FIRST_ALIAS;
    for (const def of type.signals) {
      if (!def.sparkplug) continue;
      const entry = { def, alias: alias++ };
      this.bySignal.set(def.key, entry);
      this.byAlias.set(entry.alias, entry);
    }
    for (const d of type.childDevices) this.ddataTopics.set(d, sparkplugTopic(group, 'DDATA', node, d));
  }

  /** A new MQTT session: the next bdSeq (wrapping at 256). Call before building its Will. */
  newSession(): void {
    this.bdSeq = (this.bdSeq + 1) & 0xff;
  }

  /** The seq the next N or D message will carry (tests and diagnostics). */
  get nextSeq(): number {
    return this.seq;
  }

  private takeSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) & 0xff;
    return s;
  }

  signalsOf(device: string): SignalDef[] {
    return this.type.signals.filter((s) => s.sparkplug?.device === device);
  }

  aliasOf(key: string): number | undefined {
    return this.bySignal.get(key)?.alias;
  }

  /** NDEATH payload: only bdSeq (no seq), used as the MQTT Will and for a clean disconnect. */
  death(now: number): SpMessage {
    return {
      type: 'NDEATH',
      topic: sparkplugTopic(this.group, 'NDEATH', this.node),
      payload: encodePayload({
        timestamp: now,
        metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq, timestamp: now }],
      }),
      readings: 0,
    };
  }

  /**
   * NBIRTH (seq restarts at 0) with bdSeq, every node metric with its alias and datatype, and
   * `Node Control/Rebirth` (no alias); then one DBIRTH per child device with all its metrics.
   */
  births(now: number, node: NodeValues, value: (key: string) => SignalValue | undefined): SpMessage[] {
    this.seq = 0;
    const nodeMetrics: SpMetricInput[] = [
      { name: 'bdSeq', datatype: DataType.Int64, value: this.bdSeq, timestamp: now },
      { name: REBIRTH, datatype: DataType.Boolean, value: false, timestamp: now },
      { name: REBOOT, datatype: DataType.Boolean, value: false, timestamp: now },
      ...NODE_METRICS.map((m) => ({
        name: m.name,
        alias: m.alias,
        datatype: m.datatype,
        value: node[m.key],
        timestamp: now,
      })),
    ];
    const out: SpMessage[] = [
      {
        type: 'NBIRTH',
        topic: sparkplugTopic(this.group, 'NBIRTH', this.node),
        payload: encodePayload({ timestamp: now, seq: this.takeSeq(), metrics: nodeMetrics }),
        readings: NODE_METRICS.length,
      },
    ];
    for (const device of this.type.childDevices) {
      const metrics: SpMetricInput[] = this.signalsOf(device).map((def) => {
        const sp = def.sparkplug!;
        const v = value(def.key);
        const m: SpMetricInput = {
          name: sp.name,
          alias: this.aliasOf(def.key)!,
          datatype: sp.datatype,
          timestamp: now,
          ...(v === undefined ? { isNull: true } : { value: v }),
        };
        const keys: string[] = [];
        const values: Array<{ type: number; value: string | boolean }> = [];
        if (sp.unit) {
          keys.push('engUnit');
          values.push({ type: DataType.String, value: sp.unit });
        }
        if (sp.writable) {
          keys.push('writable');
          values.push({ type: DataType.Boolean, value: true });
        }
        if (keys.length > 0) m.properties = { keys, values };
        return m;
      });
      out.push({
        type: 'DBIRTH',
        topic: sparkplugTopic(this.group, 'DBIRTH', this.node, device),
        payload: encodePayload({ timestamp: now, seq: this.takeSeq(), metrics }),
        readings: metrics.length,
      });
    }
    return out;
  }

  /** DDATA for one child device: alias-only metrics (no name, no datatype on the wire), each with its time. */
  data(device: string, now: number, samples: Sample[]): SpMessage {
    const metrics: SpMetricInput[] = samples.map((s) => {
      const entry = this.bySignal.get(s.key);
      if (!entry || entry.def.sparkplug?.device !== device) {
        throw new ProtocolError('SIM_SIGNAL', `signal "${s.key}" is not a metric of device "${device}"`);
      }
      return {
        alias: entry.alias,
        datatype: entry.def.sparkplug.datatype,
        omitDatatype: true,
        timestamp: s.time,
        value: s.value,
      };
    });
    return {
      type: 'DDATA',
      topic: this.ddataTopics.get(device) ?? sparkplugTopic(this.group, 'DDATA', this.node, device),
      payload: encodePayload({ timestamp: now, seq: this.takeSeq(), metrics }),
      readings: metrics.length,
    };
  }

  /** NDATA with the changing node metrics (uptime, RSSI), alias only. */
  nodeData(now: number, node: NodeValues): SpMessage {
    const metrics: SpMetricInput[] = NODE_METRICS.filter((m) => m.key === 'uptime' || m.key === 'rssi').map(
      (m) => ({
        alias: m.alias,
        datatype: m.datatype,
        omitDatatype: true,
        timestamp: now,
        value: node[m.key],
      }),
    );
    return {
      type: 'NDATA',
      topic: sparkplugTopic(this.group, 'NDATA', this.node),
      payload: encodePayload({ timestamp: now, seq: this.takeSeq(), metrics }),
      readings: metrics.length,
    };
  }

  /** DDEATH: a timestamp and the next seq. */
  deviceDeath(device: string, now: number): SpMessage {
    return {
      type: 'DDEATH',
      topic: sparkplugTopic(this.group, 'DDEATH', this.node, device),
      payload: encodePayload({ timestamp: now, seq: this.takeSeq() }),
      readings: 0,
    };
  }

  /** Interprets an NCMD/DCMD addressed to this node. Throws DecodeError/ProtocolError for bad input. */
  command(topic: string, bytes: Uint8Array): CommandResult {
    const t = parseSparkplugTopic(topic);
    if (t.kind !== 'message' || t.group !== this.group || t.node !== this.node) {
      throw new ProtocolError('SIM_COMMAND_TOPIC', `command topic "${topic}" is not for node ${this.node}`);
    }
    const payload = decodePayload(bytes);
    const result: CommandResult = { rebirth: false, reboot: false, writes: [], refused: [] };
    if (t.type === 'NCMD') {
      for (const m of payload.metrics) {
        const on = m.value === true;
        if (m.name === REBIRTH) result.rebirth ||= on;
        else if (m.name === REBOOT) result.reboot ||= on;
        else result.refused.push(m.name ?? `alias ${m.alias}`);
      }
      return result;
    }
    if (t.type !== 'DCMD' || t.device === undefined || !this.type.childDevices.includes(t.device)) {
      throw new ProtocolError(
        'SIM_COMMAND_TOPIC',
        `"${topic}" is not a command for a device of ${this.node}`,
      );
    }
    for (const m of payload.metrics) {
      const entry =
        m.name !== undefined
          ? [...this.bySignal.values()].find((e) => e.def.sparkplug?.name === m.name)
          : m.alias !== undefined
            ? this.byAlias.get(Number(m.alias))
            : undefined;
      const sp = entry?.def.sparkplug;
      if (!entry || !sp || sp.device !== t.device || !sp.writable) {
        result.refused.push(m.name ?? `alias ${m.alias}`);
        continue;
      }
      let value: unknown = m.value;
      if (value === undefined) {
        try {
          value = interpretValue(sp.datatype, m.raw);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          result.refused.push(sp.name);
          continue;
        }
      }
      if (typeof value === 'bigint') value = Number(value);
      if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string') {
        result.refused.push(sp.name);
        continue;
      }
      result.writes.push({ device: t.device, key: entry.def.key, value });
    }
    return result;
  }
}
