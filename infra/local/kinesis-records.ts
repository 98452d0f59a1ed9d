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
import http from 'node:http';
import {
  type _Record,
  GetRecordsCommand,
  type KinesisClient,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import type { CallCounts } from './aws-clients.js';
import { unsignedSigner } from './aws-clients.js';

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

/** A failed Kinesis call: `name` is the service's error type, as the SDK names its exceptions. */
export class KinesisWireError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
  }
}

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
  const url = new URL(o.endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const timeout = o.requestTimeoutMs ?? 10_000;

  async function call(operation: string, body: string, signal?: AbortSignal): Promise<unknown> {
    if (o.calls) o.calls[operation] = (o.calls[operation] ?? 0) + 1;
    const headers: Record<string, string> = {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `Kinesis_20131202.${operation}`,
      'content-length': String(Buffer.byteLength(body)),
      host: url.host,
    };
    await unsignedSigner.sign({ headers }, { signingRegion: o.region, signingService: 'kinesis' });
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: '/', method: 'POST', headers, agent, signal, timeout },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: Record<string, unknown>;
            try {
              parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
            } catch {
              // Not the service's JSON (a crashed emulator, a proxy page): transient, never "refused" —
              // the forwarder dead-letters records only for errors that name what they carry.
              reject(
                new KinesisWireError(
                  'InternalFailure',
                  `${operation}: unreadable answer (HTTP ${res.statusCode})`,
                  res.statusCode ?? 0,
                ),
              );
              return;
            }
            if ((res.statusCode ?? 0) >= 300) {
              const type = String(parsed.__type ?? 'UnknownError');
              const message = String(parsed.message ?? parsed.Message ?? `HTTP ${res.statusCode}`);
              reject(
                new KinesisWireError(type.slice(type.lastIndexOf('#') + 1), message, res.statusCode ?? 0),
              );
            } else resolve(parsed);
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new KinesisWireError('TimeoutError', `${operation}: no answer in ${timeout} ms`, 0)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

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
      agent.destroy();
    },
  };
}
