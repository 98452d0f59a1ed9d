/**
 * The LwM2M 1.2 client side of a simulated device over the OMA MQTT binding, without I/O: builds
 * Register / Update / De-register / Send / Notify with the shared codecs, answers the server's requests
 * (Read, Read-Composite, Discover, Write, Write-Partial, Write-Composite, Write-Attributes, Execute,
 * Observe, Observe-Composite, Cancel-Observe) from an object model whose resource types and operations
 * come from the bundled OMA registry, runs the Firmware Update (/5) state machine, and recognises its
 * own messages echoed back on lwm2m/rd/{endpoint} (it remembers a hash of every message it sent).
 */
import { createHash } from 'node:crypto';
import { DualpathError } from '../functions/core/errors.js';
import { decodeContent } from '../functions/core/lwm2m/content.js';
import { formatObjectList } from '../functions/core/lwm2m/link-format.js';
import {
  ContentFormat,
  decodeMessage,
  decodePaths,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../functions/core/lwm2m/message.js';
import { getObject, type ResourceDef } from '../functions/core/lwm2m/objects.js';
import { compressRecords, encodeSenml, type SenmlValue } from '../functions/core/senml/index.js';
import { lwm2mTopic } from '../functions/core/topics.js';
import type { DeviceType, SignalValue } from './device-types.js';

export interface DeviceInfo {
  manufacturer: string;
  model: string;
  serial: string;
  firmware: string;
  hardware: string;
  software: string;
}

export interface Lwm2mClientOptions {
  endpoint: string;
  type: DeviceType;
  /** Registration lifetime, seconds. */
  lifetime: number;
  clock: () => number;
  /** Runs `fn` after `delayMs` (the fleet scheduler); used by the firmware state machine. */
  schedule: (delayMs: number, fn: () => void) => void;
  /** Current value of a device signal. */
  read: (key: string) => SignalValue | undefined;
  info: DeviceInfo;
  defaultPmin?: number;
  defaultPmax?: number;
  firmwareDownloadMs?: number;
  firmwareUpdateMs?: number;
  /**
   * Fetches a firmware package (http/https). Given, the device really downloads the Package URI and
   * checks the bytes against the `#sha256=<hex>` the URI carries; absent, a download is only a delay.
   */
  download?: (url: string) => Promise<Uint8Array>;
  /** Makes this device's firmware updates fail the chosen way (simulated fleets, ADR 0022). */
  firmwareFailure?: FirmwareFailure;
  /** Extra values for Object 3/4 (battery, memory, RSSI) computed by the device. */
  status?: () => { batteryLevel?: number; memoryFree: number; rssi: number; linkQuality: number };
}

export interface Lwm2mOut {
  kind: 'register' | 'update' | 'deregister' | 'send' | 'notify' | 'response';
  message: Lwm2mMessage;
  bytes: Uint8Array;
  /** SenML records the server turns into readings (Send, Notify, Read/Observe responses). */
  readings: number;
}

export type ClientEvent =
  | { kind: 'registered' }
  | { kind: 'register-failed'; result: number }
  | { kind: 'updated' }
  | { kind: 'update-failed'; result: number }
  | { kind: 'deregistered' }
  | { kind: 'send-failed'; result: number }
  | { kind: 'reboot' }
  | { kind: 'update-trigger' }
  | { kind: 'firmware-updated'; version: string }
  | { kind: 'echo' }
  | { kind: 'ignored'; detail: string };

interface Resource {
  path: string;
  def: ResourceDef;
  get?: () => SignalValue | SignalValue[] | Uint8Array | undefined;
  set?: (v: SenmlValue) => number;
  exec?: () => number;
}

interface Observation {
  token: number | bigint;
  paths: string[];
  lastAt: number;
  lastKey: string;
}

export const FirmwareState = { Idle: 0, Downloading: 1, Downloaded: 2, Updating: 3 } as const;

/** OMA object 5 Update Result codes the simulator can be told to end an update with. */
export const FIRMWARE_FAILURES = {
  'not-enough-storage': 2,
  'out-of-ram': 3,
  'connection-lost': 4,
  integrity: 5,
  'unsupported-package': 6,
  'invalid-uri': 7,
  'update-failed': 8,
  'unsupported-protocol': 9,
} as const;
export type FirmwareFailure = keyof typeof FIRMWARE_FAILURES;

/** FNV-1a over the bytes: a cheap key to recognise our own messages when they come back. */
function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return (h ^ b.length) >>> 0;
}

const enc = new TextEncoder();

export class Lwm2mClient {
  readonly topic: string;
  registered = false;
  /** Lifetime currently in effect (the server may write /1/0/1). */
  lifetime: number;
  private token = 0;
  private readonly pending = new Map<number, number>(); // token → operation
  private readonly echoes = new Map<number, number>(); // hash → count
  private readonly echoOrder: number[] = [];
  private readonly observations = new Map<string, Observation>();
  private readonly attributes = new Map<string, { pmin?: number; pmax?: number }>();
  /** The object model, built on the first server request: ~70 resources with closures per device are
   * most of a device's heap, and most simulated devices are never read by the server. */
  private model: Map<string, Resource> | undefined;
  private readonly minMax = new Map<string, { min: number; max: number }>();
  private pmin: number;
  private pmax: number;
  private timeOffsetS = 0;
  private utcOffset = '+00:00';
  fw = { state: 0, result: 0, uri: '', pkgName: '', pkgVersion: '', generation: 0 };
  info: DeviceInfo;

  constructor(private readonly o: Lwm2mClientOptions) {
    this.topic = lwm2mTopic(o.endpoint);
    this.lifetime = o.lifetime;
    this.pmin = o.defaultPmin ?? 10;
    this.pmax = o.defaultPmax ?? 60;
    this.info = { ...o.info };
  }

  private get resources(): Map<string, Resource> {
    if (this.model === undefined) {
      this.model = new Map();
      this.buildModel();
    }
    return this.model;
  }

  // ---- object model ----------------------------------------------------------------------------

  private add(path: string, r: Omit<Resource, 'path' | 'def'>): void {
    const [, oid, , rid] = path.split('/').map(Number);
    const def = getObject(oid!)?.resources.get(rid!);
    if (!def) return; // only resources of the bundled registry
    this.model!.set(path, { path, def, ...r });
  }

  private buildModel(): void {
    const o = this.o;
    const signalAt = new Map(o.type.signals.filter((s) => s.lwm2m).map((s) => [s.lwm2m!, s]));
    const status = () => o.status?.() ?? { memoryFree: 2048, rssi: -70, linkQuality: 80 };
    const int = (v: SenmlValue): number | undefined =>
      v.kind === 'v' && Number.isInteger(v.value)
        ? v.value
        : v.kind === 'vs' && /^-?\d+$/.test(v.value.trim())
          ? Number(v.value)
          : undefined;
    const str = (v: SenmlValue): string | undefined => (v.kind === 'vs' ? v.value : undefined);
    // /1/0 LwM2M Server
    this.add('/1/0/0', { get: () => 1 });
    this.add('/1/0/1', {
      get: () => this.lifetime,
      set: (v) => {
        const n = int(v);
        if (n === undefined || n < 0) return 400;
        this.lifetime = n;
        return 204;
      },
    });
    this.add('/1/0/2', {
      get: () => this.pmin,
      set: (v) => {
        const n = int(v);
        if (n === undefined || n < 0) return 400;
        this.pmin = n;
        return 204;
      },
    });
    this.add('/1/0/3', {
      get: () => this.pmax,
      set: (v) => {
        const n = int(v);
        if (n === undefined || n < 0) return 400;
        this.pmax = n;
        return 204;
      },
    });
    this.add('/1/0/6', { get: () => true, set: (v) => (v.kind === 'vb' ? 204 : 400) });
    this.add('/1/0/7', { get: () => 'M', set: (v) => (str(v) === 'M' ? 204 : 400) });
    this.add('/1/0/8', { exec: () => 204 });
    this.add('/1/0/23', { get: () => false, set: (v) => (v.kind === 'vb' ? 204 : 400) });
    // /3/0 Device
    const info = this.info;
    this.add('/3/0/0', { get: () => info.manufacturer });
    this.add('/3/0/1', { get: () => info.model });
    this.add('/3/0/2', { get: () => info.serial });
    this.add('/3/0/3', { get: () => info.firmware });
    this.add('/3/0/4', { exec: () => 204 });
    this.add('/3/0/5', { exec: () => 204 });
    const battery = signalAt.get('/3/0/9');
    this.add('/3/0/6', { get: () => (battery ? [1] : [0]) });
    this.add('/3/0/7', { get: () => [battery ? 3600 : 24000] });
    if (battery) this.add('/3/0/9', { get: () => o.read(battery.key) });
    this.add('/3/0/10', { get: () => status().memoryFree });
    this.add('/3/0/11', { get: () => [0] });
    this.add('/3/0/13', {
      get: () => Math.floor(o.clock() / 1000) + this.timeOffsetS,
      set: (v) => {
        if (v.kind !== 'v') return 400;
        this.timeOffsetS = Math.round(v.value - o.clock() / 1000);
        return 204;
      },
    });
    this.add('/3/0/14', {
      get: () => this.utcOffset,
      set: (v) => {
        const s = str(v);
        if (s === undefined || !/^[+-]\d{2}:\d{2}$/.test(s)) return 400;
        this.utcOffset = s;
        return 204;
      },
    });
    this.add('/3/0/16', { get: () => 'M' });
    this.add('/3/0/17', { get: () => o.type.name });
    this.add('/3/0/18', { get: () => info.hardware });
    this.add('/3/0/19', { get: () => info.software });
    this.add('/3/0/20', { get: () => (battery ? 0 : 4) });
    this.add('/3/0/21', { get: () => 4096 });
    // /4/0 Connectivity Monitoring
    this.add('/4/0/0', { get: () => 6 }); // LTE FDD? No: 41 = Ethernet in the registry list; 6 = LTE-FDD
    this.add('/4/0/1', { get: () => [6] });
    this.add('/4/0/2', { get: () => status().rssi });
    this.add('/4/0/3', { get: () => status().linkQuality });
    this.add('/4/0/4', { get: () => ['10.0.0.2'] });
    // /5/0 Firmware Update
    const fw = this.fw;
    this.add('/5/0/0', {
      set: (v) => {
        if (v.kind !== 'vd') return 400;
        if (fw.state !== FirmwareState.Idle) return 400;
        fw.state = FirmwareState.Downloaded;
        fw.result = 0;
        fw.pkgVersion = bumpPatch(info.firmware);
        return 204;
      },
    });
    this.add('/5/0/1', {
      get: () => fw.uri,
      set: (v) => {
        const uri = str(v);
        if (uri === undefined) return 400;
        if (uri === '') {
          fw.generation++;
          fw.state = FirmwareState.Idle;
          fw.result = 0;
          fw.uri = '';
          return 204;
        }
        if (fw.state !== FirmwareState.Idle) return 400;
        if (!/^(coaps?|https?):\/\/\S+$/.test(uri)) {
          fw.result = 7; // Invalid URI
          return 400;
        }
        fw.uri = uri;
        fw.state = FirmwareState.Downloading;
        fw.result = 0;
        const gen = ++fw.generation;
        const done = (result: number): void => {
          if (fw.generation !== gen || fw.state !== FirmwareState.Downloading) return;
          if (result !== 0) {
            // A failed download returns to Idle with the reason in Update Result.
            fw.state = FirmwareState.Idle;
            fw.result = result;
            return;
          }
          fw.state = FirmwareState.Downloaded;
          const file = uri.split('#')[0]!.split('?')[0]!;
          fw.pkgName = file.split('/').pop() ?? 'firmware.bin';
          fw.pkgVersion = /(\d+\.\d+\.\d+)/.exec(fw.pkgName)?.[1] ?? bumpPatch(info.firmware);
        };
        const failure = o.firmwareFailure;
        o.schedule(o.firmwareDownloadMs ?? 2000, () => {
          if (failure !== undefined && failure !== 'integrity' && failure !== 'update-failed')
            return done(FIRMWARE_FAILURES[failure]);
          if (!o.download) return done(0);
          void downloadAndCheck(o.download, uri, failure === 'integrity').then(done);
        });
        return 204;
      },
    });
    this.add('/5/0/2', {
      exec: () => {
        if (fw.state !== FirmwareState.Downloaded) return 405;
        fw.state = FirmwareState.Updating;
        const gen = ++fw.generation;
        o.schedule(o.firmwareUpdateMs ?? 3000, () => {
          if (fw.generation !== gen || fw.state !== FirmwareState.Updating) return;
          if (o.firmwareFailure === 'update-failed') {
            // The new image did not take: the package stays Downloaded, Update Result 8.
            fw.state = FirmwareState.Downloaded;
            fw.result = FIRMWARE_FAILURES['update-failed'];
            return;
          }
          info.firmware = fw.pkgVersion;
          fw.state = FirmwareState.Idle;
          fw.result = 1; // Firmware updated successfully
          fw.uri = '';
          this.onFirmware?.(info.firmware);
        });
        return 204;
      },
    });
    this.add('/5/0/3', { get: () => fw.state });
    this.add('/5/0/5', { get: () => fw.result });
    this.add('/5/0/6', { get: () => fw.pkgName });
    this.add('/5/0/7', { get: () => fw.pkgVersion });
    this.add('/5/0/8', { get: () => [0, 1, 2, 3] });
    this.add('/5/0/9', { get: () => 2 });
    this.add('/5/0/10', {
      exec: () => {
        if (fw.state !== FirmwareState.Downloading && fw.state !== FirmwareState.Downloaded) return 405;
        fw.generation++;
        fw.state = FirmwareState.Idle;
        fw.result = 10; // Firmware update cancelled
        return 204;
      },
    });
    // IPSO sensor instances: value, unit, min/max measured, range, reset, application type.
    for (const [oidText, iids] of Object.entries(o.type.objects)) {
      const oid = Number(oidText);
      for (const iid of iids) {
        const base = `/${oid}/${iid}`;
        const signal = signalAt.get(`${base}/5700`);
        const unit = signal?.unit ?? getObject(oid)?.defaultUnit ?? '';
        const current = () => (signal ? o.read(signal.key) : undefined);
        this.add(`${base}/5700`, { get: current });
        this.add(`${base}/5701`, { get: () => unit });
        this.add(`${base}/5601`, { get: () => this.minMax.get(base)?.min ?? asNumber(current()) });
        this.add(`${base}/5602`, { get: () => this.minMax.get(base)?.max ?? asNumber(current()) });
        this.add(`${base}/5605`, {
          exec: () => {
            this.minMax.delete(base);
            return 204;
          },
        });
        let appType = o.type.id;
        this.add(`${base}/5750`, {
          get: () => appType,
          set: (v) => {
            if (v.kind !== 'vs') return 400;
            appType = v.value;
            return 204;
          },
        });
      }
    }
  }

  /** Called when a firmware update completes (the device re-registers with the new version). */
  onFirmware: ((version: string) => void) | undefined;

  /** The device took a sample of an LwM2M signal: keeps min/max measured values (5601/5602). */
  noteSample(path: string, value: number): void {
    const base = path.slice(0, path.lastIndexOf('/'));
    const mm = this.minMax.get(base);
    if (!mm) this.minMax.set(base, { min: value, max: value });
    else {
      if (value < mm.min) mm.min = value;
      if (value > mm.max) mm.max = value;
    }
  }

  /** The object list of the Register payload: </>;ct="112 110",</1/0>,</3/0>,</4/0>,</5/0>,</3303/0>;ver=1.1... */
  objectList(): string {
    const ipso = Object.entries(this.o.type.objects).map(([id, instances]) => ({
      id: Number(id),
      version: getObject(Number(id))?.version ?? '1.1',
      instances: [...instances],
    }));
    return formatObjectList({
      rootContentFormats: [ContentFormat.SenmlCbor, ContentFormat.SenmlJson],
      objects: [
        { id: 1, instances: [0] },
        { id: 3, instances: [0] },
        { id: 4, instances: [0] },
        { id: 5, instances: [0] },
        ...ipso,
      ],
    });
  }

  // ---- outgoing --------------------------------------------------------------------------------

  private remember(bytes: Uint8Array): void {
    const h = hashBytes(bytes);
    this.echoes.set(h, (this.echoes.get(h) ?? 0) + 1);
    this.echoOrder.push(h);
    // Bounded: echoes arrive within milliseconds; a broker that does not echo must not grow this.
    while (this.echoOrder.length > 512) this.forget(this.echoOrder.shift()!);
  }

  private forget(h: number): void {
    const n = this.echoes.get(h) ?? 0;
    if (n <= 1) this.echoes.delete(h);
    else this.echoes.set(h, n - 1);
  }

  private out(kind: Lwm2mOut['kind'], message: Lwm2mMessage, readings = 0): Lwm2mOut {
    const bytes = encodeMessage(message);
    this.remember(bytes);
    return { kind, message, bytes, readings };
  }

  private request(kind: Lwm2mOut['kind'], m: Lwm2mMessage, readings = 0): Lwm2mOut {
    this.token = (this.token + 1) >>> 0 || 1;
    this.pending.set(this.token, m.operation!);
    if (this.pending.size > 1024) this.pending.delete(this.pending.keys().next().value!);
    return this.out(kind, { ...m, token: this.token }, readings);
  }

  register(): Lwm2mOut {
    return this.request('register', {
      operation: Operation.Register,
      ep: this.o.endpoint,
      lifetime: this.lifetime,
      version: '1.2',
      binding: 'M',
      contentFormat: ContentFormat.LinkFormat,
      payload: enc.encode(this.objectList()),
    });
  }

  /** A bare Update refreshes the lifetime; `withObjects` resends the (complete) object list. */
  update(withObjects = false): Lwm2mOut {
    const m: Lwm2mMessage = { operation: Operation.Update };
    if (withObjects) {
      m.contentFormat = ContentFormat.LinkFormat;
      m.payload = enc.encode(this.objectList());
    }
    return this.request('update', m);
  }

  deregister(): Lwm2mOut {
    this.registered = false;
    this.observations.clear();
    return this.request('deregister', { operation: Operation.Deregister });
  }

  /** Send (op 24): multi-record SenML CBOR, each record with its own time (epoch ms). */
  send(records: Array<{ name: string; time: number; value: SenmlValue }>): Lwm2mOut {
    return this.request(
      'send',
      {
        operation: Operation.Send,
        contentFormat: ContentFormat.SenmlCbor,
        payload: encodeSenml(compressRecords(records), ContentFormat.SenmlCbor),
      },
      records.length,
    );
  }

  /** The session ended: pending requests and observations are void (the server re-observes after Register). */
  disconnected(): void {
    this.registered = false;
    this.pending.clear();
    this.observations.clear();
  }

  get observationCount(): number {
    return this.observations.size;
  }

  /** Shortest pmin among current observations (how often the device should check), seconds. */
  get checkPeriodS(): number {
    let p = Number.POSITIVE_INFINITY;
    for (const obs of this.observations.values()) p = Math.min(p, Math.max(1, this.periods(obs).pmin));
    return p;
  }

  private periods(obs: Observation): { pmin: number; pmax: number } {
    const a = this.attributes.get(obs.paths[0] ?? '') ?? {};
    return { pmin: a.pmin ?? this.pmin, pmax: a.pmax ?? this.pmax };
  }

  /** Notify (op 23, the Observe's token) for observations whose pmin/pmax say so. */
  notifications(now: number): Lwm2mOut[] {
    const out: Lwm2mOut[] = [];
    for (const obs of this.observations.values()) {
      const { pmin, pmax } = this.periods(obs);
      const elapsed = now - obs.lastAt;
      if (elapsed < pmin * 1000) continue;
      const records = this.collect(obs.paths);
      const key = recordsKey(records);
      if (key === obs.lastKey && (pmax <= 0 || elapsed < pmax * 1000)) continue;
      obs.lastAt = now;
      obs.lastKey = key;
      out.push(
        this.out(
          'notify',
          {
            operation: Operation.Notify,
            token: obs.token,
            contentFormat: ContentFormat.SenmlCbor,
            payload: encodeSenml(
              compressRecords(records.map((r) => ({ ...r, time: now }))),
              ContentFormat.SenmlCbor,
            ),
          },
          records.length,
        ),
      );
    }
    return out;
  }

  // ---- incoming --------------------------------------------------------------------------------

  /** Handles one message from lwm2m/rd/{endpoint}: our own echo, a server response, or a request. */
  receive(bytes: Uint8Array): { replies: Lwm2mOut[]; events: ClientEvent[] } {
    const h = hashBytes(bytes);
    if (this.echoes.has(h)) {
      this.forget(h);
      const i = this.echoOrder.indexOf(h);
      if (i >= 0) this.echoOrder.splice(i, 1);
      return { replies: [], events: [{ kind: 'echo' }] };
    }
    let m: Lwm2mMessage;
    try {
      m = decodeMessage(bytes);
    } catch (error) {
      if (!(error instanceof DualpathError)) throw error;
      return { replies: [], events: [{ kind: 'ignored', detail: `undecodable message: ${error.message}` }] };
    }
    if (m.operation === undefined) return { replies: [], events: this.response(m) };
    return this.serverRequest(m);
  }

  private response(m: Lwm2mMessage): ClientEvent[] {
    const token = typeof m.token === 'bigint' ? Number(m.token) : m.token;
    const op = token === undefined ? undefined : this.pending.get(token);
    if (op === undefined || token === undefined)
      return [{ kind: 'ignored', detail: `response to unknown token ${m.token}` }];
    this.pending.delete(token);
    const r = m.result ?? 0;
    switch (op) {
      case Operation.Register:
        if (r === 201) {
          this.registered = true;
          return [{ kind: 'registered' }];
        }
        return [{ kind: 'register-failed', result: r }];
      case Operation.Update:
        if (r === 204) return [{ kind: 'updated' }];
        this.registered = false;
        return [{ kind: 'update-failed', result: r }];
      case Operation.Deregister:
        return [{ kind: 'deregistered' }];
      case Operation.Send:
        if (r >= 200 && r < 300) return [];
        if (r === 404) this.registered = false;
        return [{ kind: 'send-failed', result: r }];
      default:
        return [];
    }
  }

  private reply(
    m: Lwm2mMessage,
    result: number,
    content?: { ct: number; payload: Uint8Array },
    readings = 0,
  ) {
    const r: Lwm2mMessage = { result };
    if (m.token !== undefined) r.token = m.token;
    if (content) {
      r.contentFormat = content.ct;
      r.payload = content.payload;
    }
    return this.out('response', r, readings);
  }

  private content(records: Array<{ name: string; value: SenmlValue }>) {
    return {
      ct: ContentFormat.SenmlCbor,
      payload: encodeSenml(compressRecords(records), ContentFormat.SenmlCbor),
    };
  }

  /** Resolves a path to the resources under it; `undefined` when nothing exists there. */
  private under(path: string): Resource[] | undefined {
    if (!/^\/\d+(\/\d+){0,3}$/.test(path)) return undefined;
    const parts = path.split('/').length - 1;
    if (parts === 4) {
      const res = this.resources.get(path.slice(0, path.lastIndexOf('/')));
      return res ? [res] : undefined;
    }
    if (parts === 3) {
      const res = this.resources.get(path);
      return res ? [res] : undefined;
    }
    const prefix = `${path}/`;
    const found = [...this.resources.values()].filter((r) => r.path.startsWith(prefix));
    return found.length > 0 ? found : undefined;
  }

  /** Readable values under the paths as SenML records (multi-instance resources as /o/i/r/ri). */
  private collect(paths: string[]): Array<{ name: string; value: SenmlValue }> {
    const out: Array<{ name: string; value: SenmlValue }> = [];
    for (const path of paths) {
      const depth = path.split('/').length - 1;
      for (const r of this.under(path) ?? []) {
        if (!r.def.operations.includes('R') || !r.get) continue;
        const v = r.get();
        if (v === undefined) continue;
        if (Array.isArray(v)) {
          v.forEach((x, i) => {
            const name = `${r.path}/${i}`;
            if (depth === 4 && name !== path) return;
            out.push({ name, value: toSenml(r.def, x) });
          });
        } else out.push({ name: r.path, value: toSenml(r.def, v) });
      }
    }
    return out;
  }

  private serverRequest(m: Lwm2mMessage): { replies: Lwm2mOut[]; events: ClientEvent[] } {
    const events: ClientEvent[] = [];
    const one = (o: Lwm2mOut) => ({ replies: [o], events });
    const uri = m.uri ?? '';
    const now = this.o.clock();
    switch (m.operation) {
      case Operation.Read:
      case Operation.Observe: {
        const res = this.under(uri);
        if (!res) return one(this.reply(m, 404));
        const records = this.collect([uri]);
        if (records.length === 0) return one(this.reply(m, 405));
        if (m.operation === Operation.Observe && m.token !== undefined) {
          this.observations.set(String(m.token), {
            token: m.token,
            paths: [uri],
            lastAt: now,
            lastKey: recordsKey(records),
          });
        }
        return one(this.reply(m, 205, this.content(records), records.length));
      }
      case Operation.ReadComposite:
      case Operation.ObserveComposite: {
        let paths: string[];
        try {
          paths = m.paths ? decodePaths(m.paths) : [];
        } catch {
          return one(this.reply(m, 400));
        }
        if (paths.length === 0) return one(this.reply(m, 400));
        const records = this.collect(paths);
        if (records.length === 0) return one(this.reply(m, 404));
        if (m.operation === Operation.ObserveComposite && m.token !== undefined) {
          this.observations.set(String(m.token), {
            token: m.token,
            paths,
            lastAt: now,
            lastKey: recordsKey(records),
          });
        }
        return one(this.reply(m, 205, this.content(records), records.length));
      }
      case Operation.CancelObserve: {
        let found = false;
        for (const [k, obs] of this.observations) {
          if ((obs.paths.length === 1 && obs.paths[0] === uri) || k === String(m.token)) {
            this.observations.delete(k);
            found = true;
          }
        }
        if (!found && !this.under(uri)) return one(this.reply(m, 404));
        const records = this.collect([uri]);
        return one(
          this.reply(m, 205, records.length > 0 ? this.content(records) : undefined, records.length),
        );
      }
      case Operation.Discover: {
        const res = this.under(uri);
        if (!res) return one(this.reply(m, 404));
        const links = res.map((r) => `<${r.path}>`).join(',');
        return one(this.reply(m, 205, { ct: ContentFormat.LinkFormat, payload: enc.encode(links) }));
      }
      case Operation.WriteReplace:
      case Operation.WritePartial:
      case Operation.WriteComposite: {
        if (m.operation !== Operation.WriteComposite && !this.under(uri)) return one(this.reply(m, 404));
        if (m.payload === undefined) return one(this.reply(m, 400));
        let records: Array<{ name: string; value: SenmlValue }>;
        try {
          records = decodeContent(m.payload, m.contentFormat, {
            receivedAt: now,
            ...(uri ? { path: uri } : {}),
          });
        } catch {
          return one(this.reply(m, m.contentFormat === undefined ? 400 : 415));
        }
        // Check everything first (a composite write is atomic), then apply.
        const targets: Array<{ r: Resource; value: SenmlValue }> = [];
        for (const rec of records) {
          const r = this.resources.get(rec.name);
          if (!r) return one(this.reply(m, 404));
          if (!r.def.operations.includes('W') || !r.set) return one(this.reply(m, 405));
          if (uri && m.operation !== Operation.WriteComposite && !`${rec.name}/`.startsWith(`${uri}/`))
            return one(this.reply(m, 400));
          targets.push({ r, value: coerce(r.def, rec.value) });
        }
        for (const t of targets) {
          const code = t.r.set!(t.value);
          if (code >= 300) return one(this.reply(m, code));
        }
        return one(this.reply(m, 204));
      }
      case Operation.WriteAttributes: {
        if (!this.under(uri)) return one(this.reply(m, 404));
        const a = this.attributes.get(uri) ?? {};
        if (m.pmin !== undefined) a.pmin = m.pmin;
        if (m.pmax !== undefined) a.pmax = m.pmax;
        this.attributes.set(uri, a);
        return one(this.reply(m, 204));
      }
      case Operation.Execute: {
        const r = this.resources.get(uri);
        if (!r) return one(this.reply(m, 404));
        if (r.def.operations !== 'E' || !r.exec) return one(this.reply(m, 405));
        const code = r.exec();
        if (code < 300) {
          if (uri === '/3/0/4' || uri === '/3/0/5') events.push({ kind: 'reboot' });
          if (uri === '/1/0/8') events.push({ kind: 'update-trigger' });
        }
        return one(this.reply(m, code));
      }
      case Operation.Create:
      case Operation.Delete:
        return one(this.reply(m, 405));
      case Operation.Register:
      case Operation.Update:
      case Operation.Deregister:
      case Operation.Send:
      case Operation.Notify:
        // Client operations we did not send (another session with our name, or a replay): not for us.
        return {
          replies: [],
          events: [{ kind: 'ignored', detail: `client operation ${m.operation} not ours` }],
        };
      default:
        return one(this.reply(m, 501));
    }
  }
}

function asNumber(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/**
 * Downloads a package and checks it: 0 when the bytes match the URI's `#sha256=`, else the Update
 * Result — 5 (integrity check failure), 7 (invalid URI: the server refused it, e.g. an expired or
 * tampered signature), 9 (unsupported protocol: not http/https), 4 (connection lost).
 */
export async function downloadAndCheck(
  download: (url: string) => Promise<Uint8Array>,
  uri: string,
  corrupt = false,
): Promise<number> {
  const [url, fragment = ''] = uri.split('#', 2) as [string, string?];
  if (!/^https?:\/\//.test(url)) return FIRMWARE_FAILURES['unsupported-protocol'];
  let bytes: Uint8Array;
  try {
    bytes = await download(url);
  } catch (error) {
    const status = (error as { status?: unknown }).status;
    return typeof status === 'number' && status >= 400 && status < 500
      ? FIRMWARE_FAILURES['invalid-uri']
      : FIRMWARE_FAILURES['connection-lost'];
  }
  if (corrupt && bytes.length > 0) {
    bytes = bytes.slice();
    bytes[0] = bytes[0]! ^ 0xff;
  }
  const expected = /(?:^|&)sha256=([0-9a-f]{64})(?:&|$)/i.exec(fragment)?.[1];
  if (expected === undefined) return 0;
  const actual = createHash('sha256').update(bytes).digest('hex');
  return actual === expected.toLowerCase() ? 0 : FIRMWARE_FAILURES.integrity;
}

/** An HTTP GET of a firmware package (Node's fetch), bounded in time and size; a non-2xx status throws {status}. */
export async function fetchPackage(
  url: string,
  timeoutMs = 30_000,
  maxBytes = 16 * 1024 * 1024,
): Promise<Uint8Array> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw Object.assign(new Error(`GET ${res.status}`), { status: res.status });
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.length > maxBytes) throw Object.assign(new Error('package too large'), { status: 413 });
  return body;
}

function bumpPatch(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}.${Number(m[3]) + 1}` : `${version}.1`;
}

function recordsKey(records: Array<{ name: string; value: SenmlValue }>): string {
  let k = '';
  for (const r of records) k += `${r.name}=${'value' in r.value ? String(r.value.value) : ''};`;
  return k;
}

function toSenml(def: ResourceDef, v: SignalValue | Uint8Array): SenmlValue {
  if (v instanceof Uint8Array) return { kind: 'vd', value: v };
  switch (def.type) {
    case 'Boolean':
      return { kind: 'vb', value: v === true };
    case 'String':
    case 'Corelnk':
      return { kind: 'vs', value: String(v) };
    case 'Objlnk':
      return { kind: 'vlo', value: String(v) };
    default:
      return typeof v === 'number'
        ? { kind: 'v', value: v }
        : typeof v === 'boolean'
          ? { kind: 'vb', value: v }
          : { kind: 'vs', value: v };
  }
}

/** Text writes (content format 0) arrive as strings: convert them to the resource's type. */
function coerce(def: ResourceDef, v: SenmlValue): SenmlValue {
  if (v.kind !== 'vs') return v;
  switch (def.type) {
    case 'Integer':
    case 'Unsigned Integer':
    case 'Float':
    case 'Time': {
      const n = Number(v.value);
      return Number.isFinite(n) && v.value.trim() !== '' ? { kind: 'v', value: n } : v;
    }
    case 'Boolean':
      return v.value === '1' || v.value === 'true'
        ? { kind: 'vb', value: true }
        : v.value === '0' || v.value === 'false'
          ? { kind: 'vb', value: false }
          : v;
    case 'Opaque':
      return { kind: 'vd', value: enc.encode(v.value) };
    default:
      return v;
  }
}
