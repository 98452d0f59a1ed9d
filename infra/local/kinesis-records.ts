/**
 * The two Kinesis calls on the local stack's hot path — the broker's PutRecords and the event-source
 * runner's GetRecords — behind one small port, with two implementations:
 *
 * - `sdkRecords(client)`: the AWS SDK client (LocalStack or any external endpoint);
 * - `wireRecords(endpoint)`: the same Kinesis JSON 1.1 wire calls made with node:http, for the
 *   kinesalite the stack starts itself. A profile of the stack at 55,000 readings/s put ~20 % of its
 *   main thread in the SDK's generic serde and middleware, most of it on these two calls, whose bodies
 *   are the largest (hundreds of kB of base64). Here a PutRecords body is a string concatenation and a
 *   GetRecords answer one JSON.parse, and record data stays base64 from the wire to the Lambda-shaped
 *   event (which carries base64 too) instead of being decoded and encoded again.
 *
 * Neither ships to AWS: there IoT rules and the Lambda event source mapping make these calls.
 */
import {
  type _Record,
  GetRecordsCommand,
  type KinesisClient,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import type { CallCounts } from './aws-clients.js';
import { jsonWire } from './aws-json-wire.js';

/** A record as read: data still base64, as in the Lambda event. */
export interface ReadRecord {
  /** Base64 of the record's data. */
  data: string;
  partitionKey: string;
  sequenceNumber: string;
  /** Epoch seconds (Kinesis' ApproximateArrivalTimestamp), when known. */
  arrivalSeconds?: number;
}

export interface ReadResult {
  records: ReadRecord[];
  /** Absent when the shard is closed. */
  nextShardIterator?: string;
  millisBehindLatest: number;
}

/** One record's outcome in a PutRecords answer, in request order. */
export interface PutResult {
  errorCode?: string;
  errorMessage?: string;
}

export interface KinesisRecords {
  putRecords(
    streamName: string,
    records: { data: Uint8Array; partitionKey: string }[],
    signal?: AbortSignal,
  ): Promise<PutResult[]>;
  getRecords(shardIterator: string, limit: number): Promise<ReadResult>;
}

/** The port over an AWS SDK client (any endpoint; signing and retries as the client is configured). */
export function sdkRecords(client: KinesisClient): KinesisRecords {
  return {
    async putRecords(streamName, records, signal) {
      const out = await client.send(
        new PutRecordsCommand({
          StreamName: streamName,
          Records: records.map((r) => ({ Data: r.data, PartitionKey: r.partitionKey })),
        }),
        signal ? { abortSignal: signal } : {},
      );
      return (out.Records ?? []).map(putResult);
    },
    async getRecords(shardIterator, limit) {
      const out = await client.send(new GetRecordsCommand({ ShardIterator: shardIterator, Limit: limit }));
      return {
        records: (out.Records ?? []).map(fromSdk),
        ...(out.NextShardIterator ? { nextShardIterator: out.NextShardIterator } : {}),
        millisBehindLatest: out.MillisBehindLatest ?? 0,
      };
    },
  };
}

/** One entry of a PutRecords answer (the SDK's and the wire's have the same fields). */
function putResult(r: { ErrorCode?: string; ErrorMessage?: string }): PutResult {
  return {
    ...(r.ErrorCode ? { errorCode: r.ErrorCode } : {}),
    ...(r.ErrorMessage ? { errorMessage: r.ErrorMessage } : {}),
  };
}

function fromSdk(r: _Record): ReadRecord {
  const data = r.Data ?? new Uint8Array();
  return {
    data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
    partitionKey: r.PartitionKey ?? '',
    sequenceNumber: r.SequenceNumber ?? '',
    ...(r.ApproximateArrivalTimestamp
      ? { arrivalSeconds: r.ApproximateArrivalTimestamp.getTime() / 1000 }
      : {}),
  };
}

/** A failed wire call (one class for every emulator the stack calls directly). */
export { AwsWireError as KinesisWireError } from './aws-json-wire.js';

export interface WireOptions {
  /** http://host:port of the emulator. */
  endpoint: string;
  region: string;
  /** Counts calls by operation, like the SDK clients' counters. */
  calls?: CallCounts;
  /** Default 10 s, as the SDK clients. */
  requestTimeoutMs?: number;
}

/**
 * The port over the Kinesis JSON 1.1 protocol with node:http, for an emulator that checks the SigV4
 * header's form but not its signature (the stack's own kinesalite; see `unsigned` in aws-clients.ts).
 * One attempt per call: the broker's forwarder and the runner retry, as they do around the SDK.
 */
export function wireRecords(o: WireOptions): KinesisRecords & { destroy(): void } {
  const wire = jsonWire({
    ...o,
    service: 'kinesis',
    targetPrefix: 'Kinesis_20131202',
    contentType: 'application/x-amz-json-1.1',
  });
  const call = (operation: string, body: string, signal?: AbortSignal) => wire.post(operation, body, signal);

  return {
    async putRecords(streamName, records, signal) {
      // Base64 and JSON-escaped partition keys need no further escaping: concatenate.
      let body = `{"StreamName":${JSON.stringify(streamName)},"Records":[`;
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        const data = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).toString('base64');
        body += `${i > 0 ? ',' : ''}{"Data":"${data}","PartitionKey":${JSON.stringify(r.partitionKey)}}`;
      }
      body += ']}';
      const out = (await call('PutRecords', body, signal)) as {
        Records?: { ErrorCode?: string; ErrorMessage?: string }[];
      };
      return (out.Records ?? []).map(putResult);
    },
    async getRecords(shardIterator, limit) {
      const out = (await call(
        'GetRecords',
        JSON.stringify({ ShardIterator: shardIterator, Limit: limit }),
      )) as {
        Records?: {
          Data?: string;
          PartitionKey?: string;
          SequenceNumber?: string;
          ApproximateArrivalTimestamp?: number;
        }[];
        NextShardIterator?: string;
        MillisBehindLatest?: number;
      };
      const records: ReadRecord[] = (out.Records ?? []).map((r) => ({
        data: r.Data ?? '',
        partitionKey: r.PartitionKey ?? '',
        sequenceNumber: r.SequenceNumber ?? '',
        ...(typeof r.ApproximateArrivalTimestamp === 'number'
          ? { arrivalSeconds: r.ApproximateArrivalTimestamp }
          : {}),
      }));
      return {
        records,
        ...(out.NextShardIterator ? { nextShardIterator: out.NextShardIterator } : {}),
        millisBehindLatest: out.MillisBehindLatest ?? 0,
      };
    },
    destroy() {
      wire.destroy();
    },
  };
}
