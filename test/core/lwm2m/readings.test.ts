import { describe, expect, it } from 'vitest';
import { recordsToReadings } from '../../../functions/core/lwm2m/server/readings.js';
import type { ResolvedRecord, SenmlValue } from '../../../functions/core/senml/index.js';

const T = 1_700_000_000_000;
const rec = (name: string, value: SenmlValue, time = T, timed = false): ResolvedRecord => ({
  name,
  value,
  time,
  timed,
});
const v = (value: number): SenmlValue => ({ kind: 'v', value });

describe('LwM2M records → readings', () => {
  it('names readings by path with the registry name, type and default unit', () => {
    // Act
    const [temp, mfr, battery] = recordsToReadings('ep', [
      rec('/3303/0/5700', v(21.5)),
      rec('/3/0/0', { kind: 'vs', value: 'ACME' }),
      rec('/3/0/9', v(87)),
    ]);
    // Assess
    expect(temp).toEqual({
      protocol: 'lwm2m',
      deviceId: 'ep',
      metric: '/3303/0/5700',
      name: 'Temperature Sensor Value',
      unit: 'Cel',
      type: 'Float',
      value: 21.5,
      time: T,
      historical: false,
      transient: false,
      quality: 'GOOD',
    });
    expect(mfr).toMatchObject({
      metric: '/3/0/0',
      name: 'Device Manufacturer',
      type: 'String',
      value: 'ACME',
    });
    expect(mfr?.unit).toBeUndefined();
    expect(battery).toMatchObject({ name: 'Device Battery Level', type: 'Integer', unit: '%', value: 87 });
  });

  it('types unknown objects from the SenML value field and keeps every value kind', () => {
    const out = recordsToReadings('ep', [
      rec('/33000/0/1', v(1.25)),
      rec('/33000/0/2', { kind: 'vs', value: 'x' }),
      rec('/33000/0/3', { kind: 'vb', value: true }),
      rec('/33000/0/4', { kind: 'vd', value: new Uint8Array([9, 8]) }),
      rec('/33000/0/5', { kind: 'vlo', value: '3:0' }),
      rec('/33000/0/6', { kind: 'none' }),
    ]);
    expect(out.map((r) => [r.metric, r.type, r.value, r.name])).toEqual([
      ['/33000/0/1', 'Float', 1.25, undefined],
      ['/33000/0/2', 'String', 'x', undefined],
      ['/33000/0/3', 'Boolean', true, undefined],
      ['/33000/0/4', 'Opaque', new Uint8Array([9, 8]), undefined],
      ['/33000/0/5', 'Objlnk', '3:0', undefined],
    ]);
  });

  it('lets a Sensor Units (5701) value in the same payload override the unit of its instance only', () => {
    const out = recordsToReadings('ep', [
      rec('/3303/0/5700', v(70)),
      rec('/3303/0/5701', { kind: 'vs', value: 'Far' }),
      rec('/3303/1/5700', v(21)),
    ]);
    expect(out.find((r) => r.metric === '/3303/0/5700')?.unit).toBe('Far');
    expect(out.find((r) => r.metric === '/3303/1/5700')?.unit).toBe('Cel');
  });

  it('marks older samples of a bulk payload historical and the newest of each path not', () => {
    // Prepare: three timed samples of one path, one of another.
    const out = recordsToReadings('ep', [
      rec('/3303/0/5700', v(20), T - 120_000, true),
      rec('/3303/0/5700', v(21), T - 60_000, true),
      rec('/3303/0/5700', v(22), T - 1_000, true),
      rec('/3304/0/5700', v(40), T - 90_000, true),
    ]);
    expect(out.map((r) => [r.metric, r.value, r.time, r.historical])).toEqual([
      ['/3303/0/5700', 20, T - 120_000, true],
      ['/3303/0/5700', 21, T - 60_000, true],
      ['/3303/0/5700', 22, T - 1_000, false],
      ['/3304/0/5700', 40, T - 90_000, false],
    ]);
  });

  it('uses the instance Timestamp (5518, seconds) sent with the same record time as the reading time', () => {
    // Prepare: two bulk groups for instance 0, each with its own 5518; instance 1 has none.
    const measured1 = 1_699_999_000;
    const measured2 = 1_699_999_500;
    const out = recordsToReadings('ep', [
      rec('/3303/0/5700', v(20), T - 2000, true),
      rec('/3303/0/5518', v(measured1), T - 2000, true),
      rec('/3303/0/5700', v(21), T - 1000, true),
      rec('/3303/0/5518', v(measured2), T - 1000, true),
      rec('/3303/1/5700', v(30)),
    ]);
    const inst0 = out.filter((r) => r.metric === '/3303/0/5700');
    expect(inst0.map((r) => [r.value, r.time, r.historical])).toEqual([
      [20, measured1 * 1000, true],
      [21, measured2 * 1000, false],
    ]);
    expect(out.find((r) => r.metric === '/3303/1/5700')).toMatchObject({ time: T, historical: false });
    expect(out.find((r) => r.metric === '/3303/0/5518')).toMatchObject({
      type: 'Time',
      name: 'Temperature Timestamp',
    });
  });

  it('applies an untimed 5518 to the untimed values of its instance', () => {
    const out = recordsToReadings('ep', [rec('/3304/2/5700', v(55)), rec('/3304/2/5518', v(1_699_000_000))]);
    expect(out[0]).toMatchObject({ metric: '/3304/2/5700', time: 1_699_000_000_000, historical: false });
  });
});
