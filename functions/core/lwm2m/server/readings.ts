/** SenML / LwM2M CBOR records → readings named by path, with names, types and units from the registry. */
import type { Reading, ReadingValue } from '../../reading.js';
import type { ResolvedRecord, SenmlValue } from '../../senml/index.js';
import { describePath } from '../objects.js';

const KIND_TYPE: Record<SenmlValue['kind'], string> = {
  v: 'Float',
  vs: 'String',
  vb: 'Boolean',
  vd: 'Opaque',
  vlo: 'Objlnk',
  none: 'none',
};

interface PathInfo {
  name?: string;
  unit?: string;
  type?: string;
  instance?: string;
}

/** Path → registry facts, memoised: the same few paths repeat in every bulk Send. */
const PATHS = new Map<string, PathInfo>();

function pathInfo(path: string): PathInfo {
  let info = PATHS.get(path);
  if (info === undefined) {
    const d = describePath(path);
    info = {};
    if (d.name) info.name = d.objectName ? `${d.objectName} ${d.name}` : d.name;
    if (d.unit !== undefined) info.unit = d.unit;
    if (d.type && d.type !== 'none') info.type = d.type;
    const instance = /^(\/\d+\/\d+)\//.exec(path)?.[1];
    if (instance) info.instance = instance;
    if (PATHS.size < 10_000) PATHS.set(path, info);
  }
  return info;
}

function value(v: SenmlValue): ReadingValue {
  return v.kind === 'none' ? null : v.value;
}

const INSTANCE_RESOURCE = /^(\/\d+\/\d+)\/(5701|5518)$/;

/**
 * Records → readings:
 * - metric = the path, name = "{object name} {resource name}" (e.g. "Temperature Sensor Value"), type
 *   from the bundled registry (else from the SenML value field), unit from the registry default unless
 *   the same payload carries the instance's Sensor Units (5701), which then wins for that instance;
 * - time = the record's resolved time, except that an IPSO Timestamp (5518, epoch seconds) of the same
 *   instance sent with the same record time is the time the instance's values were measured;
 * - historical = the record carries its own time (bulk / stored notifications) and the same payload has
 *   a newer record of the same path. The newest value of each path is therefore not historical, so it
 *   answers `latest`, while the older samples of a bulk Send are stored as history only.
 */
export function recordsToReadings(endpoint: string, records: ResolvedRecord[]): Reading[] {
  let unitsByInstance: Map<string, string> | undefined;
  let timestamps: Map<string, number> | undefined;
  for (const r of records) {
    const c = r.name.charCodeAt(r.name.length - 1);
    if (c !== 49 && c !== 56) continue; // fast path: only .../5701 and .../5518 end in 1 or 8
    const m = INSTANCE_RESOURCE.exec(r.name);
    if (!m) continue;
    if (m[2] === '5701' && r.value.kind === 'vs' && r.value.value.length > 0) {
      unitsByInstance ??= new Map();
      unitsByInstance.set(m[1]!, r.value.value);
    } else if (
      m[2] === '5518' &&
      r.value.kind === 'v' &&
      Number.isFinite(r.value.value) &&
      r.value.value > 0
    ) {
      timestamps ??= new Map();
      timestamps.set(`${m[1]}\u0000${r.time}`, r.value.value * 1000);
    }
  }
  const out: Reading[] = [];
  let newest: Map<string, number> | undefined;
  for (const r of records) {
    if (r.value.kind === 'none') continue;
    const info = pathInfo(r.name);
    let time = r.time;
    let timed = r.timed;
    if (timestamps !== undefined && info.instance !== undefined) {
      const t = timestamps.get(`${info.instance}\u0000${r.time}`);
      if (t !== undefined) {
        time = t;
        timed = true;
      }
    }
    const reading: Reading = {
      protocol: 'lwm2m',
      deviceId: endpoint,
      metric: r.name,
      type: info.type ?? KIND_TYPE[r.value.kind],
      value: value(r.value),
      time,
      historical: timed,
      transient: false,
      quality: 'GOOD',
    };
    if (info.name !== undefined) reading.name = info.name;
    const unit =
      (info.instance !== undefined && unitsByInstance !== undefined
        ? unitsByInstance.get(info.instance)
        : undefined) ?? info.unit;
    if (unit !== undefined) reading.unit = unit;
    if (timed) {
      newest ??= new Map();
      const n = newest.get(r.name);
      if (n === undefined || time > n) newest.set(r.name, time);
    }
    out.push(reading);
  }
  // Only the timed readings older than the newest one of their path stay historical.
  if (newest !== undefined) {
    for (const reading of out) {
      if (reading.historical && reading.time >= newest.get(reading.metric)!) reading.historical = false;
    }
  }
  return out;
}
