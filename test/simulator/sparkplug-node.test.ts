import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../functions/core/lwm2m/message.js';
import { decodePayload, encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { badLwm2m, badSparkplug } from '../../simulator/bad-messages.js';
import { DEVICE_TYPES } from '../../simulator/device-types.js';
import { Lwm2mClient } from '../../simulator/lwm2m-client.js';
import { createRng } from '../../simulator/rng.js';
import { REBIRTH, SparkplugNode } from '../../simulator/sparkplug-node.js';

const NOW = 1_767_225_600_000;
const nodeValues = { type: 'breaker', firmware: '1.4.2', uptime: 5, rssi: -70 };

function breakerNode(bdSeq = 7) {
  const type = DEVICE_TYPES.breaker!;
  const state = type.init(createRng(1), NOW);
  return { node: new SparkplugNode('g1', 'cb-1', type, bdSeq), state };
}

describe('SparkplugNode', () => {
  it('NBIRTH: seq 0, bdSeq, Node Control/Rebirth without alias, node metrics with aliases and datatypes', () => {
    const { node, state } = breakerNode(7);
    const [nbirth, dbirth, ...rest] = node.births(NOW, nodeValues, (k) => state[k]);
    expect(rest).toEqual([]);
    expect(nbirth!.topic).toBe('spBv1.0/g1/NBIRTH/cb-1');
    const p = decodePayload(nbirth!.payload);
    expect(p.seq).toBe(0n);
    const byName = new Map(p.metrics.map((m) => [m.name, m]));
    expect(byName.get('bdSeq')).toMatchObject({ datatype: DataType.Int64, value: 7 });
    expect(byName.get(REBIRTH)).toMatchObject({ datatype: DataType.Boolean, value: false });
    expect(byName.get(REBIRTH)!.alias).toBeUndefined();
    expect(byName.get('Node Info/Type')).toMatchObject({
      alias: 1n,
      datatype: DataType.String,
      value: 'breaker',
    });
    expect(nbirth!.readings).toBe(4);
    expect(dbirth!.topic).toBe('spBv1.0/g1/DBIRTH/cb-1/breaker');
    const d = decodePayload(dbirth!.payload);
    expect(d.seq).toBe(1n);
    const names = d.metrics.map((m) => m.name);
    expect(names).toContain('Voltage/L1');
    expect(names).toContain('Control/Trip');
    const aliases = d.metrics.map((m) => m.alias);
    expect(new Set(aliases).size).toBe(aliases.length);
    const trip = d.metrics.find((m) => m.name === 'Control/Trip')!;
    expect(trip.properties?.keys).toContain('writable');
    const v1 = d.metrics.find((m) => m.name === 'Voltage/L1')!;
    expect(v1.datatype).toBe(DataType.Float);
    expect(v1.properties?.values[0]?.value).toBe('V');
    expect(dbirth!.readings).toBe(d.metrics.length);
  });

  it('DDATA carries aliases only (no name, no datatype) and each metric its own timestamp', () => {
    const { node, state } = breakerNode();
    node.births(NOW, nodeValues, (k) => state[k]);
    const msg = node.data('breaker', NOW + 1000, [
      { key: 'voltage1', time: NOW + 500, value: 231.5 },
      { key: 'trip', time: NOW + 1000, value: true },
    ]);
    const p = decodePayload(msg.payload);
    expect(p.seq).toBe(2n);
    for (const m of p.metrics) {
      expect(m.name).toBeUndefined();
      expect(m.datatype).toBeUndefined();
      expect(m.alias).toBeDefined();
    }
    expect(p.metrics.map((m) => m.timestamp)).toEqual([NOW + 500, NOW + 1000]);
    expect(p.metrics[0]!.raw).toEqual({ field: 'float', value: expect.closeTo(231.5, 4) });
    expect(p.metrics[1]!.raw).toEqual({ field: 'boolean', value: true });
    expect(msg.readings).toBe(2);
  });

  it('one seq counter for N* and D* messages, wrapping 255 → 0; NBIRTH restarts it', () => {
    const { node, state } = breakerNode();
    node.births(NOW, nodeValues, (k) => state[k]);
    const seqs: bigint[] = [];
    for (let i = 0; i < 300; i++) {
      const m =
        i % 7 === 0
          ? node.nodeData(NOW, nodeValues)
          : node.data('breaker', NOW, [{ key: 'power', time: NOW, value: 1 }]);
      seqs.push(decodePayload(m.payload).seq!);
    }
    expect(seqs[0]).toBe(2n);
    expect(seqs[253]).toBe(255n);
    expect(seqs[254]).toBe(0n);
    expect(seqs.every((s, i) => i === 0 || s === (seqs[i - 1]! + 1n) % 256n)).toBe(true);
    const death = decodePayload(node.deviceDeath('breaker', NOW).payload);
    expect(death.seq).toBe((seqs[299]! + 1n) % 256n);
    const [nbirth] = node.births(NOW, nodeValues, (k) => state[k]);
    expect(decodePayload(nbirth!.payload).seq).toBe(0n);
  });

  it('NDEATH carries only bdSeq and no seq; a new session increments bdSeq with wrap', () => {
    const { node } = breakerNode(255);
    const d = decodePayload(node.death(NOW).payload);
    expect(d.seq).toBeUndefined();
    expect(d.metrics).toHaveLength(1);
    expect(d.metrics[0]).toMatchObject({ name: 'bdSeq', value: 255 });
    node.newSession();
    expect(decodePayload(node.death(NOW).payload).metrics[0]!.value).toBe(0);
  });

  it('interprets NCMD rebirth and DCMD writes by name or alias (with or without datatype)', () => {
    const { node } = breakerNode();
    const ncmd = encodePayload({
      timestamp: NOW,
      metrics: [{ name: REBIRTH, datatype: DataType.Boolean, value: true }],
    });
    expect(node.command('spBv1.0/g1/NCMD/cb-1', ncmd)).toMatchObject({ rebirth: true, writes: [] });
    const alias = node.aliasOf('trip')!;
    const dcmd = encodePayload({
      timestamp: NOW,
      metrics: [
        { alias, datatype: DataType.Boolean, value: true, omitDatatype: true },
        { name: 'Voltage/L1', datatype: DataType.Float, value: 1 },
      ],
    });
    const r = node.command('spBv1.0/g1/DCMD/cb-1/breaker', dcmd);
    expect(r.writes).toEqual([{ device: 'breaker', key: 'trip', value: true }]);
    expect(r.refused).toEqual(['Voltage/L1']);
    expect(() => node.command('spBv1.0/g1/DCMD/other/breaker', dcmd)).toThrow(/not for node/);
    expect(() => node.command('spBv1.0/g1/NCMD/cb-1', Uint8Array.from([0x0f, 1]))).toThrow();
  });
});

describe('bad messages', () => {
  it('every Sparkplug kind is rejected by the real decoder', () => {
    const { node } = breakerNode();
    const rng = createRng(1);
    for (const kind of ['garbage-protobuf', 'truncated-protobuf', 'wrong-type'] as const) {
      for (let i = 0; i < 20; i++) {
        const bad = badSparkplug(node, 'breaker', NOW, rng, kind);
        expect(() => decodePayload(bad.payload), kind).toThrow();
      }
    }
  });

  it('every LwM2M kind is rejected by the real decoder', () => {
    const type = DEVICE_TYPES['env-sensor']!;
    const client = new Lwm2mClient({
      endpoint: 'e1',
      type,
      lifetime: 60,
      clock: () => NOW,
      schedule: () => {},
      read: () => 1,
      info: { manufacturer: 'm', model: 'm', serial: 's', firmware: '1.0.0', hardware: 'h', software: 's' },
    });
    const rng = createRng(2);
    const records = [{ name: '/3303/0/5700', time: NOW, value: { kind: 'v' as const, value: 1 } }];
    for (const kind of ['truncated-cbor', 'garbage-cbor', 'wrong-key-types'] as const) {
      expect(() => decodeMessage(badLwm2m(client, records, rng, kind)), kind).toThrow();
    }
  });
});
