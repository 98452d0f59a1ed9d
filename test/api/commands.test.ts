/**
 * Commands through the API: the published MQTT message decoded with the real codecs (LwM2M binding
 * CBOR + SenML CBOR, Sparkplug protobuf), the device's answer going back through the real LwM2M server
 * and completing the command, timeouts, and field-named validation errors.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { decodeSenml, encodeSenml } from '../../functions/core/senml/index.js';
import { decodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { composeLwm2mIngest } from '../../functions/lwm2m-ingest/compose.js';
import { type Api, createApi, T0 } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

let seq = 0;
/**
 * The device's answer published on its topic, delivered as the lwm2m rule's Kinesis record to the
 * lwm2m-ingest function (its composition root, over the API's in-memory ports): the same code completes
 * the command in AWS and locally.
 */
async function deviceAnswers(endpoint: string, message: Parameters<typeof encodeMessage>[0]): Promise<void> {
  const ingest = composeLwm2mIngest({
    registry: api.registry,
    events: api.events,
    store: api.store,
    publisher: { publish: async (actions) => void api.published.push(...actions) },
    clock: () => api.clock.now,
    logger: new Logger({ serviceName: 'lwm2m-ingest', logLevel: 'ERROR' }),
    metrics: new Metrics({ namespace: 'test' }),
    registrations: api.registrations,
    pending: api.pending,
  });
  const envelope = {
    topic: `lwm2m/rd/${endpoint}`,
    payload: Buffer.from(encodeMessage(message)).toString('base64'),
    receivedAt: api.clock.now,
    clientId: endpoint,
  };
  const result = await ingest.processRecords([
    { sequenceNumber: String(++seq), partitionKey: endpoint, data: Buffer.from(JSON.stringify(envelope)) },
  ]);
  expect(result.batchItemFailures).toEqual([]);
  expect(result.stats.quarantined).toBe(0);
}

describe('LwM2M commands', () => {
  it('publishes a Read on lwm2m/rd/{endpoint} and completes it with the decoded response', async () => {
    const res = await api.call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'read', path: '/3303/0/5700' },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'pending' });
    expect(res.headers?.location).toBe(`/devices/e1/commands/${res.body.commandId}`);
    const action = api.published.at(-1)!;
    expect(action.topic).toBe('lwm2m/rd/e1');
    const m = decodeMessage(action.payload);
    expect(m).toMatchObject({ operation: Operation.Read, uri: '/3303/0/5700' });
    expect(Number(m.token)).toBe(res.body.token);
    const path = `/devices/e1/commands/${res.body.commandId}`;
    expect((await api.call('GET', path)).body).toMatchObject({ status: 'pending', operation: 'read' });

    await deviceAnswers('e1', {
      result: 205,
      token: m.token!,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml([{ n: '/3303/0/5700', v: 22.5 }], 112),
    });
    const done = await api.call('GET', path);
    expect(done.body.status).toBe('succeeded');
    expect(done.body.response).toMatchObject({
      result: 205,
      success: true,
      readings: [{ metric: '/3303/0/5700', value: 22.5 }],
    });
    const list = await api.call('GET', '/devices/e1/commands');
    expect(list.body.commands.map((c) => [c.commandId, c.status])).toContainEqual([
      res.body.commandId,
      'succeeded',
    ]);
  });

  it('marks a command failed when the device answers 4.04, with its reason', async () => {
    const res = await api.call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'execute', path: '/3/0/4', args: "0='now'" },
    });
    const m = decodeMessage(api.published.at(-1)!.payload);
    expect(m).toMatchObject({
      operation: Operation.Execute,
      uri: '/3/0/4',
      contentFormat: ContentFormat.Text,
    });
    expect(new TextDecoder().decode(m.payload)).toBe("0='now'");
    await deviceAnswers('e1', {
      result: 404,
      token: m.token!,
      contentFormat: ContentFormat.Text,
      payload: new TextEncoder().encode('no such resource'),
    });
    const done = await api.call('GET', `/devices/e1/commands/${res.body.commandId}`);
    expect(done.body.status).toBe('failed');
    expect(done.body.response).toMatchObject({ result: 404, success: false, reason: 'no such resource' });
  });

  it('encodes a Write as SenML CBOR and a composite write with every path', async () => {
    await api.call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'write', path: '/1/0/1', value: 600 },
    });
    const w = decodeMessage(api.published.at(-1)!.payload);
    expect(w).toMatchObject({
      operation: Operation.WriteReplace,
      uri: '/1/0/1',
      contentFormat: ContentFormat.SenmlCbor,
    });
    expect(
      decodeSenml(w.payload!, ContentFormat.SenmlCbor, { receivedAt: T0 }).map((r) => [r.name, r.value]),
    ).toEqual([['/1/0/1', { kind: 'v', value: 600 }]]);

    await api.call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'write-composite', values: { '/1/0/1': 300, '/1/0/2': 10 } },
    });
    const c = decodeMessage(api.published.at(-1)!.payload);
    expect(c.operation).toBe(Operation.WriteComposite);
    expect(
      decodeSenml(c.payload!, ContentFormat.SenmlCbor, { receivedAt: T0 }).map((r) => [r.name, r.value]),
    ).toEqual([
      ['/1/0/1', { kind: 'v', value: 300 }],
      ['/1/0/2', { kind: 'v', value: 10 }],
    ]);
  });

  it('publishes Observe and Write-Attributes with their parameters', async () => {
    await api.call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'observe', path: '/3303/0/5700' },
    });
    expect(decodeMessage(api.published.at(-1)!.payload)).toMatchObject({
      operation: Operation.Observe,
      uri: '/3303/0/5700',
    });
    await api.call('POST', '/devices/e1/commands', {
      body: {
        protocol: 'lwm2m',
        operation: 'write-attributes',
        path: '/3303/0/5700',
        attributes: { pmin: 10, pmax: 60 },
      },
    });
    expect(decodeMessage(api.published.at(-1)!.payload)).toMatchObject({
      operation: Operation.WriteAttributes,
      pmin: 10,
      pmax: 60,
    });
  });

  it('reads a pending command past its deadline as timed-out', async () => {
    const res = await api.call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
    });
    const path = `/devices/e1/commands/${res.body.commandId}`;
    api.clock.now = T0 + 30_001;
    try {
      expect((await api.call('GET', path)).body.status).toBe('timed-out');
      const list = await api.call('GET', '/devices/e1/commands');
      expect(list.body.commands.find((c) => c.commandId === res.body.commandId)?.status).toBe('timed-out');
    } finally {
      api.clock.now = T0;
    }
    expect((await api.call('GET', path)).body.status).toBe('pending');
    expect((await api.call('GET', '/devices/e1/commands/nope')).status).toBe(404);
  });
});

describe('Sparkplug commands', () => {
  it('publishes an NCMD with the typed metrics and succeeds when published', async () => {
    const res = await api.call('POST', '/devices/b1/commands', {
      body: {
        protocol: 'sparkplug',
        operation: 'write',
        metrics: [
          { name: 'Control/Trip', type: 'Boolean', value: true },
          { name: 'Setpoint', type: 'Double', value: 12.5 },
          { name: 'Counter', type: 'UInt64', value: '18446744073709551615' },
        ],
      },
    });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('succeeded');
    const action = api.published.at(-1)!;
    expect(action.topic).toBe('spBv1.0/grid/NCMD/b1');
    const p = decodePayload(action.payload);
    expect(p.timestamp).toBe(T0);
    expect(p.metrics.map((m) => [m.name, m.datatype, m.value])).toEqual([
      ['Control/Trip', DataType.Boolean, true],
      ['Setpoint', DataType.Double, 12.5],
      ['Counter', DataType.UInt64, 18446744073709551615n],
    ]);
    const cmd = await api.call('GET', `/devices/b1/commands/${res.body.commandId}`);
    expect(cmd.body).toMatchObject({ status: 'succeeded', response: { published: 'spBv1.0/grid/NCMD/b1' } });
  });

  it('publishes a DCMD for a known Sparkplug device and a rebirth NCMD', async () => {
    await api.call('POST', '/devices/b1/commands', {
      body: {
        protocol: 'sparkplug',
        operation: 'write',
        device: 'meter1',
        metrics: [{ name: 'Reset', type: 'Int32', value: -1 }],
      },
    });
    const d = api.published.at(-1)!;
    expect(d.topic).toBe('spBv1.0/grid/DCMD/b1/meter1');
    expect(decodePayload(d.payload).metrics[0]).toMatchObject({
      name: 'Reset',
      datatype: DataType.Int32,
      value: -1,
    });

    await api.call('POST', '/devices/b1/commands', { body: { protocol: 'sparkplug', operation: 'rebirth' } });
    const r = api.published.at(-1)!;
    expect(r.topic).toBe('spBv1.0/grid/NCMD/b1');
    expect(decodePayload(r.payload).metrics[0]).toMatchObject({ name: 'Node Control/Rebirth', value: true });
  });
});

describe('command validation', () => {
  it('rejects bad command bodies naming the field, publishing nothing', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['b1', { protocol: 'coap' }, 'protocol'],
      ['b1', 'read', 'body'],
      ['e1', { protocol: 'lwm2m', operation: 'reboot', path: '/3/0/4' }, 'operation'],
      ['e1', { protocol: 'lwm2m', operation: 'read' }, 'path'],
      ['e1', { protocol: 'lwm2m', operation: 'read', path: '3/0/0' }, 'path'],
      ['e1', { protocol: 'lwm2m', operation: 'read', path: '/3/0/70000' }, 'path'],
      ['e1', { protocol: 'lwm2m', operation: 'read-composite', paths: [] }, 'paths'],
      ['e1', { protocol: 'lwm2m', operation: 'read-composite', paths: ['/3/0/0', 'x'] }, 'paths[1]'],
      ['e1', { protocol: 'lwm2m', operation: 'write', path: '/1/0/1' }, 'value'],
      ['e1', { protocol: 'lwm2m', operation: 'write', path: '/1/0/1', value: { a: 1 } }, 'value'],
      ['e1', { protocol: 'lwm2m', operation: 'write-composite', values: {} }, 'values'],
      ['e1', { protocol: 'lwm2m', operation: 'read', path: '/3/0/0', args: 'x' }, 'args'],
      [
        'e1',
        { protocol: 'lwm2m', operation: 'write-attributes', path: '/3/0/0', attributes: { pmin: 'x' } },
        'attributes.pmin',
      ],
      ['e1', { protocol: 'sparkplug', operation: 'rebirth' }, 'protocol'],
      ['b1', { protocol: 'sparkplug', operation: 'delete' }, 'operation'],
      ['b1', { protocol: 'sparkplug', operation: 'write', metrics: [] }, 'metrics'],
      [
        'b1',
        { protocol: 'sparkplug', operation: 'write', metrics: [{ type: 'Boolean', value: true }] },
        'metrics[0].name',
      ],
      [
        'b1',
        { protocol: 'sparkplug', operation: 'write', metrics: [{ name: 'a', type: 'DataSet', value: 1 }] },
        'metrics[0].type',
      ],
      [
        'b1',
        { protocol: 'sparkplug', operation: 'write', metrics: [{ name: 'a', type: 'Boolean', value: 1 }] },
        'metrics[0].value',
      ],
      [
        'b1',
        { protocol: 'sparkplug', operation: 'write', metrics: [{ name: 'a', type: 'Int8', value: 200 }] },
        'metrics[0].value',
      ],
      [
        'b1',
        { protocol: 'sparkplug', operation: 'write', metrics: [{ name: 'a', type: 'UInt32', value: 1.5 }] },
        'metrics[0].value',
      ],
      [
        'b1',
        {
          protocol: 'sparkplug',
          operation: 'write',
          device: 'a/b',
          metrics: [{ name: 'a', type: 'Boolean', value: true }],
        },
        'device',
      ],
      [
        'b1',
        {
          protocol: 'sparkplug',
          operation: 'write',
          device: 'ghost',
          metrics: [{ name: 'a', type: 'Boolean', value: true }],
        },
        'device',
      ],
    ];
    const before = api.published.length;
    for (const [id, body, field] of cases) {
      const res = await api.call('POST', `/devices/${id}/commands`, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field, JSON.stringify(body)).toBe(field);
    }
    expect(api.published.length).toBe(before);
  });

  it('refuses an LwM2M command to a device that never registered over LwM2M', async () => {
    await api.registry.putDevice({
      ...(await api.registry.getDevice('b1'))!,
      id: 'sp-only',
      protocols: ['sparkplug'],
      lwm2m: undefined,
    } as never);
    const res = await api.call('POST', '/devices/sp-only/commands', {
      body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('protocol');
    await api.registry.deleteDevice('sp-only');
  });
});
