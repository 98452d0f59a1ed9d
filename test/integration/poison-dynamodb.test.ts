/**
 * Poison messages through the functions' composition roots over the AWS adapters (DynamoDB registry,
 * protocol state and event log on dynalite, which enforces DynamoDB's 400 KB item limit): the poison
 * record is quarantined and its event written; the good devices' readings, state and events are kept.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoEventLog } from '../../functions/adapters/dynamo-events.js';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry.js';
import {
  DynamoPendingRequestStore,
  DynamoRegistrationStore,
  DynamoSparkplugStateStore,
} from '../../functions/adapters/dynamo-state.js';
import type { IngestRecord } from '../../functions/core/ingest.js';
import { ContentFormat, encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import { encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { composeLwm2mIngest } from '../../functions/lwm2m-ingest/compose.js';
import { composeSparkplugIngest } from '../../functions/sparkplug-ingest/compose.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

let db: LocalDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => db.stop());

const now = Date.now();
let seq = 0;
const record = (topic: string, payload: Uint8Array, key: string): IngestRecord => ({
  sequenceNumber: String(++seq).padStart(12, '0'),
  partitionKey: key,
  data: Buffer.from(
    JSON.stringify({
      topic,
      payload: Buffer.from(payload).toString('base64'),
      receivedAt: now,
      clientId: key,
    }),
  ),
});

function ports() {
  const stored: EnrichedReading[] = [];
  const state = { client: db.doc, tableName: db.tables.state! };
  return {
    stored,
    events: new DynamoEventLog({ client: db.doc, tableName: db.tables.events! }),
    base: {
      registry: new DynamoRegistry({ client: db.doc, tableName: db.tables.registry! }),
      events: new DynamoEventLog({ client: db.doc, tableName: db.tables.events! }),
      store: {
        async write(rs: EnrichedReading[]) {
          stored.push(...rs);
          return { written: rs.length, duplicates: 0, rejected: [] };
        },
      },
      publisher: { publish: async () => {} },
      clock: Date.now,
      logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'test' }),
    },
    state,
  };
}

describe('poison messages over the DynamoDB adapters', () => {
  it('a 300 KB malformed LwM2M message: quarantined with a bounded copy; the good device registers and stores', async () => {
    const p = ports();
    const fn = composeLwm2mIngest(
      {
        ...p.base,
        registrations: new DynamoRegistrationStore(p.state),
        pending: new DynamoPendingRequestStore(p.state),
      },
      { autoRegister: true },
    );
    const register = encodeMessage({
      operation: Operation.Register,
      token: 1,
      ep: 'lw-good',
      lifetime: 300,
      version: '1.2',
      payload: new TextEncoder().encode('</3303/0>'),
    });
    const send = encodeMessage({
      operation: Operation.Send,
      token: 2,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml([{ n: '/3303/0/5700', v: 21.5 }], 112),
    });
    const out = await fn.processRecords([
      record('lwm2m/rd/lw-good', register, 'lw-good'),
      record('lwm2m/rd/lw-bad', new Uint8Array(300_000).fill(0xff), 'lw-bad'),
      record('lwm2m/rd/lw-good', send, 'lw-good'),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    expect(out.stats).toMatchObject({ quarantined: 1, eventsUnwritten: 0 });
    expect(p.stored.map((r) => [r.deviceId, r.value])).toEqual([['lw-good', 21.5]]);
    expect(await new DynamoRegistrationStore(p.state).get('lw-good')).toMatchObject({ endpoint: 'lw-good' });
    const bad = (await p.events.list({ deviceIds: ['lw-bad'], types: ['quarantined'] })).events;
    expect(bad).toHaveLength(1);
    expect(bad[0]!.data).toMatchObject({ payloadTruncated: true });
    expect((await p.events.list({ deviceIds: ['lw-good'], types: ['register'] })).events).toHaveLength(1);
  });

  it('an NBIRTH with 12,000 metrics: quarantined, never written as state; the good node is born', async () => {
    const p = ports();
    const fn = composeSparkplugIngest(
      { ...p.base, sparkplugState: new DynamoSparkplugStateStore(p.state) },
      { autoRegister: true },
    );
    const birth = (metrics: number) =>
      encodePayload({
        timestamp: now,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          ...Array.from({ length: metrics }, (_, i) => ({
            name: `area/line/cell/metric-${i}`,
            alias: i + 1,
            datatype: DataType.Double,
            value: i,
            timestamp: now,
          })),
        ],
      });
    const out = await fn.processRecords([
      record('spBv1.0/g/NBIRTH/sp-good', birth(3), 'g/sp-good'),
      record('spBv1.0/g/NBIRTH/sp-huge', birth(12_000), 'g/sp-huge'),
    ]);

    expect(out.batchItemFailures).toEqual([]);
    expect(out.stats.quarantined).toBe(1);
    const state = new DynamoSparkplugStateStore(p.state);
    expect(await state.getNode('g', 'sp-good')).toMatchObject({ online: true });
    expect(await state.getNode('g', 'sp-huge')).toBeUndefined();
    expect(p.stored.filter((r) => r.deviceId === 'sp-good')).toHaveLength(3);
    const q = (await p.events.list({ deviceIds: ['sp-huge'], types: ['quarantined'] })).events;
    expect(q[0]!.detail).toMatch(/^BIRTH_TOO_LARGE/);
  });
});
