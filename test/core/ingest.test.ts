import { describe, expect, it } from 'vitest';
import { DecodeError, TransientError } from '../../functions/core/errors.js';
import { InMemoryEventLog } from '../../functions/core/events.js';
import {
  type EnricherPort,
  INGEST_CHUNK_READINGS,
  INGEST_FIRST_CHUNK_RECORDS,
  type IngestDeps,
  type IngestRecord,
  parseRuleEnvelope,
  processBatch,
  type StorePort,
} from '../../functions/core/ingest.js';
import type { InboundMessage, MessageProcessor } from '../../functions/core/processor.js';
import type { EnrichedReading, MessageOutcome, Reading } from '../../functions/core/reading.js';

const T0 = 1_700_000_000_000;

function record(seq: number, key: string, topic: string, payload: string | null, extra = {}): IngestRecord {
  const envelope =
    payload === null
      ? 'not json {'
      : JSON.stringify({
          topic,
          payload: Buffer.from(payload).toString('base64'),
          receivedAt: T0 + seq,
          ...extra,
        });
  return { sequenceNumber: String(seq).padStart(10, '0'), partitionKey: key, data: Buffer.from(envelope) };
}

/** A processor whose payload text says what to do: "ok:<n readings>", "bad", "flaky:<fails>". */
class ScriptedProcessor implements MessageProcessor {
  readonly seen: string[] = [];
  private readonly failures = new Map<string, number>();
  async handle(message: InboundMessage): Promise<MessageOutcome> {
    const text = Buffer.from(message.payload).toString();
    const deviceId = message.topic.split('/').at(-1)!;
    this.seen.push(`${deviceId}:${text}`);
    if (text === 'bad') throw new DecodeError('TEST_BAD', 'payload is bad', { field: 'payload' });
    if (text.startsWith('flaky:')) {
      const left = this.failures.get(text) ?? Number(text.slice(6));
      this.failures.set(text, left - 1);
      if (left > 0) throw new TransientError('TEST_FLAKY', 'try again');
    }
    const n = text.startsWith('ok:') ? Number(text.slice(3)) : 1;
    const readings: Reading[] = Array.from({ length: n }, (_, i) => ({
      protocol: 'lwm2m',
      deviceId,
      metric: `/3303/0/${5700 + i}`,
      type: 'Float',
      value: i,
      time: message.receivedAt,
      historical: false,
      transient: false,
      quality: 'GOOD',
    }));
    return {
      protocol: 'lwm2m',
      kind: 'send',
      deviceId,
      readings,
      events: [{ type: 'update', protocol: 'lwm2m', deviceId, time: message.receivedAt }],
      actions: [
        {
          kind: 'publish',
          topic: `lwm2m/rd/${deviceId}`,
          payload: new Uint8Array([1]),
          qos: 1,
          reason: 'ack',
        },
      ],
    };
  }
}

function deps(overrides: Partial<IngestDeps> = {}) {
  const stored: EnrichedReading[] = [];
  const published: string[] = [];
  const prepared: string[][] = [];
  const enricher: EnricherPort = {
    async prepare(ids) {
      prepared.push(ids);
    },
    enrich(readings) {
      const unknownDevices = [
        ...new Set(readings.filter((r) => r.deviceId.startsWith('unknown')).map((r) => r.deviceId)),
      ];
      return {
        enriched: readings
          .filter((r) => !unknownDevices.includes(r.deviceId))
          .map((r) => ({ ...r, enrichment: { deviceType: 'sensor', applications: [] } })),
        unknownDevices,
      };
    },
  };
  const store: StorePort = {
    async write(readings) {
      stored.push(...readings);
      return { written: readings.length, duplicates: 0, rejected: [] };
    },
  };
  const events = new InMemoryEventLog();
  const processor = new ScriptedProcessor();
  const d: IngestDeps = {
    protocol: 'lwm2m',
    processor,
    enricher,
    store,
    publisher: {
      async publish(actions) {
        published.push(...actions.map((a) => a.topic));
      },
    },
    events,
    clock: () => T0,
    sleep: async () => {},
    ...overrides,
  };
  return { d, stored, published, events, processor, prepared };
}

describe('processBatch', () => {
  it('never counts readings the store confirms only later (Timestream magnetic store) as stored', async () => {
    const { d } = deps({
      store: {
        async write(readings) {
          // The first reading of each call goes to the magnetic store: accepted, confirmed later.
          return { written: readings.length - 1, pending: 1, duplicates: 0, rejected: [] };
        },
      },
    });
    const result = await processBatch([record(1, 'a', 'lwm2m/rd/a', 'ok:3')], d);
    expect(result.stats).toMatchObject({ readingsDecoded: 3, readingsStored: 2, readingsPending: 1 });
  });

  it('stores every reading, publishes actions and logs events for a clean batch', async () => {
    const { d, stored, published, events, prepared } = deps();
    const records = [record(1, 'a', 'lwm2m/rd/a', 'ok:3'), record(2, 'b', 'lwm2m/rd/b', 'ok:2')];

    const result = await processBatch(records, d);

    expect(result.batchItemFailures).toEqual([]);
    expect(stored).toHaveLength(5);
    expect(result.stats).toMatchObject({ records: 2, readingsDecoded: 5, readingsStored: 5, quarantined: 0 });
    expect(published).toEqual(['lwm2m/rd/a', 'lwm2m/rd/b']);
    expect((await events.list({})).events.map((e) => e.type)).toEqual(['update', 'update']);
    expect(prepared).toEqual([['a', 'b']]);
  });

  it('reports, per stored message with readings, the time since its receipt and its reading count', async () => {
    // Prepare: receivedAt is T0 + seq; the clock reads T0 + 100 when the chunk is stored.
    const seen: Array<[number, number]> = [];
    const { d } = deps({ clock: () => T0 + 100, onStored: (ms, n) => seen.push([ms, n]) });
    const records = [
      record(1, 'a', 'lwm2m/rd/a', 'ok:3'),
      record(2, 'b', 'lwm2m/rd/b', 'bad'), // quarantined: nothing stored
      record(3, 'c', 'lwm2m/rd/c', 'ok:0'), // no readings
      record(4, 'unknown1', 'lwm2m/rd/unknown1', 'ok:2'), // not enriched, not stored
      record(5, 'd', 'lwm2m/rd/d', 'ok:1'),
    ];

    // Act
    await processBatch(records, d);

    // Assess
    expect(seen.sort((x, y) => x[0] - y[0])).toEqual([
      [95, 1],
      [99, 3],
    ]);
  });

  it('quarantines a bad record with its reason and keeps its neighbours', async () => {
    const { d, stored, events } = deps();
    const records = [
      record(1, 'a', 'lwm2m/rd/a', 'ok:1'),
      record(2, 'a', 'lwm2m/rd/a', 'bad'),
      record(3, 'x', '', null),
      record(4, 'a', 'lwm2m/rd/a', 'ok:2'),
    ];

    const result = await processBatch(records, d);

    expect(result.batchItemFailures).toEqual([]);
    expect(stored).toHaveLength(3);
    const quarantined = (await events.list({ types: ['quarantined'] })).events;
    expect(quarantined).toHaveLength(2);
    expect(quarantined.map((e) => (e.data as { reason: { code: string } }).reason.code).sort()).toEqual([
      'ENVELOPE_JSON',
      'TEST_BAD',
    ]);
    const bad = quarantined.find((e) => e.deviceId === 'a')!;
    expect(bad.data).toMatchObject({ topic: 'lwm2m/rd/a', payload: Buffer.from('bad').toString('base64') });
  });

  it('backs off exponentially between the attempts of a record, and gives up after `attempts`', async () => {
    const delays: number[] = [];
    const { d, processor } = deps({
      attempts: 4,
      baseDelayMs: 10,
      sleep: async (ms) => void delays.push(ms),
    });
    const result = await processBatch([record(1, 'a', 'lwm2m/rd/a', 'flaky:9')], d);
    expect(delays).toEqual([10, 20, 40]);
    expect(processor.seen).toHaveLength(4);
    expect(result.stats.retries).toBe(3);
    expect(result.batchItemFailures).toHaveLength(1);
    const once = deps({ attempts: 1 });
    expect((await processBatch([record(1, 'a', 'lwm2m/rd/a', 'flaky:1')], once.d)).stats.retries).toBe(0);
    expect(once.processor.seen).toHaveLength(1);
  });

  it('retries a transient failure and succeeds without reporting it', async () => {
    const { d, stored } = deps();
    const result = await processBatch([record(1, 'a', 'lwm2m/rd/a', 'flaky:2')], d);
    expect(result.batchItemFailures).toEqual([]);
    expect(result.stats.retries).toBe(2);
    expect(stored).toHaveLength(1);
  });

  it('reports the lowest failed sequence number when a failure persists, and skips later records of that key', async () => {
    const { d, stored, processor } = deps({ attempts: 2 });
    const records = [
      record(1, 'b', 'lwm2m/rd/b', 'ok:1'),
      record(2, 'a', 'lwm2m/rd/a', 'flaky:5'),
      record(3, 'a', 'lwm2m/rd/a', 'ok:1'),
      record(4, 'b', 'lwm2m/rd/b', 'ok:1'),
    ];

    const result = await processBatch(records, d);

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: records[1]!.sequenceNumber }]);
    expect(processor.seen.filter((s) => s.startsWith('a:'))).toEqual(['a:flaky:5', 'a:flaky:5']);
    expect(stored.map((r) => r.deviceId)).toEqual(['b', 'b']);
  });

  it('keeps per-key order while running keys concurrently', async () => {
    const { d, processor } = deps({ concurrency: 4 });
    const records = Array.from({ length: 40 }, (_, i) =>
      record(i, `k${i % 4}`, `lwm2m/rd/k${i % 4}`, `ok:${i}`),
    );
    await processBatch(records, d);
    for (let k = 0; k < 4; k++) {
      const order = processor.seen.filter((s) => s.startsWith(`k${k}:`)).map((s) => Number(s.split(':')[2]));
      expect(order).toEqual([...order].sort((x, y) => x - y));
      expect(order).toHaveLength(10);
    }
  });

  it('fails the batch from its first record when the store keeps failing', async () => {
    const store: StorePort = {
      async write() {
        throw new TransientError('STORE_THROTTLED', 'throttled');
      },
    };
    const { d } = deps({ store, attempts: 3 });
    const records = [record(5, 'a', 'lwm2m/rd/a', 'ok:1'), record(6, 'b', 'lwm2m/rd/b', 'ok:1')];
    const result = await processBatch(records, d);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.sequenceNumber }]);
    expect(result.stats.retries).toBe(2);
  });

  it('quarantines messages of unknown devices when auto-registration is off', async () => {
    const { d, stored, events } = deps();
    const result = await processBatch(
      [record(1, 'u', 'lwm2m/rd/unknown-1', 'ok:2'), record(2, 'a', 'lwm2m/rd/a', 'ok:1')],
      d,
    );
    expect(stored.map((r) => r.deviceId)).toEqual(['a']);
    expect(result.stats.quarantined).toBe(1);
    const [q] = (await events.list({ types: ['quarantined'] })).events;
    expect(q?.deviceId).toBe('unknown-1');
    expect(q?.detail).toContain('UNKNOWN_DEVICE');
  });

  it('gives the same event ids when a batch is redelivered (idempotent event log)', async () => {
    const { d, events } = deps();
    const records = [record(1, 'a', 'lwm2m/rd/a', 'ok:1'), record(2, 'a', 'lwm2m/rd/a', 'bad')];
    await processBatch(records, d);
    await processBatch(records, d);
    expect((await events.list({})).events).toHaveLength(2);
  });
});

describe('processBatch: processor.prepare', () => {
  it('hands prepare only the messages with valid envelopes, once, before any handle', async () => {
    const { d, processor } = deps();
    const seenAtPrepare: string[][] = [];
    d.processor = Object.assign(processor, {
      async prepare(messages: InboundMessage[]) {
        seenAtPrepare.push(messages.map((m) => `${m.topic}:${Buffer.from(m.payload).toString()}`));
        expect(processor.seen).toEqual([]);
      },
    });
    const records = [
      record(1, 'a', 'lwm2m/rd/a', 'ok:1'),
      record(2, 'x', '', null),
      record(3, 'b', 'lwm2m/rd/b', 'ok:1'),
      record(4, 'y', 'lwm2m/rd/y', 'ok:1', { receivedAt: 'yesterday' }),
    ];
    const result = await processBatch(records, d);
    expect(seenAtPrepare).toEqual([['lwm2m/rd/a:ok:1', 'lwm2m/rd/b:ok:1']]);
    expect(result.batchItemFailures).toEqual([]);
    expect(result.stats.quarantined).toBe(2);
  });

  it('reports every record for retry (lowest sequence number) and stores nothing when prepare keeps failing', async () => {
    const cleared: string[] = [];
    const { d, stored, published, events, processor } = deps({ attempts: 3 });
    let calls = 0;
    d.processor = Object.assign(processor, {
      begin: () => void cleared.push('begin'),
      abort: () => void cleared.push('abort'),
      commit: async () => void cleared.push('commit'),
      async prepare() {
        calls++;
        throw new TransientError('STATE_THROTTLED', 'throttled');
      },
    });
    const problems: string[] = [];
    d.onProblem = (p) => problems.push(`${p.kind}:${p.record.sequenceNumber}`);
    const records = [
      record(7, 'b', 'lwm2m/rd/b', 'ok:1'),
      record(8, 'a', 'lwm2m/rd/a', 'ok:2'),
      record(9, 'b', 'lwm2m/rd/b', 'ok:1'),
    ];

    const result = await processBatch(records, d);

    expect(calls).toBe(3);
    expect(result.stats.retries).toBe(2);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.sequenceNumber }]);
    expect(processor.seen).toEqual([]);
    expect(stored).toEqual([]);
    expect(published).toEqual([]);
    expect((await events.list({})).events).toEqual([]);
    // Begun, then aborted once as the batch is handed back for redelivery; never committed.
    expect(cleared).toEqual(['begin', 'abort']);
    expect(problems).toEqual([`transient:${records[0]!.sequenceNumber}`]);
  });

  it('does not call prepare when no record has a valid envelope', async () => {
    const { d, processor } = deps();
    let calls = 0;
    d.processor = Object.assign(processor, {
      async prepare() {
        calls++;
      },
    });
    const result = await processBatch([record(1, 'x', '', null)], d);
    expect(calls).toBe(0);
    expect(result.stats.quarantined).toBe(1);
  });
});

describe('processBatch: chunks', () => {
  /** 40 readings per record: a batch of `n` records spans several chunks. */
  const big = (n: number, keys = 5, text = (_i: number) => 'ok:40') =>
    Array.from({ length: n }, (_, i) => record(i, `k${i % keys}`, `lwm2m/rd/k${i % keys}`, text(i)));

  it('stores every reading exactly once, a chunk at a time, before state is flushed and actions published', async () => {
    const order: string[] = [];
    const writes: number[] = [];
    const { d, stored, published, prepared, processor } = deps();
    d.processor = Object.assign(processor, { commit: async () => void order.push('flush') });
    const store = d.store;
    d.store = {
      async write(readings) {
        order.push('store');
        writes.push(readings.length);
        return store.write(readings);
      },
    };
    const publisher = d.publisher;
    d.publisher = {
      async publish(actions) {
        order.push('publish');
        return publisher.publish(actions);
      },
    };
    const records = big(600);

    const result = await processBatch(records, d);

    expect(result.batchItemFailures).toEqual([]);
    expect(writes.length).toBeGreaterThan(3);
    expect(Math.max(...writes)).toBeLessThanOrEqual(
      Math.max(INGEST_FIRST_CHUNK_RECORDS * 40, INGEST_CHUNK_READINGS + 40),
    );
    expect(stored).toHaveLength(600 * 40);
    expect(new Set(stored.map((r) => `${r.deviceId}|${r.metric}|${r.time}`)).size).toBe(600 * 40);
    expect(result.stats).toMatchObject({ readingsDecoded: 24_000, readingsStored: 24_000, messages: 600 });
    expect(order.slice(-2)).toEqual(['flush', 'publish']);
    expect(order.filter((o) => o === 'store')).toHaveLength(writes.length);
    expect(published).toHaveLength(600);
    // Each device is prepared once per batch, whichever chunk it first appears in.
    expect(prepared.flat().sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  });

  it('hands the whole batch back when a later chunk cannot be stored: no flush, no publish, caches cleared', async () => {
    const cache: string[] = [];
    const { d, published, events, processor } = deps({ attempts: 2 });
    d.processor = Object.assign(processor, {
      begin: () => void cache.push('begin'),
      abort: () => void cache.push('clear'),
      commit: async () => void cache.push('flush'),
    });
    let calls = 0;
    d.store = {
      async write(readings) {
        if (++calls >= 3) throw new TransientError('STORE_THROTTLED', 'throttled');
        return { written: readings.length, duplicates: 0, rejected: [] };
      },
    };
    const records = big(600);

    const result = await processBatch(records, d);

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.sequenceNumber }]);
    expect(result.stats.retries).toBe(1);
    expect(cache).toEqual(['begin', 'clear']);
    expect(published).toEqual([]);
    expect((await events.list({})).events).toEqual([]);
  });

  it('does not process the later records of a key that failed in an earlier chunk, and reports the lowest', async () => {
    const { d, stored, processor } = deps({ attempts: 2 });
    const records = big(600, 5, (i) => (i === 7 ? 'flaky:9' : 'ok:40'));

    const result = await processBatch(records, d);

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: records[7]!.sequenceNumber }]);
    expect(processor.seen.filter((s) => s.startsWith('k2:'))).toEqual([
      'k2:ok:40',
      'k2:flaky:9',
      'k2:flaky:9',
    ]);
    expect(stored.filter((r) => r.deviceId === 'k2')).toHaveLength(40);
    expect(stored).toHaveLength((600 - 120 + 1) * 40);
    expect(result.stats.transientFailures).toBe(1);
  });

  it('quarantines every message of an unknown device, in whichever chunk its readings showed it unknown', async () => {
    const { d, stored, events } = deps();
    // The unknown device's first message has no reading; its readings come in a later chunk.
    const records = big(600, 5, (i) => (i === 3 ? 'ok:0' : 'ok:40'));
    const tail = record(600, 'u', 'lwm2m/rd/unknown-9', 'ok:0');
    const late = record(601, 'u', 'lwm2m/rd/unknown-9', 'ok:2');
    const result = await processBatch([tail, ...records, late], d);
    expect(stored.some((r) => r.deviceId === 'unknown-9')).toBe(false);
    expect(result.stats.quarantined).toBe(2);
    const q = (await events.list({ types: ['quarantined'] })).events;
    expect(q.map((e) => e.deviceId)).toEqual(['unknown-9', 'unknown-9']);
    expect(q[0]!.data).toMatchObject({ payload: Buffer.from('ok:0').toString('base64') });
  });

  it('gives store rejects distinct event ids across chunks', async () => {
    const { d, events } = deps();
    d.store = {
      async write(readings) {
        // Rejects the first reading of every call: same device, metric and time in several calls.
        const r = readings[0]!;
        return {
          written: readings.length - 1,
          duplicates: 0,
          rejected: [{ reading: { ...r, time: T0 }, reason: 'nope', code: 'TEST' }],
        };
      },
    };
    const result = await processBatch(big(600, 1), d);
    const rejects = (await events.list({ types: ['quarantined'], limit: 1000 })).events;
    expect(result.stats.rejectedByStore).toBeGreaterThan(3);
    expect(rejects).toHaveLength(result.stats.rejectedByStore);
  });
});

describe('parseRuleEnvelope', () => {
  it('keeps the payload text as sent in quarantine entries (non-canonical base64 included)', async () => {
    const { d, events } = deps();
    const data = Buffer.from(JSON.stringify({ topic: 'lwm2m/rd/a', payload: 'YmFk', receivedAt: T0 }));
    const odd = Buffer.from(JSON.stringify({ topic: 'lwm2m/rd/a', payload: 'Ym Fk\n', receivedAt: T0 }));
    await processBatch(
      [
        { sequenceNumber: '1', partitionKey: 'a', data },
        { sequenceNumber: '2', partitionKey: 'a', data: odd },
      ],
      d,
    );
    const q = (await events.list({ types: ['quarantined'] })).events;
    expect(q.map((e) => (e.data as { payload: string }).payload)).toEqual(['YmFk', 'Ym Fk\n']);
  });

  it('decodes payloads exactly as Buffer does (odd base64 and large payloads too), each in its own bytes', () => {
    const texts = [
      '',
      'QQ',
      'QQ=',
      'Q Q==',
      'QUJD\nREVG',
      'a-_b',
      'QQ==QQ==',
      '$$$',
      'A'.repeat(9000),
      ...Array.from({ length: 3000 }, (_, i) =>
        Buffer.from(`payload ${i} `.repeat(i % 50)).toString('base64'),
      ),
    ];
    const payloads = texts.map(
      (payload) =>
        parseRuleEnvelope(Buffer.from(JSON.stringify({ topic: 't', payload, receivedAt: 1 }))).payload,
    );
    for (const [i, text] of texts.entries()) {
      expect(Buffer.from(payloads[i]!).equals(Buffer.from(text, 'base64'))).toBe(true);
    }
  });

  it('gives the payload as a plain Uint8Array, with the envelope fields', () => {
    const env = parseRuleEnvelope(
      Buffer.from(JSON.stringify({ payload: 'AQID', topic: 't/x', receivedAt: 5, clientId: 'c' })),
    );
    expect(env).toEqual({ topic: 't/x', payload: new Uint8Array([1, 2, 3]), receivedAt: 5, clientId: 'c' });
    expect(Buffer.isBuffer(env.payload)).toBe(false);
  });
});

describe('processBatch: redriven records (ADR 0017)', () => {
  it('derives event ids from the first sequence number, so a redrive rewrites the same events', async () => {
    const first = deps();
    await processBatch([record(1, 'a', 'lwm2m/rd/a', 'ok:1')], first.d);
    const firstIds = (await first.events.list({ limit: 10 })).events.map((e) => e.id);
    // The same message put back on the stream: a new sequence number, the first one in the envelope.
    const again = deps();
    const redriven = record(9, 'a', 'lwm2m/rd/a', 'ok:1', {
      receivedAt: T0 + 1,
      redrive: { sequenceNumber: '0000000001' },
    });
    await processBatch([redriven], again.d);
    const redrivenIds = (await again.events.list({ limit: 10 })).events.map((e) => e.id);
    expect(firstIds).toHaveLength(1);
    expect(redrivenIds).toEqual(firstIds);
    // A malformed marker is ignored: the record's own sequence number is used.
    const odd = deps();
    await processBatch(
      [record(9, 'a', 'lwm2m/rd/a', 'ok:1', { receivedAt: T0 + 1, redrive: { sequenceNumber: 'x' } })],
      odd.d,
    );
    expect((await odd.events.list({ limit: 10 })).events.map((e) => e.id)).not.toEqual(firstIds);
  });

  it('hands the marker to the processor as redriveOf', () => {
    const env = parseRuleEnvelope(
      Buffer.from(
        JSON.stringify({ topic: 't', payload: '', receivedAt: T0, redrive: { sequenceNumber: '42' } }),
      ),
    );
    expect(env.redriveOf).toBe('42');
    expect(
      parseRuleEnvelope(Buffer.from(JSON.stringify({ topic: 't', payload: '', receivedAt: T0 }))).redriveOf,
    ).toBe(undefined);
  });
});
