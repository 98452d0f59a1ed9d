/**
 * Timestream for LiveAnalytics magnetic-store rejection reports (ADR 0024): what a report object in the
 * table's `MagneticStoreRejectedDataLocation` bucket says was rejected, counted — never reported as
 * stored.
 *
 * What AWS documents (Timestream developer guide, "Handling rejected records" and the RejectedRecord
 * API type): magnetic-store writes are rejected asynchronously and the errors are written to the S3
 * location as error reports; a rejected record is described by `Reason`, `RecordIndex` and
 * `ExistingVersion`. The report object's exact layout is not in the pages we could read, so the parser
 * is tolerant by design:
 *   - the object is one JSON document (object or array) or JSON Lines (one value per line);
 *   - a value with an array under a known key (`rejectedRecords`, `RejectedRecords`, `records`,
 *     `Records`, `errors`, `Errors`) counts each element as one rejected record;
 *   - a value that is itself a record (a `Reason`/`reason`/`errorMessage`, or a Timestream record's
 *     `Dimensions`/`MeasureName`/`MeasureValues`) counts as one;
 *   - an array counts its elements as values;
 *   - anything else (not JSON, a scalar, an object of no known shape) is *unrecognised*: counted and
 *     sampled for the log, never thrown. One unrecognised entry is still at least one rejection.
 * One Dualpath reading is one Timestream record (MULTI measure; functions/adapters/timestream-store.ts),
 * so rejected records = rejected readings.
 */

export interface MagneticReportSummary {
  /** Rejected records recognised in the report (one reading each). */
  records: number;
  /** Report entries of no known shape (each counted as at least one rejected reading). */
  unrecognised: number;
  /** Rejected readings to count: records + unrecognised. */
  rejectedReadings: number;
  /** Records per reason ("unspecified" when a record gives none). */
  reasons: Record<string, number>;
  /** Records per device (the `deviceId` dimension), when the record carries its dimensions. */
  devices: Record<string, number>;
  /** Up to 3 unrecognised entries, truncated to 200 characters, for the log. */
  samples: string[];
}

const LIST_KEYS = ['rejectedRecords', 'RejectedRecords', 'records', 'Records', 'errors', 'Errors'];
const REASON_KEYS = ['Reason', 'reason', 'errorMessage', 'ErrorMessage', 'rejectionReason', 'message'];
const RECORD_KEYS = [
  'Dimensions',
  'dimensions',
  'MeasureName',
  'measureName',
  'MeasureValues',
  'measureValues',
];
const MAX_SAMPLES = 3;
const SAMPLE_CHARS = 200;
/** Reasons kept apart before the rest are folded into "other" (bounded log lines). */
const MAX_REASONS = 20;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function summarizeMagneticReport(body: string): MagneticReportSummary {
  const s: MagneticReportSummary = {
    records: 0,
    unrecognised: 0,
    rejectedReadings: 0,
    reasons: {},
    devices: {},
    samples: [],
  };
  const unrecognised = (what: string) => {
    s.unrecognised++;
    if (s.samples.length < MAX_SAMPLES) s.samples.push(what.slice(0, SAMPLE_CHARS));
  };
  /** One rejected record: its reason and device, from the entry or from a record nested in it. */
  const record = (r: Json) => {
    s.records++;
    const nested = isObject(r) ? ['record', 'Record'].map((k) => r[k]).find(isObject) : undefined;
    const reason = isObject(r)
      ? (reasonOf(r) ?? (nested ? reasonOf(nested) : undefined))
      : typeof r === 'string' && r !== ''
        ? r
        : undefined;
    const key = reason ?? 'unspecified';
    if (key in s.reasons || Object.keys(s.reasons).length < MAX_REASONS)
      s.reasons[key] = (s.reasons[key] ?? 0) + 1;
    else s.reasons.other = (s.reasons.other ?? 0) + 1;
    const device = isObject(r) ? (deviceOf(r) ?? (nested ? deviceOf(nested) : undefined)) : undefined;
    if (device !== undefined) s.devices[device] = (s.devices[device] ?? 0) + 1;
  };
  const value = (v: Json, depth: number) => {
    if (Array.isArray(v)) {
      if (depth > 1) return unrecognised(JSON.stringify(v));
      for (const e of v) value(e, depth + 1);
      return;
    }
    if (!isObject(v)) return unrecognised(JSON.stringify(v));
    const list = LIST_KEYS.map((k) => v[k]).find(Array.isArray);
    if (list !== undefined) {
      for (const r of list) record(r);
      return;
    }
    const nested = ['record', 'Record'].some((k) => isObject(v[k]));
    if (nested || reasonOf(v) !== undefined || RECORD_KEYS.some((k) => k in v)) return record(v);
    unrecognised(JSON.stringify(v));
  };

  const text = body.replace(/^\uFEFF/, '').trim();
  if (text === '') return s;
  const whole = tryParse(text);
  if (whole.ok) value(whole.value, 0);
  else {
    for (const line of text.split(/\r?\n/)) {
      const t = line.trim();
      if (t === '') continue;
      const one = tryParse(t);
      if (one.ok) value(one.value, 0);
      else unrecognised(t);
    }
  }
  s.rejectedReadings = s.records + s.unrecognised;
  return s;
}

function tryParse(text: string): { ok: true; value: Json } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as Json };
  } catch {
    return { ok: false };
  }
}

function reasonOf(o: { [k: string]: Json }): string | undefined {
  for (const k of REASON_KEYS) {
    const v = o[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** The `deviceId` dimension of a Timestream record ({Name, Value} pairs or a plain map). */
function deviceOf(o: { [k: string]: Json }): string | undefined {
  const dims = o.Dimensions ?? o.dimensions;
  if (Array.isArray(dims)) {
    for (const d of dims) {
      if (!isObject(d)) continue;
      const name = d.Name ?? d.name;
      const value = d.Value ?? d.value;
      if (name === 'deviceId' && typeof value === 'string') return value;
    }
  } else if (isObject(dims) && typeof dims.deviceId === 'string') return dims.deviceId;
  return undefined;
}
