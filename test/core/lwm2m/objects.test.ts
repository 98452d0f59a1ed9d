import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../functions/core/errors.js';
import { describePath, getObject, listObjectIds, parsePath } from '../../../functions/core/lwm2m/objects.js';

describe('bundled object registry', () => {
  it('describes /3303/0/5700 as Temperature / Sensor Value, Float, Cel', () => {
    expect(describePath('/3303/0/5700')).toEqual({
      objectName: 'Temperature',
      name: 'Sensor Value',
      type: 'Float',
      unit: 'Cel',
    });
  });

  it.each([
    [3304, '%RH'],
    [3316, 'V'],
    [3317, 'A'],
    [3323, 'Pa'],
    [3328, 'W'],
    [3331, 'Wh'],
  ])('gives IPSO object %i the default unit %s on its measured values', (id, unit) => {
    expect(getObject(id)!.defaultUnit).toBe(unit);
    expect(describePath(`/${id}/0/5700`).unit).toBe(unit);
    expect(describePath(`/${id}/0/5701`).unit).toBeUndefined();
  });

  it('has no default unit for the Generic Sensor (the unit is in 5701) and adds 5751 Sensor Type', () => {
    const generic = getObject(3300)!;
    expect(generic.defaultUnit).toBeUndefined();
    expect(describePath('/3300/0/5700')).toEqual({
      objectName: 'Generic Sensor',
      name: 'Sensor Value',
      type: 'Float',
    });
    expect(generic.resources.get(5751)?.name).toBe('Sensor Type');
  });

  it('carries the per-object extras: 5821 Calibration, 5822 Reset on Energy without min/max', () => {
    for (const id of [3316, 3317, 3323, 3328]) expect(getObject(id)!.resources.has(5821)).toBe(true);
    const energy = getObject(3331)!;
    expect(energy.resources.get(5822)).toMatchObject({ operations: 'E', type: 'none' });
    for (const rid of [5601, 5602, 5603, 5604, 5605]) expect(energy.resources.has(rid)).toBe(false);
    expect(getObject(3303)!.resources.get(5605)?.operations).toBe('E');
  });

  it('shares the IPSO common resources across the sensors', () => {
    for (const id of [3300, 3303, 3304, 3316, 3317, 3323, 3328, 3331]) {
      const obj = getObject(id)!;
      expect(obj.version).toBe('1.1');
      expect(obj.multiple).toBe(true);
      expect(obj.resources.get(5700)).toMatchObject({ type: 'Float', operations: 'R', mandatory: true });
      for (const rid of [5701, 5750, 5518, 6050, 6042, 6049]) expect(obj.resources.has(rid)).toBe(true);
      expect(obj.resources.get(5518)?.type).toBe('Time');
    }
  });

  it('holds objects 0-7 with the facts of the reference', () => {
    expect(listObjectIds()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 3300, 3303, 3304, 3316, 3317, 3323, 3328, 3331]);
    expect(getObject(1)!.resources.get(1)).toMatchObject({ name: 'Lifetime', unit: 's', operations: 'RW' });
    expect(getObject(1)!.resources.get(23)).toMatchObject({ name: 'Mute Send', type: 'Boolean' });
    expect(getObject(3)!.multiple).toBe(false);
    expect(getObject(3)!.resources.get(7)).toMatchObject({ multiple: true, unit: 'mV' });
    expect(getObject(3)!.resources.get(4)).toMatchObject({ operations: 'E', mandatory: true });
    expect(getObject(0)!.resources.get(26)?.type).toBe('Objlnk');
    expect(getObject(5)!.resources.get(0)).toMatchObject({ type: 'Opaque', operations: 'W' });
    expect(getObject(6)!.resources.get(5)).toMatchObject({ name: 'Timestamp', mandatory: true });
    expect(describePath('/4/0/2')).toEqual({
      objectName: 'Connectivity Monitoring',
      name: 'Radio Signal Strength',
      type: 'Integer',
      unit: 'dBm',
    });
    expect(describePath('/3/0/7/1').unit).toBe('mV');
  });

  it('describes unknown or partial paths with fewer fields and never throws', () => {
    expect(describePath('/3303/0')).toEqual({ objectName: 'Temperature' });
    expect(describePath('/3303/0/9999')).toEqual({ objectName: 'Temperature' });
    expect(describePath('/42/0/1')).toEqual({});
    expect(describePath('not a path')).toEqual({});
  });
});

describe('parsePath', () => {
  it('parses 1 to 4 segments', () => {
    expect(parsePath('/3')).toEqual({ objectId: 3 });
    expect(parsePath('/3303/1/5700')).toEqual({ objectId: 3303, instanceId: 1, resourceId: 5700 });
    expect(parsePath('/3/0/7/1')).toEqual({
      objectId: 3,
      instanceId: 0,
      resourceId: 7,
      resourceInstanceId: 1,
    });
  });

  it.each(['', '/', '3/0', '/3/', '/3//0', '/a/0', '/3/0/0/0/0', '/65536', '/01', '/-1', '/3/0 '])(
    'rejects %j with ProtocolError LWM2M_PATH',
    (path) => {
      expect(() => parsePath(path)).toThrow(ProtocolError);
      expect(() => parsePath(path)).toThrow(expect.objectContaining({ code: 'LWM2M_PATH', field: 'path' }));
    },
  );
});
