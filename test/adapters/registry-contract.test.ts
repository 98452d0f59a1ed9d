/** One contract for every RegistryPort adapter: in-memory and DynamoDB (against a real dynalite). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry.js';
import { ConflictError } from '../../functions/core/errors.js';
import type { Application, Device, RegistryPort } from '../../functions/core/registry.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const T0 = 1_700_000_000_000;
const device = (id: string, type: string, extra: Partial<Device> = {}): Device => ({
  id,
  type,
  tags: {},
  status: 'active',
  protocols: ['sparkplug'],
  createdAt: T0,
  updatedAt: T0,
  ...extra,
});
const app = (id: string, types: string[], keyHash: string): Application => ({
  id,
  name: `app ${id}`,
  deviceTypes: types,
  keyHash,
  keyPrefix: 'dp_app_x',
  createdAt: T0,
});

let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo.stop();
});

const adapters: Array<[string, () => RegistryPort]> = [
  ['in-memory', () => new InMemoryRegistry()],
  ['dynamodb', () => new DynamoRegistry({ client: dynamo.doc, tableName: `${dynamo.tables.registry}` })],
];

describe.each(adapters)('RegistryPort contract: %s', (name, make) => {
  // Each adapter gets its own id space (the dynalite table is shared by the suite).
  const p = name === 'dynamodb' ? 'd' : 'm';

  it('stores, batch-reads, updates partially and deletes devices', async () => {
    const r = make();
    await r.putDevice(device(`${p}1`, 'sensor'));
    await r.putDevice(device(`${p}2`, 'breaker', { group: 'site-a' }));
    const many = await r.getDevices([`${p}1`, `${p}2`, `${p}missing`]);
    expect([...many.keys()].sort()).toEqual([`${p}1`, `${p}2`]);
    await r.updateDevice(`${p}1`, { lastSeen: T0 + 5, protocols: ['sparkplug', 'lwm2m'] });
    expect(await r.getDevice(`${p}1`)).toMatchObject({
      lastSeen: T0 + 5,
      protocols: ['sparkplug', 'lwm2m'],
      type: 'sensor',
    });
    expect(await r.deleteDevice(`${p}2`)).toBe(true);
    expect(await r.getDevice(`${p}2`)).toBeUndefined();
    expect(await r.deleteDevice(`${p}2`)).toBe(false);
  });

  it('lists devices by type and protocol with pagination', async () => {
    const r = make();
    for (let i = 0; i < 7; i++)
      await r.putDevice(device(`${p}L${i}`, `pg-${p}`, { protocols: i % 2 ? ['lwm2m'] : ['sparkplug'] }));
    const seen: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await r.listDevices({ type: `pg-${p}`, limit: 3, ...(nextToken ? { nextToken } : {}) });
      seen.push(...page.items.map((d) => d.id));
      nextToken = page.nextToken;
    } while (nextToken);
    expect(seen.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `${p}L${i}`));
    const lw = await r.listDevices({ type: `pg-${p}`, protocol: 'lwm2m', limit: 100 });
    expect(lw.items.map((d) => d.id).sort()).toEqual([`${p}L1`, `${p}L3`, `${p}L5`]);
  });

  it('resolves a type with its applications in one call, and applications by key hash', async () => {
    const r = make();
    await r.putDeviceType({ id: `breaker-${p}`, name: 'Breaker', capabilities: ['trip'], units: {} });
    await r.putApplication(app(`${p}grid`, [`breaker-${p}`], `${p}hash1`));
    await r.putApplication(app(`${p}other`, [`meter-${p}`], `${p}hash2`));
    expect(await r.getTypeWithApps(`breaker-${p}`)).toEqual({
      type: { id: `breaker-${p}`, name: 'Breaker', capabilities: ['trip'], units: {} },
      applications: [`${p}grid`],
    });
    expect((await r.findApplicationByKeyHash(`${p}hash1`))?.id).toBe(`${p}grid`);
    expect(await r.findApplicationByKeyHash('nope')).toBeUndefined();
    expect((await r.listApplications({ deviceType: `breaker-${p}` })).map((a) => a.id)).toEqual([`${p}grid`]);
  });

  it('rotates a key: the old hash stops resolving', async () => {
    const r = make();
    const first = app(`${p}rot`, [`t-${p}`], `${p}old`);
    await r.putApplication(first);
    await r.putApplication({ ...first, keyHash: `${p}new`, rotatedAt: T0 + 1 }, first);
    expect(await r.findApplicationByKeyHash(`${p}old`)).toBeUndefined();
    expect((await r.findApplicationByKeyHash(`${p}new`))?.id).toBe(`${p}rot`);
    expect(await r.deleteApplication(`${p}rot`)).toBe(true);
    expect(await r.findApplicationByKeyHash(`${p}new`)).toBeUndefined();
  });

  it('refuses to delete a device type still in use', async () => {
    const r = make();
    await r.putDeviceType({ id: `used-${p}`, name: 'Used', capabilities: [], units: {} });
    await r.putDevice(device(`${p}U`, `used-${p}`));
    await expect(r.deleteDeviceType(`used-${p}`)).rejects.toBeInstanceOf(ConflictError);
  });

  it('completes a pending command once', async () => {
    const r = make();
    await r.putCommand({
      deviceId: `${p}1`,
      commandId: 'c1',
      protocol: 'lwm2m',
      operation: 'read',
      request: { path: '/3/0/0' },
      status: 'pending',
      createdAt: T0,
      updatedAt: T0,
      deadline: T0 + 60_000,
    });
    await r.completeCommand(`${p}1`, 'c1', {
      status: 'succeeded',
      response: { result: 205 },
      updatedAt: T0 + 1,
    });
    expect(await r.getCommand(`${p}1`, 'c1')).toMatchObject({
      status: 'succeeded',
      response: { result: 205 },
    });
    await expect(
      r.completeCommand(`${p}1`, 'c1', { status: 'failed', updatedAt: T0 + 2 }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await r.listCommands(`${p}1`)).map((c) => c.commandId)).toEqual(['c1']);
  });
});
