/**
 * What the Timestream adapter really sends, for the cost model: one Lambda batch of a fleet shape
 * (Sparkplug-shaped readings, as the store benchmark uses) planned into WriteRecords requests by the
 * adapter's own code (toRecord, planChunks, requestBytes), so the metered size follows the record model
 * (typed measure slots, identity dimensions) instead of a guess (ADR 0020: the old guess of 52 B per
 * record understated it about 2×).
 */
import {
  planChunks,
  recordBytes,
  requestBytes,
  toRecord,
} from '../../functions/adapters/timestream-store.js';
import type { EnrichedReading } from '../../functions/core/reading.js';

const T0 = 1_700_000_000_000;

/** A Sparkplug-shaped reading: Double metric with a 17-digit value, device in a group and a site. */
export function sampleReading(device: number, k: number, time: number): EnrichedReading {
  return {
    protocol: 'sparkplug',
    deviceId: `node-${device}`,
    subDevice: 'dev-0',
    group: `plant-${device % 10}`,
    metric: `Sensors/Channel-${k}`,
    type: 'Double',
    value: Math.sin(device * 1000 + k) * 100,
    time,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'meter', site: `site-${device % 10}`, applications: [] },
  };
}

export interface TimestreamWriteShape {
  /** 1 KiB write units per reading (each request rounded up to whole KiB). */
  unitsPerReading: number;
  requestsPerReading: number;
  /** Mean metered bytes of one request, and of one record with all its dimensions (storage). */
  bytesPerRequest: number;
  bytesPerRecord: number;
}

/** One invocation's batch: `recordsPerInvocation` messages of `readingsPerMessage` readings. */
export function timestreamWriteShape(
  devices: number,
  recordsPerInvocation: number,
  readingsPerMessage: number,
  intervalSeconds: number,
): TimestreamWriteShape {
  const batchDevices = Math.max(1, Math.min(devices, recordsPerInvocation));
  const readings: EnrichedReading[] = [];
  for (let m = 0; m < recordsPerInvocation; m++) {
    const device = m % batchDevices;
    const time = T0 + Math.floor(m / batchDevices) * intervalSeconds * 1000;
    for (let k = 0; k < readingsPerMessage; k++) readings.push(sampleReading(device, k, time));
  }
  const prepared = readings.map(toRecord);
  const chunks = planChunks(prepared);
  const bytes = chunks.map(requestBytes);
  const units = bytes.reduce((n, b) => n + Math.ceil(b / 1024), 0);
  return {
    unitsPerReading: units / readings.length,
    requestsPerReading: chunks.length / readings.length,
    bytesPerRequest: bytes.reduce((a, b) => a + b, 0) / chunks.length,
    bytesPerRecord: prepared.reduce((n, p) => n + recordBytes(p), 0) / prepared.length,
  };
}
