/**
 * The rules' stores on DynamoDB (dynalite, the pipeline's own table definitions), held to the same
 * contract as the in-memory stores, and the RuleEngine driven over them.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchExecuteStatementCommand,
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoAlertStore,
  DynamoRuleStateStore,
  DynamoRuleStore,
  RULE_STATE_SHARDS,
  ruleStateKey,
} from '../../functions/adapters/dynamo-rules.js';
import {
  ConflictError,
  NotFoundError,
  TransientError,
  ValidationError,
} from '../../functions/core/errors.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import {
  type AlertStore,
  type AlertTransition,
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  RuleEngine,
  type RuleState,
  type RuleStateStore,
  type RuleStore,
  transitionId,
  validateRule,
} from '../../functions/core/rules/index.js';
import { readPartiqlWrite } from '../../scripts/verify-deploy/partiql-writes.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const unmarshallAll = (wire: Record<string, unknown>) => unmarshall(wire as never);

const T0 = 1_700_000_000_000;
let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo.stop();
});

let n = 0;
const fresh = () => `c${++n}`;

interface Stores {
  rules: RuleStore;
  state: RuleStateStore;
  alerts: AlertStore;
}

const implementations: Array<[string, () => Stores]> = [
  [
    'in-memory',
    () => ({
      rules: new InMemoryRuleStore(),
      state: new InMemoryRuleStateStore(),
      alerts: new InMemoryAlertStore(),
    }),
  ],
  [
    'DynamoDB (dynalite)',
    () => {
      const registry = { client: dynamo.doc, tableName: dynamo.tables.registry!, clock: () => T0 };
      return {
        rules: new DynamoRuleStore(registry),
        state: new DynamoRuleStateStore({
          client: dynamo.doc,
          tableName: dynamo.tables.state!,
          clock: () => T0,
        }),
        alerts: new DynamoAlertStore(registry),
      };
    },
  ],
];

const rule = (id: string, doc: Record<string, unknown> = {}) =>
  validateRule({ name: id, severity: 'major', condition: 'value > 80', ...doc }, { id, now: T0 });

function opening(alertId: string, at: number, over: Partial<AlertTransition> = {}): AlertTransition {
  return {
    id: alertId,
    alertId,
    kind: 'open',
    ruleId: 'r1',
    ruleRevision: 1,
    ruleName: 'r1',
    severity: 'major',
    series: 'dev-1|m',
    deviceId: 'dev-1',
    metric: 'm',
    deviceType: 'breaker',
    at,
    value: 90,
    reason: 'value > 80 (value 90)',
    actions: [{ type: 'webhook', url: 'https://example.com/h' }],
    ...over,
  };
}

function state(ruleId: string, series: string, over: Partial<RuleState> = {}): RuleState {
  return {
    ruleId,
    series,
    version: 0,
    revision: 1,
    deviceId: 'dev-1',
    active: false,
    updatedAt: T0,
    ...over,
  };
}

const reading = (value: number, t: number, deviceId = 'breaker-1'): EnrichedReading => ({
  protocol: 'sparkplug',
  deviceId,
  metric: 'L1/current',
  type: 'Double',
  value,
  time: t,
  historical: false,
  transient: false,
  quality: 'GOOD',
  enrichment: { deviceType: 'breaker', applications: [] },
});

describe.each(implementations)('rule stores contract: %s', (_name, make) => {
  it('rules: create, conflict on duplicate, update guarded by revision, list by device type, delete', async () => {
    const { rules } = make();
    const p = fresh();
    const a = rule(`${p}-a`, { select: { deviceType: 'breaker' } });
    const b = rule(`${p}-b`, { select: { deviceType: 'pump' } });
    const c = rule(`${p}-c`);
    for (const r of [a, b, c]) await rules.put(r, 'create');
    await expect(rules.put(a, 'create')).rejects.toBeInstanceOf(ConflictError);
    expect(await rules.get(a.id)).toEqual(a);
    const a2 = validateRule(
      { name: 'renamed', severity: 'minor', condition: 'value > 90', select: { deviceType: 'breaker' } },
      { id: a.id, now: T0 + 1, previous: a },
    );
    await rules.put(a2, 'update');
    await expect(rules.put(a2, 'update')).rejects.toBeInstanceOf(ConflictError); // stale revision
    await expect(rules.put(rule(`${p}-missing`), 'update')).rejects.toBeInstanceOf(NotFoundError);
    const ids = (rs: Array<{ id: string }>) => rs.map((r) => r.id).filter((id) => id.startsWith(p));
    expect(ids(await rules.list({ deviceType: 'breaker' }))).toEqual([a.id, c.id]);
    expect(ids(await rules.list())).toEqual([a.id, b.id, c.id]);
    expect((await rules.get(a.id))?.revision).toBe(2);
    expect(await rules.delete(b.id)).toBe(true);
    expect(await rules.delete(b.id)).toBe(false);
    expect(ids(await rules.list())).toEqual([a.id, c.id]);
  });

  it('rule state: conditional on the version, bulk read, listDue', async () => {
    const { state: store } = make();
    const r = fresh();
    const series = Array.from({ length: 130 }, (_, i) => `dev-${i}|m`); // > one BatchGetItem
    for (const [i, s] of series.entries()) {
      await store.put(state(r, s, i % 2 === 0 ? { dueAt: T0 + i } : { wt: [1, 2], wv: [3, 4] }), undefined);
    }
    await expect(store.put(state(r, series[0]!), undefined)).rejects.toBeInstanceOf(ConflictError);
    const got = await store.getMany([...series, 'absent|m'].map((s) => ({ ruleId: r, series: s })));
    expect(got).toHaveLength(130);
    const one = got.find((s) => s.series === 'dev-1|m')!;
    expect(one).toMatchObject({ version: 1, wt: [1, 2], wv: [3, 4] });
    await store.put({ ...one, active: true }, 1);
    await expect(store.put({ ...one, active: false }, 1)).rejects.toBeInstanceOf(ConflictError);
    const [again] = await store.getMany([{ ruleId: r, series: 'dev-1|m' }]);
    expect(again).toMatchObject({ version: 2, active: true });
    // Claims: one item per device, the last claim wins; never claimed = missing (130 > one BatchGetItem).
    const devices = Array.from({ length: 130 }, (_, i) => `dev-${i}`);
    await store.claim!(devices, 'engine-a');
    await store.claim!(['dev-1', 'dev-1'], 'engine-b');
    const claims = await store.getClaims!([...devices, 'absent']);
    expect(claims.size).toBe(130);
    expect(claims.get('dev-0')).toBe('engine-a');
    expect(claims.get('dev-1')).toBe('engine-b');
    expect(claims.has('absent')).toBe(false);
    // Claims are not states: listDue and getMany do not see them.
    const due = await store.listDue(r, T0 + 10);
    expect(due.map((s) => s.series).sort()).toEqual([
      'dev-0|m',
      'dev-10|m',
      'dev-2|m',
      'dev-4|m',
      'dev-6|m',
      'dev-8|m',
    ]);
  });

  it('rule state putAll: each write conditional on its version, a conflict reported for its write, what is reported written stored', async () => {
    const { state: store } = make();
    const r = fresh();
    const series = Array.from({ length: 30 }, (_, i) => `dev-${i}|m`);
    const created = await store.putAll(
      series.map((s, i) => ({ state: state(r, s, { lastTime: i }), expected: undefined })),
    );
    expect(created).toEqual(series.map(() => undefined));
    const read = async () =>
      new Map((await store.getMany(series.map((s) => ({ ruleId: r, series: s })))).map((s) => [s.series, s]));
    const before = await read();
    expect(series.map((s) => [before.get(s)?.version, before.get(s)?.lastTime])).toEqual(
      series.map((_, i) => [1, i]),
    );
    // dev-3 is expected at a version it is not at: its write is a conflict; nothing reported written is lost.
    const writes = series.map((s, i) => ({
      state: state(r, s, { lastTime: 100 + i }),
      expected: i === 3 ? 7 : 1,
    }));
    const results = await store.putAll(writes);
    expect(results[3]).toBeInstanceOf(ConflictError);
    const after = await read();
    for (const [i, s] of series.entries()) {
      const stored = after.get(s)!;
      if (results[i] === undefined) expect([stored.version, stored.lastTime]).toEqual([2, 100 + i]);
      else expect([stored.version, stored.lastTime]).toEqual([1, i]);
    }
    expect(await store.putAll([])).toEqual([]);
  });

  it('alerts: idempotent record, resolve, outbox, history, ack with who/when, manual resolve', async () => {
    const { alerts } = make();
    const id = fresh();
    const open = opening(id, T0);
    expect(await alerts.record(open, T0)).toEqual({ dispatched: false });
    expect(await alerts.record(open, T0 + 5)).toEqual({ dispatched: false }); // replay, not yet delivered
    const outbox = await alerts.listUndispatched(T0 + 1_000_000);
    expect(outbox.map((r) => r.transition.id)).toContain(open.id);
    await alerts.markDispatched([{ alertId: id, id: open.id }], T0 + 1);
    expect(await alerts.record(open, T0 + 6)).toEqual({ dispatched: true }); // replay after delivery
    expect((await alerts.listUndispatched(T0 + 1_000_000)).map((r) => r.transition.id)).not.toContain(
      open.id,
    );
    await expect(alerts.markDispatched([{ alertId: id, id: 'nope' }], T0)).rejects.toBeInstanceOf(
      NotFoundError,
    );

    const acked = await alerts.acknowledge(id, 'alice', T0 + 10, 'on it');
    expect(acked).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: 'alice',
      acknowledgedAt: T0 + 10,
      note: 'on it',
    });
    await expect(alerts.acknowledge(id, 'bob', T0 + 11)).rejects.toBeInstanceOf(ConflictError);
    await expect(alerts.acknowledge(`${id}-x`, 'bob', T0 + 11)).rejects.toBeInstanceOf(NotFoundError);

    const resolve: AlertTransition = {
      ...open,
      kind: 'resolve',
      id: transitionId(id, 'r'),
      at: T0 + 20,
      resolvedBy: 'rule',
    };
    expect(await alerts.record(resolve, T0 + 20)).toEqual({ dispatched: false });
    expect(await alerts.get(id)).toMatchObject({
      status: 'resolved',
      resolvedBy: 'rule',
      resolvedAt: T0 + 20,
      acknowledgedBy: 'alice',
      openedAt: T0,
      value: 90,
    });
    expect((await alerts.history(id)).map((r) => r.transition.kind)).toEqual(['open', 'resolve']);
    await expect(alerts.resolve(id, 'bob', T0 + 30)).rejects.toBeInstanceOf(ConflictError);

    // Manual resolution, then the rule's own resolve: the alert keeps the user's.
    const id2 = fresh();
    await alerts.record(opening(id2, T0 + 40), T0 + 40);
    expect(await alerts.resolve(id2, 'carol', T0 + 41)).toMatchObject({
      status: 'resolved',
      resolvedBy: 'carol',
    });
    await alerts.record({ ...opening(id2, T0 + 40), kind: 'resolve', id: `${id2}-r`, at: T0 + 50 }, T0 + 50);
    expect(await alerts.get(id2)).toMatchObject({ resolvedBy: 'carol', resolvedAt: T0 + 41 });
    // Resolving an alert that is gone (TTL) does not fail the batch; the transition is kept.
    const ghost: AlertTransition = { ...opening(`${id}-ghost`, T0), kind: 'resolve', id: `${id}-ghost-r` };
    expect(await alerts.record(ghost, T0)).toEqual({ dispatched: false });
    expect(await alerts.get(`${id}-ghost`)).toBeUndefined();
    expect((await alerts.history(`${id}-ghost`)).map((r) => r.transition.id)).toEqual([ghost.id]);
  });

  it('alerts: newest first, filters, pagination with opaque tokens', async () => {
    const { alerts } = make();
    const device = fresh();
    for (let i = 0; i < 7; i++) {
      await alerts.record(
        opening(`${device}-${i}`, T0 + 1000 * i, { deviceId: device, severity: i % 2 ? 'minor' : 'major' }),
        T0,
      );
    }
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await alerts.list({ deviceId: device, limit: 3, ...(token ? { nextToken: token } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((a) => a.id));
      token = page.nextToken;
    } while (token);
    expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0].map((i) => `${device}-${i}`));
    const minor = await alerts.list({ deviceId: device, severity: 'minor' });
    expect(minor.items.map((a) => a.id)).toEqual([5, 3, 1].map((i) => `${device}-${i}`));
    const window = await alerts.list({ deviceId: device, since: T0 + 2000, until: T0 + 4000 });
    expect(window.items.map((a) => a.id)).toEqual([4, 3, 2].map((i) => `${device}-${i}`));
    await alerts.acknowledge(`${device}-6`, 'dave', T0);
    const acked = await alerts.list({ deviceId: device, status: 'acknowledged' });
    expect(acked.items.map((a) => a.id)).toEqual([`${device}-6`]);
    await expect(alerts.list({ nextToken: 'garbage' })).rejects.toBeInstanceOf(ValidationError);
    await expect(alerts.list({ limit: 0 })).rejects.toBeInstanceOf(ValidationError);
  });

  it('alerts: deviceIds (the fleet filter resolved to ids) keeps alerts of those devices, across pages', async () => {
    const { alerts } = make();
    const devices = [fresh(), fresh(), fresh()];
    for (let i = 0; i < 9; i++) {
      const deviceId = devices[i % 3]!;
      await alerts.record(opening(`${deviceId}-${i}`, T0 + 100_000 + i, { deviceId, ruleId: 'fleet' }), T0);
    }
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await alerts.list({
        ruleId: 'fleet',
        deviceIds: [devices[0]!, devices[2]!, 'no-such-device'],
        limit: 2,
        ...(token ? { nextToken: token } : {}),
      });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((a) => a.id));
      token = page.nextToken;
    } while (token);
    const want = [8, 6, 5, 3, 2, 0].map((i) => `${devices[i % 3]}-${i}`);
    expect(seen).toEqual(want);
    expect((await alerts.list({ ruleId: 'fleet', deviceIds: [] })).items).toEqual([]);
  });
});

describe('RuleEngine over DynamoDB', () => {
  it('fires, resolves with hysteresis, survives a cold start, and a redelivered batch fires nothing twice', async () => {
    const registry = { client: dynamo.doc, tableName: dynamo.tables.registry!, clock: () => T0 };
    const rules = new DynamoRuleStore(registry);
    const ruleId = fresh();
    await rules.put(
      rule(ruleId, { condition: 'value > 80 for 20s clear < 75', select: { metric: 'L1/current' } }),
      'create',
    );
    const make = () =>
      new RuleEngine({
        rules: {
          list: async () => (await rules.list()).filter((r) => r.id === ruleId),
        },
        state: new DynamoRuleStateStore({
          client: dynamo.doc,
          tableName: dynamo.tables.state!,
          clock: () => T0,
        }),
        alerts: new DynamoAlertStore(registry),
        clock: () => T0,
      });
    const run = async (engine: RuleEngine, values: number[], start: number) => {
      engine.begin();
      await engine.evaluate({ readings: values.map((v, i) => reading(v, T0 + (start + i) * 10_000)) });
      return engine.commit();
    };
    const first = await run(make(), [85, 85, 85], 0); // holds 20 s: opens at 20 s
    expect(first.map((t) => t.kind)).toEqual(['open']);
    const redelivered = await run(make(), [85, 85, 85], 0); // a new instance (cold start), same batch
    expect(redelivered).toEqual([]);
    const second = await run(make(), [78, 74], 3);
    expect(second.map((t) => t.kind)).toEqual(['resolve']);
    const alert = await new DynamoAlertStore(registry).get(first[0]!.alertId);
    expect(alert).toMatchObject({
      status: 'resolved',
      ruleId,
      openedAt: T0 + 20_000,
      resolvedAt: T0 + 40_000,
    });
  });

  it('absence through listDue over the 16 shards', async () => {
    const registry = { client: dynamo.doc, tableName: dynamo.tables.registry!, clock: () => T0 };
    const rules = new InMemoryRuleStore();
    const ruleId = fresh();
    await rules.put(rule(ruleId, { condition: 'absent for 1m' }), 'create');
    const store = new DynamoRuleStateStore({
      client: dynamo.doc,
      tableName: dynamo.tables.state!,
      clock: () => T0,
    });
    const engine = new RuleEngine({
      rules,
      state: store,
      alerts: new DynamoAlertStore(registry),
      clock: () => T0,
    });
    const devices = Array.from({ length: 40 }, (_, i) => `d${i}`);
    const shards = new Set(devices.map((d) => ruleStateKey(ruleId, d).pk));
    expect(shards.size).toBeGreaterThan(8);
    expect(shards.size).toBeLessThanOrEqual(RULE_STATE_SHARDS);
    engine.begin();
    await engine.evaluate({ readings: devices.map((d, i) => reading(1, T0 + (i < 20 ? 0 : 60_000), d)) });
    await engine.commit();
    engine.begin();
    const opened = await engine.evaluateClock(T0 + 90_000);
    expect(opened.map((t) => t.deviceId).sort()).toEqual(devices.slice(0, 20).sort());
    await engine.commit();
    engine.begin();
    expect(await engine.evaluateClock(T0 + 100_000)).toEqual([]);
  });
});

describe('rule adapters: request shapes and error mapping (aws-sdk-client-mock)', () => {
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
  );
  const mock = mockClient(doc);
  const throttled = () =>
    Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException', $metadata: {} });

  it('state puts are conditional on the version read; throttling is a TransientError', async () => {
    mock.reset();
    mock.on(PutCommand).resolves({});
    const store = new DynamoRuleStateStore({ client: doc, tableName: 'state', clock: () => T0 });
    await store.put(state('r', 'dev|m', { dueAt: T0 + 5 }), undefined);
    await store.put(state('r', 'dev|m'), 4);
    const [first, second] = mock.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({
      TableName: 'state',
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { ...ruleStateKey('r', 'dev|m'), version: 1, dueAt: T0 + 5, expiresAt: T0 / 1000 + 30 * 86_400 },
    });
    expect(second).toMatchObject({
      ConditionExpression: 'version = :v',
      ExpressionAttributeValues: { ':v': 4 },
    });
    expect(second!.Item).not.toHaveProperty('dueAt');
    mock.on(PutCommand).rejects(throttled());
    await expect(store.put(state('r', 'dev|m'), 5)).rejects.toBeInstanceOf(TransientError);
  });

  it('putAll: one BatchExecuteStatement per 25 states, INSERT for a new state and UPDATE conditional on the version, each read back as the PutItem it stands for', async () => {
    mock.reset();
    mock.on(BatchExecuteStatementCommand).callsFake((input: { Statements: unknown[] }) => ({
      Responses: input.Statements.map(() => ({})),
    }));
    const store = new DynamoRuleStateStore({ client: doc, tableName: 'state', clock: () => T0 });
    const writes = Array.from({ length: 60 }, (_, i) => ({
      state: state('r', `d${i}|m`, i < 2 ? { dueAt: T0 + 5 } : { wt: [T0, T0 + 1], wv: [1, 2] }),
      expected: i % 2 === 0 ? undefined : i,
    }));
    expect(await store.putAll(writes)).toEqual(writes.map(() => undefined));
    const calls = mock.commandCalls(BatchExecuteStatementCommand).map((c) => c.args[0].input.Statements!);
    expect(calls.map((c) => c.length)).toEqual([25, 25, 10]);
    const [insert, update, later] = calls.flat();
    expect(insert!.Statement).toBe(
      `INSERT INTO "state" VALUE {'pk': ?, 'sk': ?, 'version': ?, 'data': ?, 'expiresAt': ?, 'dueAt': ?}`,
    );
    expect(update!.Statement).toBe(
      'UPDATE "state" SET "version" = ? SET "data" = ? SET "expiresAt" = ? SET "dueAt" = ? WHERE "pk" = ? AND "sk" = ? AND "version" = ?',
    );
    expect(calls.flat()[3]!.Statement).toContain('REMOVE "dueAt" WHERE');
    // What each statement means is the item and condition a PutItem of the state would send.
    mock.on(PutCommand).resolves({});
    for (const [i, w] of writes.slice(0, 4).entries()) {
      await store.put(w.state, w.expected);
      const put = mock.commandCalls(PutCommand)[i]!.args[0].input;
      const statement = calls.flat()[i]!;
      const wire = statement.Parameters!.map(
        (p) => marshall({ p }, { removeUndefinedValues: true, convertClassInstanceToMap: true }).p,
      );
      const read = readPartiqlWrite(statement.Statement!, wire as never);
      const item = unmarshallAll(read.kind === 'insert' ? read.item : { ...read.set, ...read.where });
      expect(item).toEqual({ ...put.Item, ...(read.kind === 'update' ? { version: w.expected } : {}) });
      if (read.kind === 'update') {
        expect(unmarshallAll(read.set).version).toBe(w.expected! + 1);
        expect(read.remove).toEqual(w.state.dueAt === undefined ? ['dueAt'] : []);
      }
    }
    expect(later!.Parameters![2]).toBe(1); // INSERT: version 1
  });

  it('putAll: a failed condition or an existing state is a conflict of that write only; throttled statements are retried, then transient; an endpoint without PartiQL gets PutItems from then on', async () => {
    mock.reset();
    const store = new DynamoRuleStateStore({
      client: doc,
      tableName: 'state',
      sleep: async () => {},
      maxBatchAttempts: 3,
    });
    const writes = ['a', 'b', 'c', 'd'].map((d, i) => ({
      state: state('r', `${d}|m`),
      expected: i === 0 ? undefined : 1,
    }));
    mock
      .on(BatchExecuteStatementCommand)
      .resolvesOnce({
        Responses: [
          { Error: { Code: 'DuplicateItem' } },
          { Error: { Code: 'ConditionalCheckFailed' } },
          { Error: { Code: 'ThrottlingError' } },
          {},
        ],
      })
      .resolvesOnce({ Responses: [{}] });
    const results = await store.putAll(writes);
    expect(results.map((e) => (e === undefined ? 'written' : (e as Error).constructor.name))).toEqual([
      'ConflictError',
      'ConflictError',
      'written',
      'written',
    ]);
    const calls = mock.commandCalls(BatchExecuteStatementCommand).map((c) => c.args[0].input.Statements!);
    expect(calls.map((c) => c.length)).toEqual([4, 1]); // only the throttled one again
    mock.reset();
    mock.on(BatchExecuteStatementCommand).resolves({ Responses: [{ Error: { Code: 'ThrottlingError' } }] });
    const [stubborn] = await store.putAll([writes[1]!]);
    expect(stubborn).toBeInstanceOf(TransientError);
    expect(mock.commandCalls(BatchExecuteStatementCommand)).toHaveLength(3);

    mock.reset();
    mock.on(BatchExecuteStatementCommand).rejects(
      Object.assign(new Error('unknown operation'), {
        name: 'UnknownOperationException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const conditionFailed = Object.assign(new Error('The conditional request failed'), {
      name: 'ConditionalCheckFailedException',
      $metadata: { httpStatusCode: 400 },
    });
    mock
      .on(PutCommand)
      .resolves({})
      .on(PutCommand, { Item: { sk: 'b|m' } })
      .rejects(conditionFailed);
    const local = new DynamoRuleStateStore({ client: doc, tableName: 'state', clock: () => T0 });
    const first = await local.putAll(writes);
    expect(first.map((e) => (e === undefined ? 'written' : (e as Error).constructor.name))).toEqual([
      'written',
      'ConflictError',
      'written',
      'written',
    ]);
    await local.putAll(writes);
    expect(mock.commandCalls(BatchExecuteStatementCommand)).toHaveLength(1);
    expect(mock.commandCalls(PutCommand)).toHaveLength(8);
    // Switched off: never tried.
    mock.resetHistory();
    await new DynamoRuleStateStore({ client: doc, tableName: 'state', partiql: false }).putAll(writes);
    expect(mock.commandCalls(BatchExecuteStatementCommand)).toHaveLength(0);
    expect(mock.commandCalls(PutCommand)).toHaveLength(4);
  });

  it('putAll never throws for a failed request: what landed before it (another chunk, an earlier attempt) stays reported written', async () => {
    mock.reset();
    const sent: number[] = [];
    mock.on(BatchExecuteStatementCommand).callsFake(async (input: { Statements: unknown[] }) => {
      sent.push(input.Statements.length);
      if (sent.length === 1) return { Responses: [{}, { Error: { Code: 'ThrottlingError' } }] };
      throw throttled();
    });
    const store = new DynamoRuleStateStore({ client: doc, tableName: 'state', sleep: async () => {} });
    const writes = ['a|m', 'b|m'].map((series) => ({ state: state('r', series), expected: 1 }));
    const results = await store.putAll(writes);
    expect(results.map((e) => (e === undefined ? 'written' : (e as Error).constructor.name))).toEqual([
      'written',
      'TransientError',
    ]);
    expect(sent).toEqual([2, 1]);
  });

  it('a commit whose second batch of states failed as a request is retried by writing only the rest (the engine over the PartiQL store)', async () => {
    mock.reset();
    // A table of versions applying INSERT / UPDATE ... WHERE version = ? as DynamoDB would; the first
    // request of 5 statements (the second chunk of 30 states) fails whole.
    const versions = new Map<string, number>();
    let failed = false;
    type Statement = { Statement: string; Parameters: unknown[] };
    mock.on(BatchExecuteStatementCommand).callsFake(async (input: { Statements: Statement[] }) => {
      if (input.Statements.length === 5 && !failed) {
        failed = true;
        throw throttled();
      }
      return {
        Responses: input.Statements.map(({ Statement: st, Parameters: p }) => {
          const [key, expected] = st.startsWith('INSERT')
            ? [`${p[0]}|${p[1]}`, undefined]
            : [`${p.at(-3)}|${p.at(-2)}`, p.at(-1) as number];
          if (versions.get(key) !== expected)
            return { Error: { Code: st.startsWith('INSERT') ? 'DuplicateItem' : 'ConditionalCheckFailed' } };
          versions.set(key, (expected ?? 0) + 1);
          return {};
        }),
      };
    });
    mock.on(BatchGetCommand).resolves({ Responses: { state: [] } }); // no claims, no states yet
    mock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} }); // claims
    const rules = new InMemoryRuleStore();
    await rules.put(rule('hot'), 'create');
    const engine = new RuleEngine({
      rules,
      state: new DynamoRuleStateStore({ client: doc, tableName: 'state', sleep: async () => {} }),
      alerts: new InMemoryAlertStore(),
      clock: () => T0,
    });
    engine.begin();
    await engine.evaluate({ readings: Array.from({ length: 30 }, (_, i) => reading(90, T0, `dev-${i}`)) });
    await expect(engine.commit()).rejects.toBeInstanceOf(TransientError);
    expect(versions.size).toBe(25);
    await engine.commit(); // as the ingest path retries a transient commit
    expect(versions.size).toBe(30);
    expect([...versions.values()].every((v) => v === 1)).toBe(true);
  });

  it('bulk state reads are consistent and retry unprocessed keys, then give up with a TransientError', async () => {
    mock.reset();
    const key = ruleStateKey('r', 'a|m');
    mock
      .on(BatchGetCommand)
      .resolvesOnce({ Responses: { state: [] }, UnprocessedKeys: { state: { Keys: [key] } } })
      .resolvesOnce({ Responses: { state: [{ ...key, version: 2, data: state('r', 'a|m') }] } });
    const store = new DynamoRuleStateStore({ client: doc, tableName: 'state', sleep: async () => {} });
    const got = await store.getMany([{ ruleId: 'r', series: 'a|m' }]);
    expect(got).toEqual([{ ...state('r', 'a|m'), version: 2 }]);
    expect(mock.commandCalls(BatchGetCommand)[0]!.args[0].input.RequestItems!.state!.ConsistentRead).toBe(
      true,
    );
    mock.reset();
    mock
      .on(BatchGetCommand)
      .resolves({ Responses: { state: [] }, UnprocessedKeys: { state: { Keys: [key] } } });
    const stubborn = new DynamoRuleStateStore({
      client: doc,
      tableName: 'state',
      sleep: async () => {},
      maxBatchAttempts: 3,
    });
    await expect(stubborn.getMany([{ ruleId: 'r', series: 'a|m' }])).rejects.toBeInstanceOf(TransientError);
    expect(mock.commandCalls(BatchGetCommand)).toHaveLength(3);
  });

  it('state windows are stored as one binary attribute; list-form items are still read; a damaged window is reported and dropped', async () => {
    mock.reset();
    mock.on(PutCommand).resolves({});
    const store = new DynamoRuleStateStore({ client: doc, tableName: 'state', clock: () => T0 });
    const wt = Array.from({ length: 300 }, (_, i) => T0 + i * 1000);
    const wv = wt.map((_, i) => i / 7);
    await store.put(state('r', 'a|m', { wt, wv }), 1);
    const item = mock.commandCalls(PutCommand)[0]!.args[0].input.Item!;
    const data = item.data as Record<string, unknown>;
    expect(data.w).toBeInstanceOf(Uint8Array);
    expect(data).not.toHaveProperty('wt');
    expect(data).not.toHaveProperty('wv');
    expect((data.w as Uint8Array).length).toBeLessThan(3_100);

    const damaged: Array<[unknown, unknown]> = [];
    const reader = new DynamoRuleStateStore({
      client: doc,
      tableName: 'state',
      onDamagedWindow: (key, error) => damaged.push([key, error]),
    });
    const key = (series: string) => ruleStateKey('r', series);
    mock.on(BatchGetCommand).resolves({
      Responses: {
        state: [
          { ...key('a|m'), version: 2, data: { ...data, version: 2 } },
          { ...key('old|m'), version: 5, data: state('r', 'old|m', { wt: [1, 2], wv: [3, 4] }) },
          { ...key('bad|m'), version: 1, data: { ...state('r', 'bad|m'), w: Uint8Array.from([1, 9, 0]) } },
        ],
      },
    });
    const got = await reader.getMany(['a|m', 'old|m', 'bad|m'].map((series) => ({ ruleId: 'r', series })));
    const by = new Map(got.map((s) => [s.series, s]));
    expect(by.get('a|m')).toMatchObject({ version: 2, wt, wv });
    expect(by.get('a|m')).not.toHaveProperty('w');
    expect(by.get('old|m')).toMatchObject({ version: 5, wt: [1, 2], wv: [3, 4] });
    expect(by.get('bad|m')).toEqual(state('r', 'bad|m', { version: 1 }));
    expect(damaged).toHaveLength(1);
    expect(damaged[0]![0]).toMatchObject({ ruleId: 'r', series: 'bad|m' });
    expect(damaged[0]![1]).toMatchObject({ code: 'RULE_STATE_WINDOW' });
  });

  it('listDue queries each of the 16 shards of the rule with a dueAt filter', async () => {
    mock.reset();
    mock.on(QueryCommand).resolves({ Items: [] });
    await new DynamoRuleStateStore({ client: doc, tableName: 'state' }).listDue('r', T0);
    const calls = mock.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.ExpressionAttributeValues![':pk'])).toEqual(
      Array.from({ length: RULE_STATE_SHARDS }, (_, i) => `RS#r#${i}`),
    );
    expect(calls[0]).toMatchObject({ FilterExpression: 'dueAt <= :now', ConsistentRead: true });
  });

  it('alert writes one by one (no transactions): the open is conditional; a new transition goes to the outbox index in a batch, a repeated one conditionally', async () => {
    mock.reset();
    mock.on(PutCommand).resolves({});
    mock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });
    const store = new DynamoAlertStore({ client: doc, tableName: 'registry', transactions: false });
    await store.record(opening('a1', T0), T0 + 7);
    const [alert] = mock.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(alert).toMatchObject({
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { pk: 'ALERT#a1', sk: 'META', gsi1pk: 'ALERTS', status: 'open', ruleId: 'r1', deviceId: 'dev-1' },
    });
    const [batch] = mock.commandCalls(BatchWriteCommand).map((c) => c.args[0].input);
    expect(batch!.RequestItems!.registry).toEqual([
      {
        PutRequest: {
          Item: expect.objectContaining({
            pk: 'ALERT#a1',
            sk: 'TR#a1',
            gsi1pk: 'ALERTOUTBOX',
            recordedAt: T0 + 7,
          }),
        },
      },
    ]);
    // The alert exists already (a redelivery): the transition is recorded only if it is not there yet.
    mock.reset();
    mock.on(PutCommand).callsFake((input: { Item: { sk: string } }) => {
      if (input.Item.sk === 'META')
        throw Object.assign(new Error('exists'), { name: 'ConditionalCheckFailedException' });
      return {};
    });
    expect(await store.record(opening('a1', T0), T0 + 9)).toEqual({ dispatched: false });
    const puts = mock.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(puts[1]).toMatchObject({ ConditionExpression: 'attribute_not_exists(pk)', Item: { sk: 'TR#a1' } });
    expect(mock.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });
});

describe('DynamoAlertStore.recordAll in transactions (aws-sdk-client-mock)', () => {
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
  );
  const mock = mockClient(doc);
  const resolving = (alertId: string, at: number): AlertTransition => ({
    ...opening(alertId, at),
    id: `${alertId}-r`,
    kind: 'resolve',
  });

  it('each alert write with its record in one transaction, an alert at most once per transaction (its open one before its resolve)', async () => {
    mock.reset();
    mock.on(TransactWriteCommand).resolves({});
    const store = new DynamoAlertStore({ client: doc, tableName: 'registry' });
    const batch = [opening('a1', T0), resolving('a1', T0 + 5), opening('a2', T0 + 6), opening('a1', T0)];
    expect(await store.recordAll(batch, T0 + 9)).toEqual(batch.map(() => ({ dispatched: false })));
    const calls = mock.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.TransactItems!);
    const shape = (t: (typeof calls)[number][number]) =>
      t.Put
        ? `put ${t.Put.Item!.sk}${t.Put.ConditionExpression ? ' if new' : ''}`
        : `update ${t.Update!.Key!.pk}`;
    expect(calls.map((items) => items.map(shape))).toEqual([
      ['put META if new', 'put TR#a1 if new', 'put META if new', 'put TR#a2 if new'],
      ['update ALERT#a1', 'put TR#a1-r if new'],
    ]);
    expect(calls[1]![0]!.Update).toMatchObject({ ConditionExpression: 'attribute_exists(pk) AND #st <> :r' });
    expect(calls[0]![1]!.Put!.Item).toMatchObject({ gsi1pk: 'ALERTOUTBOX', recordedAt: T0 + 9 });
    // What it recorded it marks dispatched in one BatchWriteItem.
    mock.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });
    await store.markDispatched(batch, T0 + 10);
    expect(mock.commandCalls(BatchWriteCommand)).toHaveLength(1);
    expect(mock.commandCalls(UpdateCommand)).toHaveLength(0);
    // 50 transitions (100 items) per transaction.
    mock.resetHistory();
    await store.recordAll(
      Array.from({ length: 120 }, (_, i) => opening(`b${i}`, T0)),
      T0 + 11,
    );
    expect(mock.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.TransactItems!.length)).toEqual(
      [100, 100, 40],
    );
  });

  it('a cancelled transaction (a redelivery) wrote nothing: its transitions are recorded one by one and say whether they were delivered', async () => {
    mock.reset();
    mock.on(TransactWriteCommand).rejects(
      Object.assign(new Error('cancelled'), {
        name: 'TransactionCanceledException',
        $metadata: { httpStatusCode: 400 },
        CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'ConditionalCheckFailed' }],
      }),
    );
    const exists = () =>
      Object.assign(new Error('exists'), { name: 'ConditionalCheckFailedException', $metadata: {} });
    mock.on(PutCommand).rejects(exists());
    mock.on(GetCommand).resolves({ Item: { pk: 'ALERT#a1', sk: 'TR#a1', dispatchedAt: T0 + 3 } });
    const store = new DynamoAlertStore({ client: doc, tableName: 'registry' });
    expect(await store.recordAll([opening('a1', T0)], T0 + 9)).toEqual([{ dispatched: true }]);
    expect(mock.commandCalls(PutCommand).map((c) => c.args[0].input.Item!.sk)).toEqual(['META', 'TR#a1']);
    // A throttled transaction is not a redelivery: the batch fails and is retried.
    mock.on(TransactWriteCommand).rejects(
      Object.assign(new Error('cancelled'), {
        name: 'TransactionCanceledException',
        $metadata: { httpStatusCode: 400 },
        CancellationReasons: [{ Code: 'ThrottlingError' }, { Code: 'None' }],
      }),
    );
    await expect(store.recordAll([opening('a2', T0)], T0 + 9)).rejects.toBeInstanceOf(TransientError);
  });
});

describe('DynamoAlertStore.markDispatched (dynalite)', () => {
  it('marks what it recorded 25 per BatchWriteItem, the others one update each, and a missing one last', async () => {
    const sent: string[] = [];
    const doc = dynamo.doc;
    const send = doc.send.bind(doc);
    const counting = Object.assign(Object.create(doc), {
      send: (command: { constructor: { name: string } }, ...rest: unknown[]) => {
        sent.push(command.constructor.name);
        return (send as (...a: unknown[]) => unknown)(command, ...rest);
      },
    });
    const registry = { client: counting, tableName: dynamo.tables.registry!, clock: () => T0 };
    const here = new DynamoAlertStore(registry);
    const elsewhere = new DynamoAlertStore({ ...registry, client: dynamo.doc });
    const mine = Array.from({ length: 30 }, () => opening(fresh(), T0));
    const theirs = opening(fresh(), T0);
    for (const t of mine) await here.record(t, T0);
    await elsewhere.record(theirs, T0);
    sent.length = 0;
    const missing = { alertId: fresh(), id: 'never-recorded' };
    await expect(here.markDispatched([...mine, theirs, missing], T0 + 5)).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(sent.filter((c) => c === 'BatchWriteCommand')).toHaveLength(2); // 30 = 25 + 5
    expect(sent.filter((c) => c === 'UpdateCommand')).toHaveLength(2); // theirs, and the missing one
    // Every one marked, out of the outbox, the item otherwise as recorded.
    for (const t of [...mine, theirs]) {
      const [r] = await here.history(t.alertId);
      expect(r).toEqual({ transition: t, recordedAt: T0, dispatchedAt: T0 + 5 });
      expect(await here.record(t, T0 + 6)).toEqual({ dispatched: true });
    }
    const outbox = (await here.listUndispatched(T0 + 1_000_000, 1000)).map((r) => r.transition.id);
    for (const t of [...mine, theirs]) expect(outbox).not.toContain(t.id);
  });
});

describe('DynamoRuleStateStore claims (dynalite): damaged items', () => {
  it('a claim item without a string owner reads as unclaimed; the good claims beside it are kept', async () => {
    const store = new DynamoRuleStateStore({
      client: dynamo.doc,
      tableName: dynamo.tables.state!,
      clock: () => T0,
    });
    const [good, bad, other] = [fresh(), fresh(), fresh()];
    await store.claim([good, other], 'engine-a');
    // Written by hand, as a damaged or foreign item would be: an owner that is not a string.
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.tables.state!,
        Item: { pk: `CLAIM#${bad}`, sk: 'rules', owner: 42 },
      }),
    );
    const claims = await store.getClaims([good, bad, other]);
    expect(claims).toEqual(
      new Map([
        [good, 'engine-a'],
        [other, 'engine-a'],
      ]),
    );
  });
});
