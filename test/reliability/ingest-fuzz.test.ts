/**
 * Property-based fuzzing through the real Lambda handlers (the composition roots: middy + Powertools
 * around processBatch, the Sparkplug host and the LwM2M server over in-memory ports). Valid messages
 * are mutated — flipped bytes, truncation, splices, huge length prefixes, deep nesting, invalid UTF-8,
 * 128 KB payloads, broken envelopes — and mixed into a batch with good records of other devices.
 * Properties: the handler resolves, nothing is reported for retry (bad input is not transient),
 * every record is either processed or quarantined with a code and a message, every record the
 * decoder rejects is quarantined, and every reading of the good records is stored exactly once.
 *
 * FUZZ_RUNS=5000 npx vitest run test/reliability/ingest-fuzz.test.ts runs longer.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, KinesisStreamEvent } from 'aws-lambda';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import type { EventLog, StoredEvent } from '../../functions/core/events.js';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
} from '../../functions/core/lwm2m/server/state.js';
import type { EnrichedReading, Protocol } from '../../functions/core/reading.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { compressRecords, encodeSenml } from '../../functions/core/senml/index.js';
import { decodePayload, encodePayload } from '../../functions/core/sparkplug/codec.js';
import { InMemorySparkplugStateStore } from '../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { composeLwm2mIngest } from '../../functions/lwm2m-ingest/compose.js';
import { composeSparkplugIngest } from '../../functions/sparkplug-ingest/compose.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const T0 = 1_767_225_600_000;
const GOOD_NODES = 3;
const METRICS = 5;

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

interface Rec {
  topic: string;
  payload: Uint8Array;
  /** Raw record data instead of the rule envelope (broken envelopes). */
  raw?: Uint8Array;
  key: string;
}

const envelopeOf = (r: Rec, receivedAt: number) =>
  r.raw ??
  Buffer.from(
    JSON.stringify({
      payload: Buffer.from(r.payload).toString('base64'),
      topic: r.topic,
      receivedAt,
      clientId: r.key.split('/').at(-1),
    }),
  );

function eventOf(records: Rec[], firstSeq: number): KinesisStreamEvent {
  return {
    Records: records.map((r, i) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.key,
        sequenceNumber: String(firstSeq + i).padStart(20, '0'),
        data: Buffer.from(envelopeOf(r, T0 + firstSeq + i)).toString('base64'),
        approximateArrivalTimestamp: (T0 + i) / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${firstSeq + i}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/test',
      awsRegion: 'us-east-1',
      eventSourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/test',
    })),
  };
}

const context = {
  functionName: 'fuzz',
  awsRequestId: 'r',
  getRemainingTimeInMillis: () => 60_000,
} as Context;

function harness(protocol: Protocol) {
  const stored = new Map<string, number>();
  const events: StoredEvent[] = [];
  const registry = new InMemoryRegistry();
  const eventLog: EventLog = {
    async append(list) {
      events.push(...list);
    },
    async list() {
      return { events };
    },
  };
  // The functions as their composition roots build them (the Lambda's write-back state caches
  // included), over in-memory ports.
  const ports = {
    registry,
    store: {
      async write(readings: EnrichedReading[]) {
        let written = 0;
        let duplicates = 0;
        for (const r of readings) {
          const k = `${r.deviceId}|${r.subDevice ?? ''}|${r.metric}|${r.time}|${r.row ?? ''}`;
          if (stored.has(k)) duplicates++;
          else written++;
          stored.set(k, (stored.get(k) ?? 0) + 1);
        }
        return { written, duplicates, rejected: [] };
      },
    },
    publisher: { publish: async () => {} },
    events: eventLog,
    clock: () => T0,
    logger: new Logger({ serviceName: 'fuzz', logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Fuzz', serviceName: 'fuzz' }),
  };
  const settings = { autoRegister: true, defaultDeviceType: 'fuzz' };
  const { handler } =
    protocol === 'sparkplug'
      ? composeSparkplugIngest({ ...ports, sparkplugState: new InMemorySparkplugStateStore() }, settings)
      : composeLwm2mIngest(
          {
            ...ports,
            registrations: new InMemoryRegistrationStore(),
            pending: new InMemoryPendingRequestStore(),
          },
          settings,
        );
  return { handler, stored, events, registry };
}

// ---- valid seeds --------------------------------------------------------------------------------

const spTopic = (type: string, node: string) => `spBv1.0/fuzz/${type}/${node}`;

function nbirth(node: string): Rec {
  return {
    topic: spTopic('NBIRTH', node),
    key: `fuzz/${node}`,
    payload: encodePayload({
      timestamp: T0,
      seq: 0,
      metrics: [
        { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
        ...Array.from({ length: METRICS }, (_, i) => ({
          name: `m${i}`,
          alias: i + 1,
          datatype: DataType.Double,
          value: i,
          timestamp: T0,
        })),
        { name: 'label', alias: 100, datatype: DataType.String, value: 'ok', timestamp: T0 },
      ],
    }),
  };
}

function ndata(node: string, n: number): Rec {
  return {
    topic: spTopic('NDATA', node),
    key: `fuzz/${node}`,
    payload: encodePayload({
      timestamp: T0 + n * 1000,
      seq: n % 256,
      metrics: Array.from({ length: METRICS }, (_, i) => ({
        alias: i + 1,
        datatype: DataType.Double,
        value: n * 10 + i,
        timestamp: T0 + n * 1000,
      })),
    }),
  };
}

const lwTopic = (ep: string) => `lwm2m/rd/${ep}`;

function register(ep: string): Rec {
  return {
    topic: lwTopic(ep),
    key: ep,
    payload: encodeMessage({
      operation: Operation.Register,
      token: 1,
      ep,
      lifetime: 0,
      version: '1.2',
      payload: new TextEncoder().encode('</3303/0>,</3/0>'),
    }),
  };
}

function send(ep: string, n: number): Rec {
  const records = Array.from({ length: METRICS }, (_, k) => ({
    name: '/3303/0/5700',
    time: T0 + n * 60_000 + k * 1000,
    value: { kind: 'v' as const, value: 20 + k },
  }));
  return {
    topic: lwTopic(ep),
    key: ep,
    payload: encodeMessage({
      operation: Operation.Send,
      token: n + 10,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml(compressRecords(records), 112),
    }),
  };
}

// ---- mutations -----------------------------------------------------------------------------------

type Mutation = (bytes: Uint8Array) => Uint8Array;

const deepCborArray = (depth: number) => new Uint8Array(depth).fill(0x81); // [[[[...
const deepProtobuf = (depth: number) => {
  // Nested length-delimited field 2 (metrics) each claiming the rest: a deep, self-similar message.
  let inner = new Uint8Array([0x08, 0x01]);
  for (let i = 0; i < depth; i++) {
    const len = inner.length;
    const header = len < 128 ? [0x12, len] : [0x12, (len & 0x7f) | 0x80, len >> 7];
    inner = new Uint8Array([...header, ...inner].slice(0, 16_384));
  }
  return inner;
};

const mutation: fc.Arbitrary<{ name: string; apply: Mutation }> = fc.oneof(
  fc.record({ i: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ i, bit }) => ({
    name: 'flip',
    apply: (b: Uint8Array) => {
      const out = b.slice();
      if (out.length > 0) out[i % out.length]! ^= 1 << bit;
      return out;
    },
  })),
  fc
    .nat()
    .map((n) => ({ name: 'truncate', apply: (b: Uint8Array) => b.slice(0, n % Math.max(1, b.length)) })),
  fc.record({ at: fc.nat(), junk: fc.uint8Array({ minLength: 1, maxLength: 24 }) }).map(({ at, junk }) => ({
    name: 'splice',
    apply: (b: Uint8Array) => {
      const p = at % (b.length + 1);
      return new Uint8Array([...b.slice(0, p), ...junk, ...b.slice(p)]);
    },
  })),
  fc.constant({
    name: 'huge-length',
    // A length-delimited field claiming ~2^35 bytes, then nothing.
    apply: (b: Uint8Array) => new Uint8Array([...b.slice(0, 2), 0x12, 0xff, 0xff, 0xff, 0xff, 0x7f]),
  }),
  fc.constant({ name: 'deep-cbor', apply: () => deepCborArray(10_000) }),
  fc.constant({ name: 'deep-protobuf', apply: () => deepProtobuf(2_000) }),
  fc.constant({
    name: 'invalid-utf8',
    // A string field (Sparkplug metric name / CBOR text) carrying an overlong and a lone continuation byte.
    apply: (b: Uint8Array) => new Uint8Array([...b, 0x12, 0x05, 0x0a, 0x03, 0xc0, 0x80, 0xbf]),
  }),
  fc
    .uint8Array({ minLength: 131_072, maxLength: 131_072 })
    .map((big) => ({ name: '128KB', apply: () => big })),
  fc.constant({ name: 'empty', apply: () => new Uint8Array() }),
);

const brokenEnvelope = fc.constantFrom(
  'not json {',
  '[]',
  'null',
  '{"topic":"x"}',
  '{"topic":42,"payload":"AA==","receivedAt":1}',
  '{"topic":"spBv1.0/fuzz/NDATA/n","payload":123,"receivedAt":1}',
  '{"topic":"spBv1.0/fuzz/NDATA/n","payload":"AA==","receivedAt":"soon"}',
  '\u00ff\u00fe',
);

// ---- the properties ------------------------------------------------------------------------------

async function runBatch(protocol: Protocol, bad: Rec[], decodes: (b: Uint8Array) => unknown) {
  const h = harness(protocol);
  const good = Array.from({ length: GOOD_NODES }, (_, i) =>
    protocol === 'sparkplug' ? `good-${i}` : `good-ep-${i}`,
  );
  const badIds = bad.map((_, i) => (protocol === 'sparkplug' ? `bad-${i}` : `bad-ep-${i}`));
  const births = [...good, ...badIds].map((id) => (protocol === 'sparkplug' ? nbirth(id) : register(id)));
  const first = await h.handler(eventOf(births, 1), context);
  expect(first.batchItemFailures).toEqual([]);
  h.stored.clear();
  // Good DATA of the good devices interleaved with the mutated records of the bad ones.
  const records: Rec[] = [];
  for (let n = 1; n <= 3; n++) {
    for (const id of good) records.push(protocol === 'sparkplug' ? ndata(id, n) : send(id, n));
    for (const [i, r] of bad.entries())
      if (n === 2)
        records.push(
          r.raw ? r : { ...r, key: badKey(protocol, badIds[i]!), topic: badTopic(protocol, badIds[i]!) },
        );
  }
  const eventsBefore = h.events.length;
  const out = await h.handler(eventOf(records, 1000), context);

  // Nothing is retried: bad input is quarantined, never reported as a batch item failure.
  expect(out.batchItemFailures).toEqual([]);
  // Every reading of every good record is stored, once.
  const goodStored = [...h.stored.entries()].filter(([k]) => k.startsWith('good-'));
  expect(goodStored).toHaveLength(good.length * 3 * METRICS);
  for (const [, count] of goodStored) expect(count).toBe(1);
  // Every quarantine entry names a code and a reason; every record the decoder rejects is quarantined.
  const quarantined = h.events.slice(eventsBefore).filter((e) => e.type === 'quarantined');
  for (const q of quarantined) {
    const reason = (q.data as { reason?: { code?: string; message?: string } }).reason;
    expect(reason?.code).toMatch(/^[A-Z0-9_]+$/);
    expect(reason?.message?.length).toBeGreaterThan(0);
    expect(q.deviceId.startsWith('good-')).toBe(false);
  }
  const rejected = bad.filter((r) => {
    if (r.raw) return true;
    try {
      decodes(r.payload);
      return false;
    } catch {
      return true;
    }
  }).length;
  expect(quarantined.length).toBeGreaterThanOrEqual(rejected);
  expect(quarantined.length).toBeLessThanOrEqual(bad.length);
  totals.rejected += rejected;
  totals.quarantined += quarantined.length;
}

/** Over all runs: the generators really produced rejected input, and it really was quarantined. */
const totals = { rejected: 0, quarantined: 0 };

const badKey = (protocol: Protocol, id: string) => (protocol === 'sparkplug' ? `fuzz/${id}` : id);
const badTopic = (protocol: Protocol, id: string) =>
  protocol === 'sparkplug' ? spTopic('NDATA', id) : lwTopic(id);

const badRecords = (seed: (id: string) => Rec) =>
  fc
    .array(
      fc.oneof(
        { weight: 5, arbitrary: mutation.map((m) => ({ mutate: m, raw: undefined as string | undefined })) },
        { weight: 1, arbitrary: brokenEnvelope.map((raw) => ({ mutate: undefined, raw })) },
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((list) =>
      list.map(({ mutate, raw }, i): Rec => {
        const base = seed(`bad-${i}`);
        if (raw !== undefined) return { ...base, raw: Buffer.from(raw, 'latin1') };
        return { ...base, payload: mutate!.apply(base.payload) };
      }),
    );

describe('fuzzing through the ingest handlers', () => {
  beforeEach(() => {
    totals.rejected = 0;
    totals.quarantined = 0;
  });

  it('Sparkplug: mutated DATA is quarantined or processed, good neighbours all stored', async () => {
    await fc.assert(
      fc.asyncProperty(
        badRecords((id) => ndata(id, 2)),
        (bad) => runBatch('sparkplug', bad, decodePayload),
      ),
      { numRuns: RUNS },
    );
    expect(totals.rejected).toBeGreaterThan(RUNS);
    expect(totals.quarantined).toBeGreaterThanOrEqual(totals.rejected);
  }, 120_000);

  it('LwM2M: mutated Sends are quarantined or processed, good neighbours all stored', async () => {
    await fc.assert(
      fc.asyncProperty(
        badRecords((id) => send(id, 2)),
        (bad) => runBatch('lwm2m', bad, decodeMessage),
      ),
      { numRuns: RUNS },
    );
    expect(totals.rejected).toBeGreaterThan(RUNS);
    expect(totals.quarantined).toBeGreaterThanOrEqual(totals.rejected);
  }, 120_000);
});
