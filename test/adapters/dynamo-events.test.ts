/** The DynamoDB event log against dynalite: sharded day partitions, ordered listing across shards. */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoEventLog, EVENT_SHARDS, eventShard } from '../../functions/adapters/dynamo-events.js';
import type { StoredEvent } from '../../functions/core/events.js';
import { eventId } from '../../functions/core/events.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 1, 12);
let db: LocalDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => db.stop());

const event = (deviceId: string, time: number, i: number, type = 'birth'): StoredEvent => ({
  id: eventId(time, `seq-${deviceId}-${i}`, 0),
  deviceId,
  protocol: 'sparkplug',
  type: type as StoredEvent['type'],
  time,
  detail: `${type} ${deviceId}`,
});

describe('DynamoEventLog', () => {
  it('spreads one day of events over its shards and lists them merged in id order, page by page', async () => {
    // Prepare: 200 devices, one event each today and yesterday, appended out of order.
    const log = new DynamoEventLog({ client: db.doc, tableName: db.tables.events!, clock: () => T0 + 1000 });
    const all: StoredEvent[] = [];
    for (let d = 0; d < 200; d++) {
      all.push(event(`node-${d}`, T0 - DAY + d * 1000, d), event(`node-${d}`, T0 - d * 100, d));
    }
    await log.append([...all].reverse());

    // Assess: partitions used for today's events
    const items = (await db.doc.send(new ScanCommand({ TableName: db.tables.events! }))).Items ?? [];
    const today = new Set(items.filter((i) => String(i.pk).includes('2026-12-01')).map((i) => i.pk));
    expect(today.size).toBe(EVENT_SHARDS);

    // Act: page through everything since the start of retention
    const seen: string[] = [];
    let since: string | undefined;
    for (let page = 0; page < 10; page++) {
      const out = await log.list({ limit: 150, ...(since ? { since } : {}) });
      seen.push(...out.events.map((e) => e.id));
      if (!out.nextCursor) break;
      since = out.nextCursor;
    }
    expect(seen).toEqual(all.map((e) => e.id).sort());
  });

  it('reads only the shard of the devices a query names, and filters by type', async () => {
    const log = new DynamoEventLog({ client: db.doc, tableName: db.tables.events!, clock: () => T0 + 1000 });
    await log.append([
      event('pump-7', T0 - 5000, 1, 'birth'),
      event('pump-7', T0 - 4000, 2, 'death'),
      event('pump-8', T0 - 3000, 3, 'death'),
    ]);
    let queries = 0;
    const counting = {
      send: (cmd: unknown) => {
        queries++;
        return db.doc.send(cmd as never);
      },
    } as unknown as typeof db.doc;
    const scoped = new DynamoEventLog({
      client: counting,
      tableName: db.tables.events!,
      clock: () => T0 + 1000,
    });
    const out = await scoped.list({
      deviceIds: ['pump-7'],
      types: ['death'],
      since: eventId(T0 - 10_000, '', 0),
    });
    expect(out.events.map((e) => [e.deviceId, e.type])).toEqual([['pump-7', 'death']]);
    expect(queries).toBe(1);
    expect(eventShard('pump-7')).toBeGreaterThanOrEqual(0);
  });
});
