import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoOperationStore } from '../../functions/adapters/dynamo-operations.js';
import { ConflictError } from '../../functions/core/errors.js';
import { emptyCounts, type Operation, type Target } from '../../functions/core/operations/model.js';
import { MemoryOperationStore, type OperationStore } from '../../functions/core/operations/store.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

let db: LocalDynamo;
beforeAll(async () => {
  db = await startDynalite();
}, 30_000);
afterAll(() => db?.stop());

const op = (id: string, createdAt: number, status: Operation['status'] = 'running'): Operation => ({
  id,
  status,
  filter: { type: 'meter' },
  action: { kind: 'firmware-update', packageId: 'p1' },
  settings: { concurrency: 2, ratePerSecond: 1, targetTimeoutMs: 1000, pollMs: 100 },
  total: 30,
  counts: { ...emptyCounts(), pending: 30 },
  retries: 0,
  bucket: { tokens: 1, at: createdAt },
  createdAt,
  updatedAt: createdAt,
  version: 1,
});
const targets = (id: string, n: number): Target[] =>
  Array.from({ length: n }, (_, i) => ({
    operationId: id,
    deviceId: `d${String(i).padStart(3, '0')}`,
    status: 'pending',
    attempts: 0,
    updatedAt: 0,
  }));

describe.each([
  ['memory', () => new MemoryOperationStore()],
  ['dynamodb', () => new DynamoOperationStore({ client: db.doc, tableName: db.tables.registry! })],
])('%s operation store', (_name, make: () => OperationStore) => {
  it('creates, reads, lists newest first and only active ones as active', async () => {
    const s = make();
    const p = `${_name}-`;
    await s.createOperation(op(`${p}a`, 1000), targets(`${p}a`, 30));
    await s.createOperation(op(`${p}b`, 2000, 'completed'), targets(`${p}b`, 2));
    await expect(s.createOperation(op(`${p}a`, 1000), [])).rejects.toBeInstanceOf(ConflictError);
    expect((await s.getOperation(`${p}a`))?.total).toBe(30);
    expect(await s.getOperation('nope')).toBeUndefined();
    const list = (await s.listOperations(50)).filter((o) => o.id.startsWith(p)).map((o) => o.id);
    expect(list).toEqual([`${p}b`, `${p}a`]);
    const active = (await s.listActive()).filter((o) => o.id.startsWith(p)).map((o) => o.id);
    expect(active).toEqual([`${p}a`]);
    const ts = await s.listTargets(`${p}a`);
    expect(ts).toHaveLength(30);
    expect(ts[0]).toMatchObject({ deviceId: 'd000', status: 'pending' });
  });

  it("lists one application's operations, newest first, past pages holding none of them", async () => {
    const s = make();
    const p = `${_name}-apps-`;
    // 150 newer operations of others, then the application's two oldest: its list must page past them.
    await s.createOperation({ ...op(`${p}mine-1`, 10), appId: `${p}app` }, targets(`${p}mine-1`, 1));
    await s.createOperation({ ...op(`${p}mine-2`, 20), appId: `${p}app` }, targets(`${p}mine-2`, 1));
    for (let i = 0; i < 150; i++)
      await s.createOperation(
        { ...op(`${p}other-${i}`, 100 + i), ...(i % 2 ? { appId: `${p}else` } : {}) },
        targets(`${p}other-${i}`, 1),
      );
    const mine = await s.listOperations(10, `${p}app`);
    expect(mine.map((o) => o.id)).toEqual([`${p}mine-2`, `${p}mine-1`]);
    expect(mine[0]!.appId).toBe(`${p}app`);
    expect((await s.listOperations(1, `${p}app`)).map((o) => o.id)).toEqual([`${p}mine-2`]);
    expect(await s.listOperations(10, `${p}nobody`)).toEqual([]);
  });

  it('keeps driving an old operation however many newer ones exist; finishing and retrying move it', async () => {
    const s = make();
    const p = `${_name}-old-`;
    await s.createOperation(op(`${p}0`, 10), targets(`${p}0`, 1));
    for (let i = 1; i <= 105; i++) await s.createOperation(op(`${p}${i}`, 10 + i, 'completed'), []);
    const mine = async () => (await s.listActive()).filter((o) => o.id.startsWith(p)).map((o) => o.id);
    expect(await mine()).toEqual([`${p}0`]);
    const first = (await s.getOperation(`${p}0`))!;
    const done = await s.putOperation({ ...first, status: 'completed' }, first.version);
    expect(await mine()).toEqual([]);
    await s.putOperation({ ...done, status: 'running' }, done.version);
    expect(await mine()).toEqual([`${p}0`]);
  });

  it('replaces an operation only at the expected version; targets are upserted', async () => {
    const s = make();
    const id = `${_name}-v`;
    await s.createOperation(op(id, 3000), targets(id, 3));
    const v2 = await s.putOperation({ ...op(id, 3000), status: 'cancelling' }, 1);
    expect(v2.version).toBe(2);
    await expect(s.putOperation({ ...op(id, 3000), status: 'completed' }, 1)).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect((await s.getOperation(id))?.status).toBe('cancelling');
    await s.putTargets([
      { ...targets(id, 1)[0]!, status: 'failed', reason: { code: 'X', message: 'm', updateResult: 5 } },
    ]);
    const ts = await s.listTargets(id);
    expect(ts.map((t) => t.status)).toEqual(['failed', 'pending', 'pending']);
    expect(ts[0]!.reason?.updateResult).toBe(5);
  });
});
