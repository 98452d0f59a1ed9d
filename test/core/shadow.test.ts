import { describe, expect, it } from 'vitest';
import type { CommandService } from '../../functions/core/commands.js';
import { ValidationError } from '../../functions/core/errors.js';
import type { Command, Device, DeviceType } from '../../functions/core/registry.js';
import {
  InMemoryShadowStore,
  ShadowService,
  sameValue,
  validateDesiredValue,
  validateWritable,
} from '../../functions/core/shadow.js';
import type { StoredPoint } from '../../functions/core/telemetry.js';

const device: Device = {
  id: 'd1',
  type: 'lamp',
  tags: {},
  status: 'active',
  protocols: ['lwm2m', 'sparkplug'],
  createdAt: 0,
  updatedAt: 0,
};
const type: DeviceType = {
  id: 'lamp',
  name: 'Lamp',
  capabilities: [],
  units: {},
  writable: validateWritable({
    on: { protocol: 'lwm2m', path: '/3311/0/5850', type: 'Boolean' },
    dim: { protocol: 'lwm2m', path: '/3311/0/5851', type: 'Integer' },
    setpoint: { protocol: 'sparkplug', metric: 'Setpoint', datatype: 'Float' },
  })!,
};

function service(points: Partial<StoredPoint>[], create?: (body: Record<string, unknown>) => Command) {
  const sent: Record<string, unknown>[] = [];
  let n = 0;
  const commands = {
    async create(_d: Device | string, body: Record<string, unknown>) {
      sent.push(body);
      if (create) return create(body);
      return { commandId: `c${++n}`, status: 'pending' } as Command;
    },
    async get(_d: string, id: string) {
      return { commandId: id, status: 'succeeded' } as Command;
    },
  } as unknown as Pick<CommandService, 'create' | 'get'>;
  const s = new ShadowService({
    registry: { getDeviceType: async () => type },
    telemetry: { latest: async () => points as StoredPoint[] },
    commands,
    shadows: new InMemoryShadowStore(),
    clock: () => 1000,
  });
  return { s, sent };
}

describe('shadow validation', () => {
  it('names the field of a bad declaration and of a bad desired value', () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ValidationError).field;
      }
      return undefined;
    };
    expect(
      field(() => validateWritable({ x: { protocol: 'lwm2m', path: '/3311/0', type: 'Boolean' } })),
    ).toBe('writable.x.path');
    expect(field(() => validateWritable({ x: { protocol: 'coap' } }))).toBe('writable.x.protocol');
    expect(field(() => validateDesiredValue('dim', type.writable!.dim!, 1.5))).toBe('desired.dim');
    expect(field(() => validateDesiredValue('setpoint', type.writable!.setpoint!, 'hot'))).toBe(
      'desired.setpoint',
    );
    expect(validateDesiredValue('on', type.writable!.on!, true)).toBe(true);
  });

  it('compares a Float that travelled as 32 bits as equal, other values exactly', () => {
    expect(sameValue(42.7, Math.fround(42.7))).toBe(true);
    expect(sameValue(42.7, 42.8)).toBe(false);
    expect(sameValue(true, 'true')).toBe(false);
    expect(sameValue(5, 5n)).toBe(true);
  });
});

describe('ShadowService', () => {
  it('sends one command per LwM2M path and one Sparkplug write for the delta only, and records them', async () => {
    const { s, sent } = service([
      { protocol: 'lwm2m', metric: '/3311/0/5850', value: true, time: 5 },
      { protocol: 'sparkplug', metric: 'Setpoint', value: Math.fround(20.1), time: 6 },
    ]);
    await expect(s.setDesired(device, { nope: 1 })).rejects.toMatchObject({ field: 'desired.nope' });
    // Inherited names are not fields: validation cannot be bypassed through the prototype chain.
    await expect(s.setDesired(device, { constructor: 'x' })).rejects.toMatchObject({
      field: 'desired.constructor',
    });
    await expect(s.setDesired(device, { toString: 'y' })).rejects.toMatchObject({
      field: 'desired.toString',
    });
    const view = await s.setDesired(device, { on: true, dim: 40, setpoint: 21.5 });
    expect(view.delta).toEqual({ dim: 40, setpoint: 21.5 });
    expect(sent).toEqual([
      { protocol: 'lwm2m', operation: 'write', path: '/3311/0/5851', value: 40 },
      {
        protocol: 'sparkplug',
        operation: 'write',
        metrics: [{ name: 'Setpoint', type: 'Float', value: 21.5 }],
      },
    ]);
    // Newest first; pending commands read as they now stand.
    expect(view.reconciliations.map((r) => [r.fields, r.status])).toEqual([
      [['setpoint'], 'succeeded'],
      [['dim'], 'succeeded'],
    ]);
    expect(view.reported.on).toEqual({ value: true, time: 5 });
  });

  it('records a command the device cannot take as not-sent and keeps the desired value', async () => {
    const { s } = service([], () => {
      throw new ValidationError('device d1 has no Sparkplug session yet (no NBIRTH seen)', {
        field: 'protocol',
      });
    });
    const view = await s.setDesired(device, { setpoint: 3 });
    expect(view.desired).toEqual({ setpoint: 3 });
    expect(view.reconciliations[0]).toMatchObject({ status: 'not-sent', fields: ['setpoint'] });
    expect(view.reconciliations[0]!.error).toContain('no Sparkplug session');
  });
});
