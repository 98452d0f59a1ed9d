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
    const m = /^(\/\d+\/\d+)\/5701$/.exec(r.name);
    if (m && r.value.kind === 'vs' && r.value.value.length > 0) unitsByInstance.set(m[1]!, r.value.value);
  }
  const out: Reading[] = [];
  for (const r of records) {
    if (r.value.kind === 'none') continue;
    const info = describePath(r.name);
    const reading: Reading = {
      protocol: 'lwm2m',
      deviceId: endpoint,
      metric: r.name,
      type: info.type && info.type !== 'none' ? info.type : KIND_TYPE[r.value.kind],
      value: value(r.value),
      time: r.time,
      historical: r.timed,
      transient: false,
      quality: 'GOOD',
    };
    const name = info.name ? (info.objectName ? `${info.objectName} ${info.name}` : info.name) : undefined;
    if (name !== undefined) reading.name = name;
    const instance = /^(\/\d+\/\d+)\//.exec(r.name)?.[1];
    const unit = (instance && unitsByInstance.get(instance)) ?? info.unit;
    if (unit !== undefined) reading.unit = unit;
    out.push(reading);
  }
  return out;
}
