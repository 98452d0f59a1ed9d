/**
 * The magnetic-rejects function, whole — its one composition root (ADR 0024). Timestream for
 * LiveAnalytics rejects late (magnetic-store) writes asynchronously and writes error reports into the
 * table's rejected-data bucket; the ingest path counted those readings as pending
 * (`ReadingsPendingMagnetic`), never as stored. This function is what reads the reports: S3 announces
 * each new report object (EventBridge "Object Created", or an S3 notification's Records), the report is
 * read and summarized (functions/core/magnetic-report.ts), and the count is emitted as the EMF metric
 * `ReadingsRejectedMagnetic` (alarmed) with a log line naming reasons, devices and samples.
 *
 * A report that cannot be read (the object is gone, access denied) fails the invocation — Lambda
 * retries the asynchronous event, then counts it in the function's Errors — rather than being
 * counted as zero rejections.
 */
import { gunzipSync } from 'node:zlib';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { ValidationError } from '../core/errors.js';
import { type MagneticReportSummary, summarizeMagneticReport } from '../core/magnetic-report.js';

/** The EMF metrics this function emits (namespace Dualpath, dimension `service`); the alarm test reads it. */
export const MAGNETIC_REJECTS_METRICS = [
  'ReadingsRejectedMagnetic',
  'MagneticReportEntriesUnrecognised',
  'MagneticReportsRead',
] as const;

/** Reads one report object's bytes. */
export interface ReportReader {
  read(bucket: string, key: string): Promise<Uint8Array>;
}

export interface RejectsLogger {
  info(message: string, data: Record<string, unknown>): void;
  warn(message: string, data: Record<string, unknown>): void;
}

export interface MagneticRejectsPorts {
  reports: ReportReader;
  logger?: RejectsLogger;
  metrics?: Metrics;
}

export interface ReportRef {
  bucket: string;
  key: string;
}

export interface MagneticRejectsResult {
  reports: number;
  rejectedReadings: number;
  unrecognised: number;
}

export interface MagneticRejects {
  /** Reads and summarizes one report object. */
  readReport(ref: ReportRef): Promise<MagneticReportSummary>;
  /** Lambda entry: an EventBridge S3 event or an S3 notification in, the counts out. */
  handler: (event: unknown) => Promise<MagneticRejectsResult>;
}

/** The objects an event announces: EventBridge `Object Created` or S3 notification `Records`. */
export function reportRefs(event: unknown): ReportRef[] {
  const e = event as {
    source?: unknown;
    detail?: { bucket?: { name?: unknown }; object?: { key?: unknown } };
    Records?: Array<{ s3?: { bucket?: { name?: unknown }; object?: { key?: unknown } } }>;
  };
  if (e && typeof e === 'object' && e.detail && typeof e.detail === 'object') {
    const bucket = e.detail.bucket?.name;
    const key = e.detail.object?.key;
    if (typeof bucket !== 'string' || typeof key !== 'string' || bucket === '' || key === '')
      throw new ValidationError('EventBridge S3 event without detail.bucket.name and detail.object.key', {
        field: 'detail',
      });
    return [{ bucket, key }];
  }
  if (e && typeof e === 'object' && Array.isArray(e.Records)) {
    return e.Records.map((r, i) => {
      const bucket = r.s3?.bucket?.name;
      const key = r.s3?.object?.key;
      if (typeof bucket !== 'string' || typeof key !== 'string')
        throw new ValidationError(`S3 notification record ${i} without s3.bucket.name and s3.object.key`, {
          field: `Records[${i}].s3`,
        });
      // Notification keys are URL-encoded with '+' for spaces (EventBridge keys are not).
      return { bucket, key: decodeURIComponent(key.replace(/\+/g, ' ')) };
    });
  }
  throw new ValidationError('not an S3 object-created event (EventBridge or S3 notification)', {
    field: 'event',
  });
}

/** Report bytes as text (a gzip-compressed object is inflated first). */
function reportText(bytes: Uint8Array): string {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  return new TextDecoder('utf-8', { fatal: false }).decode(raw);
}

export function composeMagneticRejects(ports: MagneticRejectsPorts): MagneticRejects {
  const readReport = async (ref: ReportRef) =>
    summarizeMagneticReport(reportText(await ports.reports.read(ref.bucket, ref.key)));
  return {
    readReport,
    handler: async (event) => {
      const result: MagneticRejectsResult = { reports: 0, rejectedReadings: 0, unrecognised: 0 };
      for (const ref of reportRefs(event)) {
        const s = await readReport(ref);
        result.reports++;
        result.rejectedReadings += s.rejectedReadings;
        result.unrecognised += s.unrecognised;
        const data = {
          bucket: ref.bucket,
          key: ref.key,
          rejectedReadings: s.rejectedReadings,
          records: s.records,
          unrecognised: s.unrecognised,
          reasons: s.reasons,
          devices: Object.fromEntries(Object.entries(s.devices).slice(0, 20)),
          devicesTotal: Object.keys(s.devices).length,
          ...(s.samples.length > 0 ? { samples: s.samples } : {}),
        };
        if (s.unrecognised > 0)
          ports.logger?.warn('magnetic-store rejection report with unrecognised entries', data);
        else ports.logger?.info('magnetic-store rejection report', data);
      }
      if (ports.metrics) {
        ports.metrics.addMetric('ReadingsRejectedMagnetic', 'Count', result.rejectedReadings);
        ports.metrics.addMetric('MagneticReportEntriesUnrecognised', 'Count', result.unrecognised);
        ports.metrics.addMetric('MagneticReportsRead', 'Count', result.reports);
        ports.metrics.publishStoredMetrics();
      }
      return result;
    },
  };
}
