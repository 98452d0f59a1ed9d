/**
 * Live updates over the AWS WebSocket transport (ADR 0023): the ConnectionFanout publishers use (who
 * watches, scoping, 410 cleanup, failures never thrown), the live-connections function's $connect /
 * subscribe / $disconnect (the REST key and scoping), and the connections table adapter on dynalite.
 */
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managementEndpoint } from '../../functions/adapters/apigw-live.js';
import {
  DynamoLiveConnections,
  LIVE_CONNECTION_TTL_S,
  type StoredLiveConnection,
} from '../../functions/adapters/dynamo-live-connections.js';
import { hashKey } from '../../functions/api/auth.js';
import { type LiveEvent, liveOnIngest, operationProgress } from '../../functions/core/live.js';
import { ConnectionFanout, type LiveConnection } from '../../functions/core/live-fanout.js';
import type { Device } from '../../functions/core/registry.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import {
  composeLiveConnections,
  type LiveConnectionStore,
} from '../../functions/live-connections/compose.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const reading = (deviceId: string, deviceType: string, value = 1): LiveEvent => ({
  kind: 'reading',
  deviceId,
  deviceType,
  metric: 'Voltage',
  value,
  time: 1000,
  quality: 'GOOD',
});
const app = (...types: string[]) => ({ kind: 'app' as const, deviceTypes: types });

/** A connection source and transport in memory, counting what the fan-out does. */
function fixture(connections: LiveConnection[], o: { ttlMs?: number; maxMessageBytes?: number } = {}) {
  let now = 1_000_000;
  const list = [...connections];
  const calls = { lists: 0, removed: [] as string[] };
  const posts: Array<{ id: string; events: LiveEvent[] }> = [];
  const gone = new Set<string>();
  const failing = new Set<string>();
  const errors: string[] = [];
  let listFails = false;
  const fanout = new ConnectionFanout({
    connections: {
      async list() {
        calls.lists++;
        if (listFails) throw new Error('throttled');
        return [...list];
      },
      async remove(id) {
        calls.removed.push(id);
        const i = list.findIndex((c) => c.id === id);
        if (i >= 0) list.splice(i, 1);
      },
    },
    post: async (id, data) => {
      if (failing.has(id)) throw new Error('socket hang up');
      if (gone.has(id)) return 'gone';
      posts.push({ id, events: (JSON.parse(data) as { events: LiveEvent[] }).events });
      return 'ok';
    },
    clock: () => now,
    ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}),
    ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: o.maxMessageBytes } : {}),
    onError: (what) => errors.push(what),
  });
  return {
    fanout,
    calls,
    posts,
    gone,
    failing,
    errors,
    list,
    advance: (ms: number) => {
      now += ms;
    },
    failLists: (v: boolean) => {
      listFails = v;
    },
    to: (id: string) => posts.filter((p) => p.id === id).flatMap((p) => p.events),
  };
}

describe('ConnectionFanout (publishers in AWS)', () => {
  it('nobody watching: one listing per TTL, no post, watching() false, publish a no-op', async () => {
    const f = fixture([], { ttlMs: 10_000 });
    expect(f.fanout.watching('b1')).toBe(true); // unknown before the first listing
    await f.fanout.flush();
    expect(f.fanout.watching('b1')).toBe(false);
    for (let i = 0; i < 100; i++) f.fanout.publish([reading('b1', 'breaker', i)]);
    await f.fanout.flush();
    expect(f.calls.lists).toBe(1);
    expect(f.posts).toHaveLength(0);
    // After the TTL the list is read again (a stale answer is given meanwhile) and a new watcher is seen.
    f.list.push({ id: 'c1', sub: { viewer: { kind: 'admin' }, deviceId: 'b1' } });
    f.advance(10_000);
    expect(f.fanout.watching('b1')).toBe(false);
    await f.fanout.flush();
    expect(f.calls.lists).toBe(2);
    expect(f.fanout.watching('b1')).toBe(true);
    expect(f.fanout.watching('b2')).toBe(false);
  });

  it('routes by device, kinds and scope: one message per connection per publish', async () => {
    const f = fixture([
      { id: 'dev', sub: { viewer: app('breaker'), deviceId: 'b1' } },
      { id: 'fleetApp', sub: { viewer: app('breaker') } },
      { id: 'otherApp', sub: { viewer: app('env-sensor') } },
      { id: 'alertsOnly', sub: { viewer: { kind: 'admin' }, kinds: ['alert'] } },
      { id: 'admin', sub: { viewer: { kind: 'admin' } } },
    ]);
    const progress = operationProgress({ operationId: 'op1', status: 'running', done: 1, total: 2 });
    f.fanout.publish([
      reading('b1', 'breaker'),
      reading('b2', 'breaker'),
      reading('e1', 'env-sensor'),
      progress,
    ]);
    await f.fanout.flush();
    expect(f.to('dev').map((e) => e.deviceId)).toEqual(['b1']);
    expect(f.to('fleetApp').map((e) => e.deviceId)).toEqual(['b1', 'b2']);
    expect(f.to('otherApp').map((e) => e.deviceId)).toEqual(['e1']);
    expect(f.to('alertsOnly')).toEqual([]);
    expect(f.to('admin')).toHaveLength(4);
    // One PostToConnection per connection with events, none for a connection with nothing to receive.
    expect(f.posts.map((p) => p.id).sort()).toEqual(['admin', 'dev', 'fleetApp', 'otherApp']);
  });

  it('a gone connection (410) is deleted and posted to no more; the others still get theirs', async () => {
    const f = fixture([
      { id: 'left', sub: { viewer: { kind: 'admin' } } },
      { id: 'stays', sub: { viewer: { kind: 'admin' } } },
    ]);
    f.gone.add('left');
    f.fanout.publish([reading('b1', 'breaker')]);
    await f.fanout.flush();
    expect(f.calls.removed).toEqual(['left']);
    expect(f.fanout.stats.gone).toBe(1);
    f.fanout.publish([reading('b1', 'breaker', 2)]);
    await f.fanout.flush();
    expect(f.fanout.stats.gone).toBe(1); // not posted to again from the cached list
    expect(f.to('stays')).toHaveLength(2);
  });

  it('never throws: a failing listing or post is reported, the batch goes on, the old list is kept', async () => {
    const f = fixture(
      [
        { id: 'broken', sub: { viewer: { kind: 'admin' } } },
        { id: 'fine', sub: { viewer: { kind: 'admin' } } },
      ],
      { ttlMs: 1000 },
    );
    f.failing.add('broken');
    expect(() => f.fanout.publish([reading('b1', 'breaker')])).not.toThrow();
    await expect(f.fanout.flush()).resolves.toBeUndefined();
    expect(f.to('fine')).toHaveLength(1);
    expect(f.errors).toEqual(['posting to live connection broken']);
    f.failLists(true);
    f.advance(1000);
    f.fanout.publish([reading('b1', 'breaker', 2)]);
    await f.fanout.flush();
    expect(f.errors).toContain('listing live connections');
    expect(f.to('fine')).toHaveLength(2); // delivered with the list kept from before
    // And the failed listing is not retried at every batch: the kept list is trusted for another TTL.
    const lists = f.calls.lists;
    f.fanout.publish([reading('b1', 'breaker', 3)]);
    await f.fanout.flush();
    expect(f.calls.lists).toBe(lists);
  });

  it('splits a connection’s events into messages below the size limit', async () => {
    const f = fixture([{ id: 'admin', sub: { viewer: { kind: 'admin' } } }], { maxMessageBytes: 400 });
    f.fanout.publish(Array.from({ length: 20 }, (_, i) => reading('b1', 'breaker', i)));
    await f.fanout.flush();
    expect(f.posts.length).toBeGreaterThan(1);
    expect(f.to('admin').map((e) => (e as { value: number }).value)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it('liveOnIngest flushes before a stored chunk returns (a Lambda must not return before its posts)', async () => {
    const f = fixture([{ id: 'admin', sub: { viewer: { kind: 'admin' } } }]);
    const { store } = liveOnIngest(
      {
        processor: { handle: async () => ({ readings: [], events: [], actions: [] }) as never },
        store: { write: async () => ({ written: 1, duplicates: 0, rejected: [], skipped: 0 }) },
      },
      { live: f.fanout, watching: (id) => f.fanout.watching(id) },
    );
    await store.write([
      {
        protocol: 'sparkplug',
        deviceId: 'b1',
        metric: 'Voltage',
        type: 'Float',
        value: 230,
        time: 1000,
        historical: false,
        transient: false,
        quality: 'GOOD',
        enrichment: { deviceType: 'breaker', applications: [] },
      },
    ]);
    expect(f.to('admin')).toHaveLength(1);
  });
});

describe('live-connections function ($connect, subscribe, $disconnect)', () => {
  const ADMIN_KEY = 'admin-key-0123456789-abcdefghijklmnop';
  const APP_KEY = 'dp_app_breaker-key-0123456789';
  const device = (id: string, type: string): Device => ({
    id,
    type,
    tags: {},
    status: 'active',
    protocols: [],
    createdAt: 1,
    updatedAt: 1,
  });
  async function setup() {
    const registry = new InMemoryRegistry();
    await registry.putDevice(device('b1', 'breaker'));
    await registry.putDevice(device('e1', 'env-sensor'));
    await registry.putApplication({
      id: 'a1',
      name: 'Grid app',
      deviceTypes: ['breaker'],
      keyHash: hashKey(APP_KEY),
      keyPrefix: 'dp_app_br',
      createdAt: 1,
    });
    const stored = new Map<string, StoredLiveConnection>();
    const connections: LiveConnectionStore = {
      put: async (c) => void stored.set(c.id, c),
      get: async (id) => stored.get(id),
      remove: async (id) => void stored.delete(id),
    };
    const fn = composeLiveConnections({
      registry,
      adminKeyHash: hashKey(ADMIN_KEY),
      connections,
      clock: () => 5000,
    });
    const connect = (id: string, key: string | undefined, query: Record<string, string> = {}) =>
      fn.handler({
        requestContext: { routeKey: '$connect', connectionId: id },
        headers: key === undefined ? {} : { 'Sec-WebSocket-Protocol': `dualpath, ${key}` },
        queryStringParameters: query,
      });
    const message = (id: string, body: unknown, routeKey = 'subscribe') =>
      fn.handler({ requestContext: { routeKey, connectionId: id }, body: JSON.stringify(body) });
    return { fn, stored, connect, message };
  }

  it('admin key in Sec-WebSocket-Protocol: accepted, the subprotocol selected, the connection stored', async () => {
    const t = await setup();
    const r = await t.connect('c1', ADMIN_KEY, { kinds: 'reading,alert' });
    expect(r.statusCode).toBe(200);
    expect(r.headers).toEqual({ 'Sec-WebSocket-Protocol': 'dualpath' });
    expect(t.stored.get('c1')).toMatchObject({
      principal: { kind: 'admin' },
      sub: { viewer: { kind: 'admin' }, kinds: ['reading', 'alert'] },
      connectedAt: 5000,
    });
  });

  it('an application key for another type’s device is refused like REST (403), as for a missing device', async () => {
    const t = await setup();
    const other = await t.connect('c1', APP_KEY, { device: 'e1' });
    const missing = await t.connect('c2', APP_KEY, { device: 'nope' });
    expect(other.statusCode).toBe(403);
    expect(missing.statusCode).toBe(403);
    expect(JSON.parse(other.body!).error.message).toBe('application "Grid app" may not access device e1');
    expect(t.stored.size).toBe(0);
    const own = await t.connect('c3', APP_KEY, { device: 'b1' });
    expect(own.statusCode).toBe(200);
    expect(t.stored.get('c3')?.sub).toEqual({ viewer: { ...app('breaker'), appId: 'a1' }, deviceId: 'b1' });
  });

  it('no key or a wrong key: 401; bad kinds: 400 naming kinds; nothing stored', async () => {
    const t = await setup();
    expect((await t.connect('c1', undefined)).statusCode).toBe(401);
    expect((await t.connect('c2', 'dp_app_wrong')).statusCode).toBe(401);
    const bad = await t.connect('c3', ADMIN_KEY, { kinds: 'reading,gossip' });
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body!).error.field).toBe('kinds');
    expect(t.stored.size).toBe(0);
  });

  it('Authorization: Bearer works for non-browser clients (no subprotocol answered)', async () => {
    const t = await setup();
    const r = await t.fn.handler({
      requestContext: { routeKey: '$connect', connectionId: 'c1' },
      headers: { Authorization: `Bearer ${APP_KEY}` },
    });
    expect(r).toEqual({ statusCode: 200 });
  });

  it('subscribe re-authorizes with the stored principal; ping; unknown action; $disconnect forgets', async () => {
    const t = await setup();
    await t.connect('c1', APP_KEY);
    const ok = await t.message('c1', { action: 'subscribe', device: 'b1', kinds: ['reading'] });
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body!)).toEqual({ type: 'subscribed', device: 'b1', kinds: ['reading'] });
    expect(t.stored.get('c1')?.sub).toEqual({
      viewer: { ...app('breaker'), appId: 'a1' },
      deviceId: 'b1',
      kinds: ['reading'],
    });
    const denied = await t.message('c1', { action: 'subscribe', device: 'e1' });
    expect(denied.statusCode).toBe(403);
    expect(t.stored.get('c1')?.sub.deviceId).toBe('b1'); // unchanged
    expect(JSON.parse((await t.message('c1', { action: 'ping' }, '$default')).body!)).toEqual({
      type: 'pong',
    });
    const unknown = await t.message('c1', { action: 'dance' }, '$default');
    expect(unknown.statusCode).toBe(400);
    expect(JSON.parse(unknown.body!).error.field).toBe('action');
    expect(
      (await t.fn.handler({ requestContext: { routeKey: '$disconnect', connectionId: 'c1' } })).statusCode,
    ).toBe(200);
    expect(t.stored.has('c1')).toBe(false);
    expect((await t.message('c1', { action: 'subscribe' })).statusCode).toBe(401);
  });
});

describe('DynamoLiveConnections (dynalite)', () => {
  let dynamo: LocalDynamo;
  const table = 'live-connections-test';
  beforeAll(async () => {
    dynamo = await startDynalite();
    await dynamo.client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
      }),
    );
  });
  afterAll(async () => dynamo?.stop());

  it('put, get, list (expired items skipped), remove', async () => {
    const store = new DynamoLiveConnections({ client: dynamo.doc, tableName: table });
    const t0 = 1_700_000_000_000;
    await store.put({
      id: 'c1',
      principal: { kind: 'app', appId: 'a1', name: 'Grid app', deviceTypes: ['breaker'] },
      sub: { viewer: app('breaker'), deviceId: 'b1', kinds: ['reading'] },
      connectedAt: t0,
    });
    await store.put({
      id: 'c2',
      principal: { kind: 'admin' },
      sub: { viewer: { kind: 'admin' } },
      connectedAt: t0,
    });
    expect(await store.get('c1')).toEqual({
      id: 'c1',
      principal: { kind: 'app', appId: 'a1', name: 'Grid app', deviceTypes: ['breaker'] },
      sub: { viewer: { ...app('breaker'), appId: 'a1' }, deviceId: 'b1', kinds: ['reading'] },
      connectedAt: t0,
    });
    expect((await store.list(t0 + 1000)).map((c) => c.id).sort()).toEqual(['c1', 'c2']);
    expect(await store.list(t0 + LIVE_CONNECTION_TTL_S * 1000)).toEqual([]);
    await store.remove('c1');
    expect(await store.get('c1')).toBeUndefined();
    expect((await store.list(t0)).map((c) => c.id)).toEqual(['c2']);
  });
});

describe('managementEndpoint', () => {
  it('is LIVE_ENDPOINT, or the SDK override’s origin with LIVE_ENDPOINT’s stage path', () => {
    const live = 'https://abc123.execute-api.eu-west-1.amazonaws.com/v1';
    expect(managementEndpoint(live, {})).toBe(live);
    expect(
      managementEndpoint(live, { AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI: 'http://127.0.0.1:4566/' }),
    ).toBe('http://127.0.0.1:4566/v1');
  });
});
