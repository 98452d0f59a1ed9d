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

/**
 * A record's unit is the object's default unit, unless the same payload carries the instance's
 * Sensor Units (5701), which then wins for that instance.
 */
export function recordsToReadings(endpoint: string, records: ResolvedRecord[]): Reading[] {
  const unitsByInstance = new Map<string, string>();
  for (const r of records) {
    if (r.value.kind !== 'vs' || !r.name.endsWith('/5701')) continue;
    const m = /^(\/\d+\/\d+)\/5701$/.exec(r.name);
    if (m && r.value.value.length > 0) unitsByInstance.set(m[1]!, r.value.value);
  }
  const out: Reading[] = [];
  for (const r of records) {
    if (r.value.kind === 'none') continue;
    const info = pathInfo(r.name);
    const reading: Reading = {
      protocol: 'lwm2m',
      deviceId: endpoint,
      metric: r.name,
      type: info.type ?? KIND_TYPE[r.value.kind],
      value: value(r.value),
      time: r.time,
      historical: r.timed,
      transient: false,
      quality: 'GOOD',
    };
    if (info.name !== undefined) reading.name = info.name;
    const unit =
      (info.instance !== undefined && unitsByInstance.size > 0
        ? unitsByInstance.get(info.instance)
        : undefined) ?? info.unit;
    if (unit !== undefined) reading.unit = unit;
    out.push(reading);
  }
  return out;
}
