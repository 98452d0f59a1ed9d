/**
 * One device's bad message never harms another (issue 15): each trigger is sent in a batch with good
 * devices' messages through the functions' composition roots (in-memory ports). The poison record is
 * quarantined with a code; no record is reported for redelivery; every good reading is stored.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { ProtocolError, TransientError, ValidationError } from '../../functions/core/errors.js';
import { type EventLog, InMemoryEventLog, type StoredEvent } from '../../functions/core/events.js';
import { type IngestRecord, MAX_QUARANTINE_PAYLOAD } from '../../functions/core/ingest.js';
import { ContentFormat, encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
} from '../../functions/core/lwm2m/server/state.js';
import type { EnrichedReading, PublishAction } from '../../functions/core/reading.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { InMemorySparkplugStateStore } from '../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { composeLwm2mIngest } from '../../functions/lwm2m-ingest/compose.js';
import { composeSparkplugIngest } from '../../functions/sparkplug-ingest/compose.js';

const T0 = 1_700_000_000_000;
let seq = 0;
const record = (topic: string, payload: Uint8Array | string, key: string): IngestRecord => ({
  sequenceNumber: String(++seq).padStart(12, '0'),
  partitionKey: key,
  data: Buffer.from(
    JSON.stringify({
      topic,
      payload: typeof payload === 'string' ? payload : Buffer.from(payload).toString('base64'),
      receivedAt: T0,
      clientId: key,
    }),
  ),
});

/** An event log with DynamoDB's item limit: an event over 400 KB is refused (non-retryable). */
class LimitedEventLog extends InMemoryEventLog {
  refused: string[] = [];
  throttle = false;
  override async append(events: StoredEvent[]): Promise<void> {
    if (this.throttle) throw new TransientError('EVENTS_THROTTLED', 'event log throttled');
    for (const e of events) {
      if (JSON.stringify(e).length > 400_000) {
        this.refused.push(e.id);
        throw new ValidationError('Item size has exceeded the maximum allowed size', { field: 'item' });
      }
    }
    return super.append(events);
  }
}

function ports(events: EventLog = new InMemoryEventLog()) {
  const stored: EnrichedReading[] = [];
  return {
    stored,
    events,
    base: {
      registry: new InMemoryRegistry(),
      events,
      store: {
        async write(rs: EnrichedReading[]) {
          stored.push(...rs);
          return { written: rs.length, duplicates: 0, rejected: [] };
        },
      },
      publisher: { publish: async (_actions: PublishAction[]) => {} },
      clock: () => T0,
      logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'test' }),
    },
  };
}

const lwm2m = (p: ReturnType<typeof ports>) =>
  composeLwm2mIngest(
    { ...p.base, registrations: new InMemoryRegistrationStore(), pending: new InMemoryPendingRequestStore() },
    { autoRegister: true, attempts: undefined } as never,
  );
const sparkplug = (p: ReturnType<typeof ports>) =>
  composeSparkplugIngest(
    { ...p.base, sparkplugState: new InMemorySparkplugStateStore() },
    { autoRegister: true },
  );

const register = (ep: string) =>
  record(
    `lwm2m/rd/${ep}`,
    encodeMessage({
      operation: Operation.Register,
      token: 1,
      ep,
      lifetime: 300,
      version: '1.2',
      payload: new TextEncoder().encode('</3303/0>'),
    }),
    ep,
  );
const send = (ep: string, records: Array<{ n: string; v: number; t?: number }>) =>
  record(
    `lwm2m/rd/${ep}`,
    encodeMessage({
      operation: Operation.Send,
      token: 2,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml(records, 112),
    }),
    ep,
  );

const nbirth = (node: string) =>
  record(
    `spBv1.0/g/NBIRTH/${node}`,
    encodePayload({
      timestamp: T0,
      seq: 0,
      metrics: [
        { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
        { name: 'temp', alias: 1, datatype: DataType.Double, value: 1, timestamp: T0 },
      ],
    }),
    `g/${node}`,
  );
const ndata = (node: string, seqNo: number, ts: number | bigint) => {
  // The writer takes a bigint for uint64 fields (2^64 − 1 is not a double); the type says number.
  const timestamp = ts as number;
  return record(
    `spBv1.0/g/NDATA/${node}`,
    encodePayload({
      timestamp,
      seq: seqNo,
      metrics: [{ alias: 1, datatype: DataType.Double, value: 2, timestamp }],
    }),
    `g/${node}`,
  );
};

describe('poison messages are quarantined, their neighbours are stored', () => {
  it('a SenML time outside the Date range (t: 1e13 s) quarantines only its message', async () => {
    const p = ports();
    const fn = lwm2m(p);
    await fn.processRecords([register('good'), register('bad')]);
    const out = await fn.processRecords([
      send('good', [{ n: '/3303/0/5700', v: 21 }]),
      send('bad', [{ n: '/3303/0/5700', v: 99, t: 1e13 }]),
      send('good', [{ n: '/3303/0/5700', v: 22 }]),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    expect(out.stats.quarantined).toBe(1);
    expect(p.stored.map((r) => [r.deviceId, r.value])).toEqual([
      ['good', 21],
      ['good', 22],
    ]);
    const q = (await p.events.list({ types: ['quarantined'] })).events;
    expect(q.map((e) => [e.deviceId, e.detail?.split(':')[0]])).toEqual([['bad', 'TIME_OUT_OF_RANGE']]);
  });

  it.each([
    ['2^64 - 1', 2n ** 64n - 1n],
    ['9e15 (beyond the Date range)', 9e15],
    ['before 2000', Date.UTC(1999, 11, 31)],
    ['more than a day ahead of receipt', T0 + 2 * 86_400_000],
  ])('a Sparkplug timestamp of %s is refused with TIME_OUT_OF_RANGE', async (_name, ts) => {
    const p = ports();
    const fn = sparkplug(p);
    await fn.processRecords([nbirth('good'), nbirth('bad')]);
    const out = await fn.processRecords([
      ndata('good', 1, T0 + 1000),
      ndata('bad', 1, ts),
      ndata('good', 2, T0 + 2000),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    // (Each birth stored its own reading at T0.)
    const data = p.stored.filter((r) => r.time !== T0);
    expect(data.filter((r) => r.deviceId === 'good').map((r) => r.time)).toEqual([T0 + 1000, T0 + 2000]);
    expect(data.filter((r) => r.deviceId === 'bad')).toEqual([]);
    const q = (await p.events.list({ types: ['quarantined'] })).events;
    expect(q).toHaveLength(1);
    expect(q[0]!.detail).toMatch(/^TIME_OUT_OF_RANGE/);
  });

  it('a malformed 300 KB message is quarantined with a bounded copy (first 64 KiB, length, SHA-256)', async () => {
    const log = new LimitedEventLog();
    const p = ports(log);
    const fn = lwm2m(p);
    await fn.processRecords([register('good')]);
    const big = Buffer.alloc(300_000, 0xff).toString('base64');
    const out = await fn.processRecords([
      record('lwm2m/rd/bad', big, 'bad'),
      send('good', [{ n: '/3303/0/5700', v: 21 }]),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    expect(log.refused).toEqual([]);
    expect(p.stored.map((r) => r.deviceId)).toEqual(['good']);
    const [q] = (await log.list({ types: ['quarantined'] })).events;
    const data = q!.data as {
      payload: string;
      payloadTruncated: boolean;
      payloadLength: number;
      payloadSha256: string;
    };
    expect(data.payload).toBe(big.slice(0, MAX_QUARANTINE_PAYLOAD));
    expect(data).toMatchObject({ payloadTruncated: true, payloadLength: big.length });
    expect(data.payloadSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('an event the log refuses costs only itself; a throttled log never fails the stored readings', async () => {
    const log = new LimitedEventLog();
    const p = ports(log);
    const fn = lwm2m(p);
    // Refused: an event log that rejects one event (non-retryable) writes the others one by one.
    const refuseOne: EventLog = {
      list: (q) => log.list(q),
      async append(events) {
        if (events.length > 1 && events.some((e) => e.deviceId === 'bad'))
          throw new ValidationError('refused', { field: 'item' });
        if (events[0]?.deviceId === 'bad') throw new ValidationError('refused', { field: 'item' });
        return log.append(events);
      },
    };
    const q = ports(refuseOne);
    const fn2 = lwm2m(q);
    const out = await fn2.processRecords([register('good'), register('bad')]);
    expect(out.batchItemFailures).toEqual([]);
    expect(out.stats.eventsUnwritten).toBe(1);
    expect((await log.list({})).events.map((e) => e.deviceId)).toEqual(['good']);

    // Throttled for longer than the retry budget: readings stored, the batch is not handed back.
    await fn.processRecords([register('good')]);
    log.throttle = true;
    const throttled = await fn.processRecords([
      send('good', [{ n: '/3303/0/5700', v: 21 }]),
      register('other'),
    ]);
    expect(throttled.batchItemFailures).toEqual([]);
    expect(p.stored.map((r) => r.deviceId)).toEqual(['good']);
    expect(throttled.stats.eventsUnwritten).toBeGreaterThan(0);
  }, 30_000);

  it('an NBIRTH with 12,000 metrics is quarantined (BIRTH_TOO_LARGE); the other nodes are born and stored', async () => {
    const p = ports();
    const fn = sparkplug(p);
    const huge = record(
      'spBv1.0/g/NBIRTH/huge',
      encodePayload({
        timestamp: T0,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          ...Array.from({ length: 12_000 }, (_, i) => ({
            name: `area/line/cell/metric-${i}`,
            alias: i + 1,
            datatype: DataType.Double,
            value: i,
          })),
        ],
      }),
      'g/huge',
    );
    const out = await fn.processRecords([nbirth('good'), huge, ndata('good', 1, T0 + 1000)]);

    expect(out.batchItemFailures).toEqual([]);
    expect(p.stored.filter((r) => r.deviceId === 'good').map((r) => r.time)).toEqual([T0, T0 + 1000]);
    expect(p.stored.filter((r) => r.deviceId === 'huge')).toEqual([]);
    const q = (await p.events.list({ types: ['quarantined'] })).events;
    expect(q.map((e) => [e.deviceId, e.detail?.split(':')[0]])).toEqual([['huge', 'BIRTH_TOO_LARGE']]);
  });

  it('a Register with 30,000 objects is answered 4.00 and never becomes state; others register', async () => {
    const p = ports();
    const published: string[] = [];
    p.base.publisher = { publish: async (actions) => void published.push(...actions.map((a) => a.topic)) };
    const registrations = new InMemoryRegistrationStore();
    const fn = composeLwm2mIngest(
      { ...p.base, registrations, pending: new InMemoryPendingRequestStore() },
      { autoRegister: true },
    );
    const objects = Array.from({ length: 30_000 }, (_, i) => `</${3300 + (i % 100)}/${i}>`).join(',');
    const bad = record(
      'lwm2m/rd/bad',
      encodeMessage({
        operation: Operation.Register,
        token: 1,
        ep: 'bad',
        lifetime: 300,
        version: '1.2',
        payload: new TextEncoder().encode(objects),
      }),
      'bad',
    );
    const out = await fn.processRecords([
      register('good'),
      bad,
      send('good', [{ n: '/3303/0/5700', v: 21 }]),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    expect(await registrations.get('bad')).toBeUndefined();
    expect(await registrations.get('good')).toBeDefined();
    expect(published).toContain('lwm2m/rd/bad');
    expect(p.stored.map((r) => r.deviceId)).toEqual(['good']);
    const ignored = (await p.events.list({ deviceIds: ['bad'] })).events;
    expect(ignored.map((e) => e.detail).join()).toMatch(/exceeds 65536|exceeds 2000/);
  });

  it('a message whose readings the store refuses outright is quarantined (STORE_REFUSED); the rest are stored', async () => {
    const p = ports();
    p.base.store = {
      async write(rs: EnrichedReading[]) {
        if (rs.some((r) => r.deviceId === 'bad')) throw new ValidationError('refused', { field: 'value' });
        p.stored.push(...rs);
        return { written: rs.length, duplicates: 0, rejected: [] };
      },
    };
    const fn = lwm2m(p);
    await fn.processRecords([register('good'), register('bad')]);
    const out = await fn.processRecords([
      send('good', [{ n: '/3303/0/5700', v: 21 }]),
      send('bad', [{ n: '/3303/0/5700', v: 99 }]),
      send('good', [{ n: '/3303/0/5700', v: 22 }]),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    expect(p.stored.map((r) => [r.deviceId, r.value])).toEqual([
      ['good', 21],
      ['good', 22],
    ]);
    const q = (await p.events.list({ types: ['quarantined'] })).events;
    expect(q.map((e) => [e.deviceId, e.detail?.split(':')[0]])).toEqual([['bad', 'STORE_REFUSED']]);
  });

  it('a server message the broker refuses for good is reported (publish-refused); the others go out', async () => {
    const p = ports();
    const published: string[] = [];
    p.base.publisher = {
      async publish(actions: PublishAction[]) {
        if (actions.some((a) => a.topic.endsWith('/bad')))
          throw new ProtocolError('PUBLISH_REFUSED', 'IoT Publish refused', { field: 'topic' });
        published.push(...actions.map((a) => a.topic));
      },
    };
    const fn = lwm2m(p);
    const out = await fn.processRecords([register('good'), register('bad'), register('other')]);

    expect(out.batchItemFailures).toEqual([]);
    expect(published.sort()).toEqual(['lwm2m/rd/good', 'lwm2m/rd/other']);
    expect(out.stats).toMatchObject({ actionsPublished: 2, actionsRefused: 1 });
    const refused = (await p.events.list({ types: ['publish-refused'] })).events;
    expect(refused.map((e) => e.deviceId)).toEqual(['bad']);
  });
});
