/**
 * Redrive (ADR 0017): records the event source mapping gave up on are put back on their stream, so the
 * SAME ingest function processes them again through its normal path (ordering per partition key,
 * retries, bisect, on-failure archive). Each record keeps its partition key and carries its first
 * sequence number in the envelope (`"redrive": {"sequenceNumber": ...}`), from which the handler
 * derives the ids of its events — a redrive rewrites the same event items, the telemetry store's keyed
 * writes absorb readings already stored, and protocol state was never committed for a batch that failed
 * (processBatch aborts it). Redriving the same archive twice is therefore harmless.
 *
 * Where failed records come from:
 * - locally, the event-source runner's `dlq.jsonl` (one line per failed batch, records with payloads);
 * - in AWS, the objects the mapping's S3 on-failure destination wrote (the invocation record: batch
 *   metadata plus the batch itself), downloaded with `aws s3 sync`.
 */
import { type KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { ValidationError } from '../functions/core/errors.js';
import type { StreamKey } from './pipeline.js';

/** One record to put back: where it goes, its key, its first sequence number and its data (base64). */
export interface FailedRecord {
  /** The local stream key (local DLQ lines). */
  stream?: StreamKey;
  /** The stream's ARN (AWS invocation records). */
  streamArn?: string;
  partitionKey: string;
  sequenceNumber: string;
  /** The record's data as the stream held it, base64. */
  data: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A Kinesis record as an event carries it: `{kinesis: {...}, eventSourceARN}` or the `kinesis` part. */
function kinesisRecord(raw: unknown, where: string, base: Pick<FailedRecord, 'stream' | 'streamArn'>) {
  if (!isObject(raw)) throw new ValidationError(`${where} must be an object`, { field: where });
  const k = isObject(raw.kinesis) ? raw.kinesis : raw;
  const { partitionKey, sequenceNumber, data } = k;
  for (const [name, value] of Object.entries({ partitionKey, sequenceNumber, data })) {
    if (typeof value !== 'string' || value === '')
      throw new ValidationError(`${where}.${name} must be a non-empty string`, { field: `${where}.${name}` });
  }
  const arn = typeof raw.eventSourceARN === 'string' ? raw.eventSourceARN : base.streamArn;
  const out: FailedRecord = {
    partitionKey: partitionKey as string,
    sequenceNumber: sequenceNumber as string,
    data: data as string,
  };
  if (base.stream !== undefined) out.stream = base.stream;
  if (arn !== undefined) out.streamArn = arn;
  return out;
}

/** The records of one failed-batch document (a local DLQ line or an AWS invocation record). */
export function recordsOfDocument(doc: unknown, where: string): FailedRecord[] {
  if (!isObject(doc)) throw new ValidationError(`${where} must be a JSON object`, { field: where });
  const base: Pick<FailedRecord, 'stream' | 'streamArn'> = {};
  if (doc.stream === 'sparkplug' || doc.stream === 'lwm2m') base.stream = doc.stream;
  const info = doc.KinesisBatchInfo;
  if (isObject(info) && typeof info.streamArn === 'string') base.streamArn = info.streamArn;
  // Local: `records` (the runner's OnFailureRecord, or its DLQ line's Kinesis parts).
  // AWS S3 destination: `payload`, the invocation's event (an object, or its JSON text).
  let records: unknown = doc.records;
  if (records === undefined && doc.payload !== undefined) {
    let payload = doc.payload;
    if (typeof payload === 'string') {
      try {
        payload = JSON.parse(payload);
      } catch {
        throw new ValidationError(`${where}.payload is not JSON`, { field: `${where}.payload` });
      }
    }
    records = isObject(payload) ? (payload.Records ?? payload.records) : undefined;
  }
  if (!Array.isArray(records)) {
    throw new ValidationError(
      `${where} holds no records: only batch metadata (an SQS or SNS on-failure message?); ` +
        'records past the stream retention cannot be recovered from metadata',
      { field: `${where}.records` },
    );
  }
  return records.map((r, i) => kinesisRecord(r, `${where}.records[${i}]`, base));
}

/** Parses a file of failed batches: JSON Lines (local dlq.jsonl) or one JSON document (an S3 object). */
export function parseFailedBatches(text: string, origin: string): FailedRecord[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    return recordsOfDocument(JSON.parse(trimmed), origin);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  const out: FailedRecord[] = [];
  for (const [i, line] of trimmed.split('\n').entries()) {
    if (line.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      throw new ValidationError(`${origin}: line ${i + 1} is not JSON`, { field: `${origin}:${i + 1}` });
    }
    for (const r of recordsOfDocument(doc, `${origin}:${i + 1}`)) out.push(r);
  }
  return out;
}

/**
 * The data to put back: the envelope with `redrive.sequenceNumber` set to the record's FIRST sequence
 * number (a record redriven before keeps the one it already carries). Data that is not a JSON object
 * (it would be quarantined again) is put back unchanged.
 */
export function redrivenData(r: FailedRecord): Buffer {
  const bytes = Buffer.from(r.data, 'base64');
  let env: unknown;
  try {
    env = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bytes;
  }
  if (!isObject(env)) return bytes;
  const prior = isObject(env.redrive) ? env.redrive.sequenceNumber : undefined;
  const first = typeof prior === 'string' ? prior : r.sequenceNumber;
  return Buffer.from(JSON.stringify({ ...env, redrive: { sequenceNumber: first } }));
}

/** Where a record is put: a stream name (local) or ARN (AWS). */
export type StreamTarget = { StreamName: string } | { StreamARN: string };

export interface RedriveOptions {
  kinesis: KinesisClient;
  target: (r: FailedRecord) => StreamTarget;
  /** Attempts for records PutRecords refuses (throttling); default 8. */
  attempts?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RedriveResult {
  records: number;
  /** Records put back, by target. */
  byStream: Record<string, number>;
}

const PUT_MAX_RECORDS = 500;
const PUT_MAX_BYTES = 5 * 1024 * 1024 - 64 * 1024;

/**
 * Puts the records back, in their order, in PutRecords calls of at most 500 records / 5 MB per stream;
 * records a call refuses (ProvisionedThroughputExceeded) are put again with backoff. Throws if some
 * could not be put after `attempts`: nothing is lost, the caller keeps the archive and runs again.
 */
export async function redrive(records: FailedRecord[], o: RedriveOptions): Promise<RedriveResult> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const groups = new Map<string, { target: StreamTarget; entries: PutRecordsRequestEntry[] }>();
  for (const r of records) {
    const target = o.target(r);
    const key = 'StreamName' in target ? target.StreamName : target.StreamARN;
    let g = groups.get(key);
    if (!g) {
      g = { target, entries: [] };
      groups.set(key, g);
    }
    g.entries.push({ PartitionKey: r.partitionKey, Data: redrivenData(r) });
  }
  const result: RedriveResult = { records: 0, byStream: {} };
  for (const [key, g] of groups) {
    let start = 0;
    while (start < g.entries.length) {
      let end = start;
      let bytes = 0;
      while (end < g.entries.length && end - start < PUT_MAX_RECORDS) {
        const e = g.entries[end]!;
        const size = e.Data!.length + e.PartitionKey!.length;
        if (end > start && bytes + size > PUT_MAX_BYTES) break;
        bytes += size;
        end++;
      }
      let pending = g.entries.slice(start, end);
      for (let attempt = 1; pending.length > 0; attempt++) {
        const out = await o.kinesis.send(new PutRecordsCommand({ ...g.target, Records: pending }));
        const refused = pending.filter((_, i) => out.Records?.[i]?.ErrorCode);
        if (refused.length > 0 && attempt >= (o.attempts ?? 8)) {
          const first = out.Records?.find((x) => x.ErrorCode);
          throw new Error(
            `${key}: ${refused.length} records refused after ${attempt} attempts (${first?.ErrorCode}: ${first?.ErrorMessage}); ` +
              'nothing was removed from the archive: run the redrive again',
          );
        }
        if (refused.length > 0) await sleep(Math.min(5_000, 100 * 2 ** (attempt - 1)));
        pending = refused;
      }
      result.records += end - start;
      result.byStream[key] = (result.byStream[key] ?? 0) + (end - start);
      start = end;
    }
  }
  return result;
}
