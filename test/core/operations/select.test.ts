/**
 * An operation's targets come from the list routes' fleet filter (device-filter.ts) and/or explicit ids:
 * type, group, tags and protocol are answered by the registry, `online` at the time of creation.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import { selectDevicesFrom } from '../../../functions/core/operations/select.js';
import type { Device } from '../../../functions/core/registry.js';
import { InMemoryRegistry } from '../../../functions/core/registry-memory.js';

const NOW = 1_800_000_000_000;

function device(id: string, over: Partial<Device>): Device {
  return {
    id,
    type: 'meter',
    tags: {},
    status: 'active',
    protocols: ['lwm2m'],
    createdAt: NOW - 1000,
    updatedAt: NOW - 1000,
    ...over,
  } as Device;
}

async function fleet() {
  const registry = new InMemoryRegistry();
  await registry.putDeviceType({ id: 'meter', name: 'Meter', capabilities: [], units: {} });
  await registry.putDeviceType({ id: 'pump', name: 'Pump', capabilities: [], units: {} });
  await registry.putDevice(device('m1', { group: 'north', tags: { site: 'a', tier: 'gold' } }));
  await registry.putDevice(
    device('m2', { group: 'north', tags: { site: 'b' }, lwm2m: { online: true } as Device['lwm2m'] }),
  );
  await registry.putDevice(device('m3', { group: 'south', tags: { site: 'a' } }));
  await registry.putDevice(
    device('p1', {
      type: 'pump',
      group: 'north',
      protocols: ['sparkplug'],
      sparkplug: { online: true } as Device['sparkplug'],
    }),
  );
  return selectDevicesFrom(registry, () => NOW);
}

describe('selectDevicesFrom', () => {
  it('selects by type, group, tag, protocol and online, alone or combined with ids', async () => {
    const select = await fleet();
    const sorted = async (f: Parameters<typeof select>[0]) => (await select(f)).sort();
    expect(await sorted({ type: 'meter' })).toEqual(['m1', 'm2', 'm3']);
    expect(await sorted({ group: 'north' })).toEqual(['m1', 'm2', 'p1']);
    expect(await sorted({ tags: { site: 'a' } })).toEqual(['m1', 'm3']);
    expect(await sorted({ tags: { site: 'a', tier: undefined } })).toEqual(['m1']);
    expect(await sorted({ protocol: 'sparkplug' })).toEqual(['p1']);
    expect(await sorted({ online: true })).toEqual(['m2', 'p1']);
    expect(await sorted({ online: false, group: 'north' })).toEqual(['m1']);
    expect(await sorted({ deviceIds: ['m1', 'm3', 'p1'], group: 'north' })).toEqual(['m1', 'p1']);
  });

  it('refuses a filter that matches nothing and unknown ids, naming the field', async () => {
    const select = await fleet();
    const none = await select({ group: 'west' }).catch((e) => e);
    expect(none).toBeInstanceOf(ValidationError);
    expect(none.field).toBe('filter');
    const unknown = await select({ deviceIds: ['m1', 'zz'] }).catch((e) => e);
    expect(unknown.field).toBe('filter.deviceIds');
  });
});
