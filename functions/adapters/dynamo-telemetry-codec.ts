/**
 * Keys and item encodings of the packed DynamoDB telemetry store (ADR 0013). Pure functions: no I/O.
 *
 * Item kinds (table `pk` S + `sk` S, TTL `expiresAt` in epoch seconds):
 *   frame    pk `F#{dev}`  sk `{time:16}#{sub}`                     every reading of (device, sub, time)
 *   catalog  pk `D#{dev}`  sk `C#{sub}`                             metric names and definitions by id
 *   latest   pk `D#{dev}`  sk `L#{sub}`                             newest non-historical time per metric
 *   chunk    pk `K#{dev}`  sk `{sub'}#{metric'}#{hour:16}`          one series' numeric views for one hour
 * `{dev}` is escaped (`%` → `%25`, `#` → `%23`); in chunk keys `{sub'}` and `{metric'}` are escaped too.
 * A frame's or a catalog's `{sub}` is the last thing in its sort key, so it needs no escaping.
 */
import type { EnrichedReading, Protocol, Quality } from '../core/reading.js';
import { decodeValue, encodeValue, type StoredPoint, type ValueKind } from '../core/telemetry.js';

export const HOUR_MS = 3_600_000;
/** Sorts after `#`: the upper bound of every frame sort key at one time. */
const AFTER_TIME = '$';

export function escapeKeyPart(s: string): string {
  return s.replace(/%/g, '%25').replace(/#/g, '%23');
}

export const padTime = (t: number): string => String(t).padStart(16, '0');

export const framePk = (deviceId: string): string => `F#${escapeKeyPart(deviceId)}`;
export const frameSk = (time: number, subDevice: string): string => `${padTime(time)}#${subDevice}`;
/** Lowest and highest frame sort keys of the times in [from, toInclusive]. */
export const frameSkLow = (from: number): string => padTime(from);
export const frameSkHigh = (toInclusive: number): string => padTime(toInclusive) + AFTER_TIME;

export const devicePk = (deviceId: string): string => `D#${escapeKeyPart(deviceId)}`;
export const catalogSk = (subDevice: string): string => `C#${subDevice}`;
export const latestSk = (subDevice: string): string => `L#${subDevice}`;

export const chunkPk = (deviceId: string): string => `K#${escapeKeyPart(deviceId)}`;
export const chunkPrefix = (subDevice: string, metric: string): string =>
  `${escapeKeyPart(subDevice)}#${escapeKeyPart(metric)}#`;
export const chunkSk = (subDevice: string, metric: string, hour: number): string =>
  chunkPrefix(subDevice, metric) + padTime(hour);

export const hourOf = (time: number): number => Math.floor(time / HOUR_MS) * HOUR_MS;

// ---------------------------------------------------------------------------------------------------
// Catalog: per (device, sub-device), the metric names (id = index) and the definitions (metric id,
// type, unit, name; id = index) the frames refer to. Append-only, versioned by `v`.

export type Def = [metricId: number, type: string, unit: string | null, name: string | null];

export interface Catalog {
  v: number;
  metrics: string[];
  defs: Def[];
  metricIds: Map<string, number>;
  defIds: Map<string, number>;
  /** Serialized size; once over the cap, new definitions travel inline in the frames. */
  bytes: number;
}

export const emptyCatalog = (): Catalog => ({
  v: 0,
  metrics: [],
  defs: [],
  metricIds: new Map(),
  defIds: new Map(),
  bytes: 0,
});

export function defKey(metric: string, type: string, unit: string | null, name: string | null): string {
  return JSON.stringify([metric, type, unit, name]);
}

export function parseCatalog(item: Record<string, unknown> | undefined): Catalog {
  const cat = emptyCatalog();
  if (item === undefined || typeof item.c !== 'string') return cat;
  const parsed = JSON.parse(item.c) as { m: string[]; d: Def[] };
  cat.v = typeof item.v === 'number' ? item.v : 0;
  cat.metrics = parsed.m;
  cat.defs = parsed.d;
  cat.bytes = item.c.length;
  for (const [i, m] of parsed.m.entries()) cat.metricIds.set(m, i);
  for (const [i, d] of parsed.d.entries()) {
    cat.defIds.set(defKey(parsed.m[d[0]] as string, d[1], d[2], d[3]), i);
  }
  return cat;
}

/** A new catalog with the definitions appended (metrics added as needed). */
export function extendCatalog(
  cat: Catalog,
  add: Array<{ metric: string; type: string; unit: string | null; name: string | null }>,
): Catalog {
  const next: Catalog = {
    v: cat.v + 1,
    metrics: [...cat.metrics],
    defs: [...cat.defs],
    metricIds: new Map(cat.metricIds),
    defIds: new Map(cat.defIds),
    bytes: 0,
  };
  for (const d of add) {
    const key = defKey(d.metric, d.type, d.unit, d.name);
    if (next.defIds.has(key)) continue;
    let mid = next.metricIds.get(d.metric);
    if (mid === undefined) {
      mid = next.metrics.length;
      next.metrics.push(d.metric);
      next.metricIds.set(d.metric, mid);
    }
    next.defIds.set(key, next.defs.length);
    next.defs.push([mid, d.type, d.unit, d.name]);
  }
  next.bytes = serializeCatalog(next).length;
  return next;
}

export function serializeCatalog(cat: Catalog): string {
  return JSON.stringify({ m: cat.metrics, d: cat.defs });
}

// ---------------------------------------------------------------------------------------------------
// Frame entries: the frame's `x` is a JSON array with one entry per reading, `b` a binary column.
//   def                                                  a number or boolean, quality GOOD, not historical,
//                                                        no row / index, header attributes: the value is
//                                                        the next one in `b` (tag byte 0 + float64, 1 +
//                                                        float32 for a double that is exactly a float32,
//                                                        2 false, 3 true; big-endian)
//   [def, value]                                         a double (JSON), otherwise plain
//   [def, value, kind]                                   another kind, otherwise plain
//   [def, value, kind, quality, historical, row, index]  otherwise
//   [..., [protocol, deviceType, group, site]]           when these differ from the frame's header
// `def` is a catalog definition id, or (in the array forms) the definition inline `[metric, type, unit,
// name]`. Kind 9 is a double that is exactly a float32 (a Sparkplug Float widened to a JS number, e.g.
// 23.399999618530273), written as its shortest float32 decimal ("23.4") and read back through
// Math.fround. A 50-reading message of doubles is thus ~8 B per value in `b` plus its def id in `x`.

export const KINDS: readonly ValueKind[] = [
  'double',
  'bigint',
  'bigtext',
  'nonfinite',
  'bool',
  'text',
  'bytes',
  'json',
  'null',
];
const QUALITY_CODES: readonly Quality[] = ['GOOD', 'BAD', 'STALE', 'UNCERTAIN'];

export type InlineDef = [metric: string, type: string, unit: string | null, name: string | null];
export type Entry = [
  def: number | InlineDef,
  value: number | string,
  kind?: number,
  quality?: number,
  historical?: number,
  row?: number,
  index?: number,
  override?: [Protocol, string, string | null, string | null],
];

export interface FrameHeader {
  p: Protocol;
  dt: string;
  g?: string;
  si?: string;
}

export function headerOf(r: EnrichedReading): FrameHeader {
  const h: FrameHeader = { p: r.protocol, dt: r.enrichment.deviceType };
  if (r.group !== undefined) h.g = r.group;
  if (r.enrichment.site !== undefined) h.si = r.enrichment.site;
  return h;
}

/** A frame entry and, for the binary form, its bytes in the frame's `b` column. */
export interface EncodedEntry {
  entry: Entry | number;
  bin?: Buffer;
}

/** Encodes one reading (throws ValidationError on an unsupported value). */
export function encodeEntry(r: EnrichedReading, def: number | InlineDef, header: FrameHeader): EncodedEntry {
  const v = encodeValue(r.value);
  const plain =
    r.quality === 'GOOD' &&
    !r.historical &&
    (r.row ?? -1) === -1 &&
    (r.index ?? -1) === -1 &&
    r.protocol === header.p &&
    r.enrichment.deviceType === header.dt &&
    r.group === header.g &&
    r.enrichment.site === header.si;
  if (plain && typeof def === 'number' && (v.kind === 'double' || v.kind === 'bool')) {
    if (v.kind === 'bool') return { entry: def, bin: Buffer.from([v.bool ? 3 : 2]) };
    const d = v.double as number;
    if (Math.fround(d) === d) {
      const bin = Buffer.alloc(5);
      bin[0] = 1;
      bin.writeFloatBE(d, 1);
      return { entry: def, bin };
    }
    const bin = Buffer.alloc(9);
    bin[0] = 0;
    bin.writeDoubleBE(d, 1);
    return { entry: def, bin };
  }
  return { entry: jsonEntry(r, v, def, header) };
}

function jsonEntry(
  r: EnrichedReading,
  v: ReturnType<typeof encodeValue>,
  def: number | InlineDef,
  header: FrameHeader,
): Entry {
  let value: number | string;
  let kind = KINDS.indexOf(v.kind);
  switch (v.kind) {
    case 'double': {
      const d = v.double as number;
      if (Object.is(d, -0)) value = '-0';
      else {
        value = d;
        const f = shortestFloat32(d);
        if (f !== undefined && JSON.stringify(f).length < JSON.stringify(d).length) {
          value = f;
          kind = KIND_FLOAT32;
        }
      }
      break;
    }
    case 'bigint':
      value = (v.bigint as bigint).toString();
      break;
    case 'bool':
      value = v.bool ? 1 : 0;
      break;
    case 'null':
      value = 0;
      break;
    default:
      value = v.text as string;
  }
  const e: Entry = [def, value];
  const q = QUALITY_CODES.indexOf(r.quality);
  const row = r.row ?? -1;
  const index = r.index ?? -1;
  const differs =
    r.protocol !== header.p ||
    r.enrichment.deviceType !== header.dt ||
    r.group !== header.g ||
    r.enrichment.site !== header.si;
  const plain = q === 0 && !r.historical && row === -1 && index === -1 && !differs;
  if (!plain || kind !== 0) e.push(kind);
  if (!plain) {
    e.push(q, r.historical ? 1 : 0, row, index);
    if (differs) e.push([r.protocol, r.enrichment.deviceType, r.group ?? null, r.enrichment.site ?? null]);
  }
  return e;
}

const KIND_FLOAT32 = 9;

/** The shortest decimal that reads back (through Math.fround) as `d`, when `d` is exactly a float32. */
function shortestFloat32(d: number): number | undefined {
  if (!Number.isFinite(d) || Math.fround(d) !== d || Number.isInteger(d)) return undefined;
  for (let p = 1; p <= 9; p++) {
    const n = Number(d.toPrecision(p));
    if (Math.fround(n) === d) return n;
  }
  return undefined;
}

/** Metric name of an entry (undefined when its definition id is not in the catalog). */
export function entryMetric(e: Entry | number, cat: Catalog): string | undefined {
  const ref = typeof e === 'number' ? e : e[0];
  if (typeof ref !== 'number') return ref[0];
  const def = cat.defs[ref];
  return def === undefined ? undefined : cat.metrics[def[0]];
}

/** The dedupe identity of an entry inside its frame: metric, row, index. */
export function entryIdentity(metric: string, e: Entry | number): string {
  if (typeof e === 'number') return `${metric}\u0000-1\u0000-1`;
  return `${metric}\u0000${e[5] ?? -1}\u0000${e[6] ?? -1}`;
}

export function readingIdentity(r: EnrichedReading): string {
  return `${r.metric}\u0000${r.row ?? -1}\u0000${r.index ?? -1}`;
}

/** Rebuilds the stored point of an entry; undefined when its definition is not in the catalog. */
export function decodeEntry(
  entry: Entry | number,
  frame: { deviceId: string; sub: string; time: number; header: FrameHeader },
  cat: Catalog,
  binValue?: number | boolean,
): StoredPoint | undefined {
  const e: Entry = typeof entry === 'number' ? [entry, 0] : entry;
  let metric: string;
  let type: string;
  let unit: string | null;
  let name: string | null;
  if (typeof e[0] === 'number') {
    const def = cat.defs[e[0]];
    if (def === undefined) return undefined;
    metric = cat.metrics[def[0]] as string;
    [, type, unit, name] = def;
  } else {
    [metric, type, unit, name] = e[0];
  }
  const code = e[2] ?? 0;
  const raw = e[1];
  const kind = code === KIND_FLOAT32 ? 'double' : (KINDS[code] ?? 'null');
  const value =
    typeof entry === 'number'
      ? (binValue ?? null)
      : decodeValue(kind, {
          double: code === KIND_FLOAT32 ? Math.fround(Number(raw)) : kind === 'double' ? Number(raw) : null,
          bigint: kind === 'bigint' ? BigInt(raw) : null,
          text: typeof raw === 'string' ? raw : null,
          bool: kind === 'bool' ? raw === 1 : null,
        });
  const o = e[7];
  const header: FrameHeader =
    o === undefined
      ? frame.header
      : { p: o[0], dt: o[1], ...(o[2] === null ? {} : { g: o[2] }), ...(o[3] === null ? {} : { si: o[3] }) };
  const p: StoredPoint = {
    deviceId: frame.deviceId,
    metric,
    time: frame.time,
    value,
    type,
    quality: QUALITY_CODES[e[3] ?? 0] ?? 'GOOD',
    historical: e[4] === 1,
    protocol: header.p,
    deviceType: header.dt,
  };
  if (frame.sub !== '') p.subDevice = frame.sub;
  if (header.g !== undefined) p.group = header.g;
  if (name !== null) p.name = name;
  if (unit !== null) p.unit = unit;
  if ((e[5] ?? -1) >= 0) p.row = e[5] as number;
  if ((e[6] ?? -1) >= 0) p.index = e[6] as number;
  if (header.si !== undefined) p.site = header.si;
  return p;
}

export function frameHeaderOfItem(item: Record<string, unknown>): FrameHeader {
  const h: FrameHeader = { p: item.p as Protocol, dt: item.dt as string };
  if (typeof item.g === 'string') h.g = item.g;
  if (typeof item.si === 'string') h.si = item.si;
  return h;
}

// ---------------------------------------------------------------------------------------------------
// Latest: `x` = JSON {"<time>": [metric ids or names]} (ids from the catalog; names when the catalog
// is full). Usually one key: every metric of the last message.

export function parseLatest(x: unknown, cat: Catalog): Map<string, number> {
  const out = new Map<string, number>();
  if (typeof x !== 'string') return out;
  const parsed = JSON.parse(x) as Record<string, Array<number | string>>;
  for (const [time, refs] of Object.entries(parsed)) {
    for (const ref of refs) {
      const metric = typeof ref === 'number' ? cat.metrics[ref] : ref;
      if (metric !== undefined) out.set(metric, Number(time));
    }
  }
  return out;
}

export function serializeLatest(times: Map<string, number>, cat: Catalog): string {
  const byTime: Record<string, Array<number | string>> = {};
  for (const [metric, time] of times) {
    const id = cat.metricIds.get(metric);
    const key = String(time);
    const refs = byTime[key] ?? [];
    refs.push(id ?? metric);
    byTime[key] = refs;
  }
  return JSON.stringify(byTime);
}

// ---------------------------------------------------------------------------------------------------
// Chunk: one series' points in one hour, as [offset ms, numeric view] or [offset, num, row, index];
// the numeric view is null for values without one (they still count) and "-0" for negative zero.

export type ChunkPoint = [number, number | string | null] | [number, number | string | null, number, number];

export function toChunkPoint(p: StoredPoint, hour: number): ChunkPoint {
  const num = encodeValue(p.value).num;
  const n = num === undefined ? null : Object.is(num, -0) ? '-0' : num;
  const row = p.row ?? -1;
  const index = p.index ?? -1;
  return row === -1 && index === -1 ? [p.time - hour, n] : [p.time - hour, n, row, index];
}

/** A point carrying what the bucket aggregation reads: key fields and a value with the same numeric view. */
export function fromChunkPoint(c: ChunkPoint, hour: number, deviceId: string, sub: string, metric: string) {
  const raw = c[1];
  const p: StoredPoint = {
    deviceId,
    metric,
    time: hour + c[0],
    value: raw === null ? null : Number(raw),
    type: '',
    quality: 'GOOD',
    historical: false,
    protocol: 'sparkplug',
    deviceType: '',
  };
  if (sub !== '') p.subDevice = sub;
  if (c.length === 4) {
    if (c[2] >= 0) p.row = c[2];
    if (c[3] >= 0) p.index = c[3];
  }
  return p;
}

/**
 * The values of a frame's binary-form entries, in entry order, read from its `b` column. Throws when
 * the column is shorter than the entries need or holds an unknown tag (a corrupt frame).
 */
export function readBinaryValues(
  entries: Array<Entry | number>,
  b: Uint8Array | undefined,
): Array<number | boolean | undefined> {
  const buf = b === undefined ? Buffer.alloc(0) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const out: Array<number | boolean | undefined> = [];
  let off = 0;
  for (const e of entries) {
    if (typeof e !== 'number') {
      out.push(undefined);
      continue;
    }
    const tag = buf[off];
    if (tag === 0 && off + 9 <= buf.length) {
      out.push(buf.readDoubleBE(off + 1));
      off += 9;
    } else if (tag === 1 && off + 5 <= buf.length) {
      out.push(buf.readFloatBE(off + 1));
      off += 5;
    } else if (tag === 2 || tag === 3) {
      out.push(tag === 3);
      off += 1;
    } else {
      throw new Error(`frame value column: bad tag ${String(tag)} at byte ${off}`);
    }
  }
  return out;
}
