/** The device filter of the list routes: parsing (errors name the parameter) and matching. */
import { describe, expect, it } from 'vitest';
import { matchDevice, parseDeviceQuery, registryFilter } from '../../functions/core/device-filter.js';
import { ValidationError } from '../../functions/core/errors.js';
import type { Device } from '../../functions/core/registry.js';

const NOW = 1_700_000_000_000;
const dev = (extra: Partial<Device> = {}): Device => ({
  id: 'd1',
  type: 'meter',
  tags: { site: 'north', critical: 'yes' },
  group: 'plant-1',
  status: 'active',
  protocols: ['sparkplug', 'lwm2m'],
  createdAt: NOW,
  updatedAt: NOW,
  ...extra,
});

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError & { field?: string }).field;
  }
  return undefined;
}

describe('parseDeviceQuery', () => {
  it('parses every parameter, and nothing when none is given', () => {
    expect(parseDeviceQuery({})).toEqual({});
    expect(
      parseDeviceQuery({
        type: 'meter',
        group: 'plant-1',
        tag: 'site:north,critical,note:a:b',
        protocol: 'lwm2m',
        online: 'false',
      }),
    ).toEqual({
      type: 'meter',
      group: 'plant-1',
      tags: { site: 'north', critical: undefined, note: 'a:b' },
      protocol: 'lwm2m',
      online: false,
    });
  });

  it('names the parameter of each bad value', () => {
    expect(fieldOf(() => parseDeviceQuery({ protocol: 'coap' }))).toBe('protocol');
    expect(fieldOf(() => parseDeviceQuery({ online: 'yes' }))).toBe('online');
    expect(fieldOf(() => parseDeviceQuery({ type: 'bad type!' }))).toBe('type');
    expect(fieldOf(() => parseDeviceQuery({ group: '' }))).toBe('group');
    expect(fieldOf(() => parseDeviceQuery({ tag: ':v' }))).toBe('tag');
    expect(fieldOf(() => parseDeviceQuery({ tag: 'a:1,a:2' }))).toBe('tag');
    expect(
      fieldOf(() => parseDeviceQuery({ tag: Array.from({ length: 11 }, (_, i) => `k${i}`).join(',') })),
    ).toBe('tag');
    expect(fieldOf(() => parseDeviceQuery({ tag: `k:${'v'.repeat(257)}` }))).toBe('tag');
  });

  it('hands the registry everything but online', () => {
    const q = parseDeviceQuery({ type: 'meter', tag: 'site:north', protocol: 'sparkplug', online: 'true' });
    expect(registryFilter(q)).toEqual({ type: 'meter', tags: { site: 'north' }, protocol: 'sparkplug' });
  });
});

describe('matchDevice', () => {
  it('matches each criterion and their conjunction', () => {
    const d = dev({ sparkplug: { group: 'g', online: true, devices: {} } });
    expect(matchDevice(d, {}, NOW)).toBe(true);
    expect(matchDevice(d, { type: 'meter' }, NOW)).toBe(true);
    expect(matchDevice(d, { type: 'breaker' }, NOW)).toBe(false);
    expect(matchDevice(d, { group: 'plant-2' }, NOW)).toBe(false);
    expect(matchDevice(d, { tags: { site: 'north', critical: undefined } }, NOW)).toBe(true);
    expect(matchDevice(d, { tags: { site: 'south' } }, NOW)).toBe(false);
    expect(matchDevice(d, { tags: { missing: undefined } }, NOW)).toBe(false);
    expect(matchDevice(dev({ protocols: ['lwm2m'] }), { protocol: 'sparkplug' }, NOW)).toBe(false);
    expect(matchDevice(d, { online: true, type: 'meter', tags: { site: 'north' } }, NOW)).toBe(true);
    expect(matchDevice(d, { online: false }, NOW)).toBe(false);
  });

  it('treats tag keys named like Object.prototype members as plain keys', () => {
    const q = parseDeviceQuery({ tag: 'constructor,toString:x' });
    expect(q.tags).toEqual({ constructor: undefined, toString: 'x' });
    expect(matchDevice(dev(), q, NOW)).toBe(false);
    expect(matchDevice(dev({ tags: { constructor: 'a', toString: 'x' } }), q, NOW)).toBe(true);
  });

  it('counts an LwM2M registration past its lifetime as offline', () => {
    const lw = (lastUpdate: number) =>
      dev({ protocols: ['lwm2m'], lwm2m: { online: true, lifetime: 60, lastUpdate } });
    expect(matchDevice(lw(NOW - 30_000), { online: true }, NOW)).toBe(true);
    expect(matchDevice(lw(NOW - 61_000), { online: true }, NOW)).toBe(false);
    expect(matchDevice(lw(NOW - 61_000), { online: false }, NOW)).toBe(true);
    expect(matchDevice(dev(), { online: false }, NOW)).toBe(true);
  });
});
