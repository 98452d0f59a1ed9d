/**
 * The host fed a session whose bytes come from an independent encoder: npm `sparkplug-payload`
 * (Eclipse Tahu JS), as a Tahu edge node would publish it — bdSeq as UInt64, UInt32 in long_value,
 * Template definitions in the NBIRTH and instances in the DBIRTH, a DataSet, properties as a map.
 */
import sparkplug from 'sparkplug-payload';
import { describe, expect, it } from 'vitest';
import type { MessageOutcome } from '../../../functions/core/reading.js';
import { createInMemorySparkplugHost } from '../../../functions/core/sparkplug/index.js';

interface PeerCodec {
  encodePayload(p: unknown): Uint8Array;
}
const peer = (sparkplug as unknown as { get(ns: string): PeerCodec | null }).get('spBv1.0')!;
const T = 1_700_000_000_000;

function tahuSession() {
  const host = createInMemorySparkplugHost({ clock: () => T + 1000 });
  let at = T;
  const send = (topic: string, payload: unknown): Promise<MessageOutcome> => {
    at += 10;
    return host.handle({
      topic: `spBv1.0/tahu/${topic}`,
      payload: peer.encodePayload(payload),
      receivedAt: at,
    });
  };
  return { send };
}

const pick = (o: MessageOutcome) =>
  o.readings.map((r) => [
    r.metric,
    r.type,
    r.value,
    ...(r.unit ? [r.unit] : []),
    ...(r.row === undefined ? [] : [r.row]),
  ]);

describe('host ← Tahu JS (sparkplug-payload) bytes', () => {
  it('runs a whole session: births with templates and a DataSet, DATA by alias, DDEATH, NDEATH', async () => {
    const { send } = tahuSession();
    const nb = await send('NBIRTH/edge', {
      timestamp: T,
      seq: 0,
      metrics: [
        { name: 'bdSeq', type: 'UInt64', value: 3, timestamp: T },
        { name: 'Node Control/Rebirth', type: 'Boolean', value: false, timestamp: T },
        { name: 'Counter', alias: 1, type: 'UInt32', value: 4_000_000_000, timestamp: T },
        {
          name: 'Motor',
          type: 'Template',
          timestamp: T,
          value: {
            isDefinition: true,
            version: '1',
            metrics: [
              {
                name: 'Speed',
                type: 'Float',
                value: 0,
                properties: { engUnit: { type: 'String', value: 'rpm' } },
              },
              { name: 'Running', type: 'Boolean', value: false },
            ],
            parameters: [{ name: 'RatedKW', type: 'Double', value: 0 }],
          },
        },
      ],
    });
    expect(pick(nb)).toEqual([['Counter', 'UInt32', 4_000_000_000]]);
    expect(nb.events.map((e) => e.type)).toEqual(['birth']);

    const db = await send('DBIRTH/edge/line1', {
      timestamp: T + 1,
      seq: 1,
      metrics: [
        {
          name: 'Temp',
          alias: 10,
          type: 'Double',
          value: 21.5,
          timestamp: T + 1,
          properties: { engUnit: { type: 'String', value: '°C' } },
        },
        {
          name: 'M1',
          alias: 11,
          type: 'Template',
          timestamp: T + 1,
          value: {
            isDefinition: false,
            templateRef: 'Motor',
            version: '1',
            metrics: [
              { name: 'Speed', type: 'Float', value: 1450 },
              { name: 'Running', type: 'Boolean', value: true },
            ],
            parameters: [{ name: 'RatedKW', type: 'Double', value: 7.5 }],
          },
        },
        {
          name: 'Recipe',
          alias: 12,
          type: 'DataSet',
          timestamp: T + 1,
          value: {
            numOfColumns: 2,
            columns: ['step', 'setpoint'],
            types: ['Int32', 'Double'],
            rows: [
              [1, 80.5],
              [2, 95],
            ],
          },
        },
      ],
    });
    expect(pick(db)).toEqual([
      ['Temp', 'Double', 21.5, '°C'],
      ['M1/Speed', 'Float', 1450, 'rpm'],
      ['M1/Running', 'Boolean', true],
      ['Recipe/step', 'Int32', 1, 0],
      ['Recipe/setpoint', 'Double', 80.5, 0],
      ['Recipe/step', 'Int32', 2, 1],
      ['Recipe/setpoint', 'Double', 95, 1],
    ]);

    // Tahu DATA: alias plus datatype (Tahu always writes it); no names.
    const dd = await send('DDATA/edge/line1', {
      timestamp: T + 2,
      seq: 2,
      metrics: [{ alias: 10, type: 'Double', value: 22.25, timestamp: T + 2 }],
    });
    expect(pick(dd)).toEqual([['Temp', 'Double', 22.25, '°C']]);
    expect(dd.events).toEqual([]);
    const nd = await send('NDATA/edge', {
      timestamp: T + 3,
      seq: 3,
      metrics: [{ alias: 1, type: 'UInt32', value: 7, timestamp: T + 3 }],
    });
    expect(pick(nd)).toEqual([['Counter', 'UInt32', 7]]);

    const ddeath = await send('DDEATH/edge/line1', { timestamp: T + 4, seq: 4 });
    expect(ddeath.events.map((e) => [e.type, e.subDevice, e.time])).toEqual([
      ['death', 'line1', T + 4],
      ['stale', 'line1', T + 4],
    ]);
    const stale = await send('NDEATH/edge', {
      timestamp: T + 5,
      metrics: [{ name: 'bdSeq', type: 'UInt64', value: 3 }],
    });
    expect(stale.events.map((e) => e.type)).toEqual(['death', 'stale']);
  });
});
