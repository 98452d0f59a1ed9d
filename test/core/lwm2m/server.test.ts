import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../functions/core/errors.js';
import {
  ContentFormat,
  decodeMessage,
  decodePaths,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../../../functions/core/lwm2m/message.js';
import { Lwm2mServer } from '../../../functions/core/lwm2m/server/server.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
  isRegistrationAlive,
} from '../../../functions/core/lwm2m/server/state.js';
import type { MessageOutcome } from '../../../functions/core/reading.js';
import { compressRecords, decodeSenml, encodeSenml } from '../../../functions/core/senml/index.js';

const T0 = 1_700_000_000_000;
const EP = 'sensor-1';
const text = (s: string) => new TextEncoder().encode(s);

function setup() {
  let now = T0;
  const registrations = new InMemoryRegistrationStore();
  const pending = new InMemoryPendingRequestStore();
  const server = new Lwm2mServer({ registrations, pending, clock: () => now, requestTimeoutMs: 30_000 });
  const send = (m: Lwm2mMessage, at?: number, topic = `lwm2m/rd/${EP}`): Promise<MessageOutcome> => {
    now = at ?? now + 1000;
    return server.handle({ topic, payload: encodeMessage(m), receivedAt: now, clientId: EP });
  };
  return { server, registrations, pending, send, setNow: (t: number) => (now = t) };
}

const register = (extra: Partial<Lwm2mMessage> = {}): Lwm2mMessage => ({
  operation: Operation.Register,
  token: 1,
  ep: EP,
  lifetime: 300,
  version: '1.2',
  binding: 'M',
  payload: text('</>;ct="110 112",</1/0>,</3/0>,</3303/0>;ver=1.1,</3303/1>'),
  ...extra,
});

const responseOf = (o: MessageOutcome) => decodeMessage(o.actions[0]!.payload);

function senmlSend(records: Array<{ name: string; time?: number; value: number }>, token = 7): Lwm2mMessage {
  return {
    operation: Operation.Send,
    token,
    contentFormat: ContentFormat.SenmlCbor,
    payload: encodeSenml(
      compressRecords(records.map((r) => ({ ...r, value: { kind: 'v' as const, value: r.value } }))),
      112,
    ),
  };
}

describe('LwM2M server: registration interface', () => {
  it('registers with the object list and answers 201 with the token', async () => {
    const { send, registrations } = setup();
    const out = await send(register());
    expect(out.kind).toBe('register');
    expect(responseOf(out)).toMatchObject({ result: 201, token: 1 });
    expect(out.actions[0]).toMatchObject({ topic: `lwm2m/rd/${EP}`, qos: 1 });
    const reg = await registrations.get(EP);
    expect(reg).toMatchObject({ lifetime: 300, lwm2mVersion: '1.2', binding: 'M', queueMode: false });
    expect(reg?.objects.objects.map((o) => o.id)).toEqual([1, 3, 3303]);
    expect(reg?.objects.objects.find((o) => o.id === 3303)).toMatchObject({
      version: '1.1',
      instances: [0, 1],
    });
  });

  it('answers 412 to an unsupported version and 400 to an endpoint mismatch', async () => {
    const { send } = setup();
    expect(responseOf(await send(register({ version: '2.0' })))).toMatchObject({ result: 412 });
    expect(responseOf(await send(register({ ep: 'someone-else' })))).toMatchObject({ result: 400 });
  });

  it('updates partially, refreshes liveness, and expires registrations after their lifetime', async () => {
    const { send, registrations } = setup();
    await send(register(), T0);
    const upd = await send({ operation: Operation.Update, token: 2, lifetime: 600 }, T0 + 200_000);
    expect(responseOf(upd)).toMatchObject({ result: 204, token: 2 });
    const reg = (await registrations.get(EP))!;
    expect(reg.lifetime).toBe(600);
    expect(reg.objects.objects).toHaveLength(3);
    expect(isRegistrationAlive(reg, T0 + 200_000 + 599_000)).toBe(true);
    expect(isRegistrationAlive(reg, T0 + 200_000 + 600_000)).toBe(false);
    const late = await send({ operation: Operation.Update, token: 3 }, T0 + 900_000);
    expect(responseOf(late)).toMatchObject({ result: 404 });
    expect(late.events.map((e) => e.type)).toEqual(['expired']);
  });

  it('replaces the object list on Update when one is sent (complete, not a delta)', async () => {
    const { send, registrations } = setup();
    await send(register());
    await send({ operation: Operation.Update, token: 2, payload: text('</3/0>,</3304/0>') });
    expect((await registrations.get(EP))?.objects.objects.map((o) => o.id)).toEqual([3, 3304]);
  });

  it('de-registers with 202 and 404 when not registered', async () => {
    const { send, registrations } = setup();
    await send(register());
    expect(responseOf(await send({ operation: Operation.Deregister, token: 9 }))).toMatchObject({
      result: 202,
    });
    expect(await registrations.get(EP)).toBeUndefined();
    expect(responseOf(await send({ operation: Operation.Deregister, token: 10 }))).toMatchObject({
      result: 404,
    });
  });
});

describe('LwM2M server: information reporting', () => {
  it('turns a SenML CBOR Send into readings with names and units, historical records at their own time, and answers 204', async () => {
    const { send } = setup();
    await send(register(), T0);
    const out = await send(
      senmlSend([
        { name: '/3303/0/5700', time: T0 - 60_000, value: 21.5 },
        { name: '/3303/0/5700', time: T0 - 30_000, value: 21.75 },
        { name: '/3303/1/5700', time: T0 - 30_000, value: 19 },
      ]),
      T0 + 1000,
    );
    expect(out.kind).toBe('send');
    expect(responseOf(out)).toMatchObject({ result: 204, token: 7 });
    expect(out.readings).toEqual([
      expect.objectContaining({
        metric: '/3303/0/5700',
        name: 'Temperature Sensor Value',
        unit: 'Cel',
        type: 'Float',
        value: 21.5,
        time: T0 - 60_000,
        historical: true,
      }),
      expect.objectContaining({ metric: '/3303/0/5700', value: 21.75, time: T0 - 30_000 }),
      expect.objectContaining({ metric: '/3303/1/5700', value: 19 }),
    ]);
  });

  it('accepts SenML JSON, and op 23 without an observation as Send (the spec example)', async () => {
    const { send } = setup();
    await send(register());
    const json = text(JSON.stringify([{ bn: '/3304/0/', n: '5700', v: 40 }]));
    const out = await send({
      operation: Operation.Notify,
      token: 99,
      contentFormat: ContentFormat.SenmlJson,
      payload: json,
    });
    expect(out.kind).toBe('send');
    expect(out.readings[0]).toMatchObject({
      metric: '/3304/0/5700',
      value: 40,
      unit: '%RH',
      historical: false,
    });
  });

  it('answers 404 to Send from an unregistered endpoint and 415 to a wrong content format', async () => {
    const { send } = setup();
    const unregistered = await send(senmlSend([{ name: '/3303/0/5700', value: 1 }]));
    expect(responseOf(unregistered)).toMatchObject({ result: 404 });
    expect(unregistered.readings).toEqual([]);
    await send(register());
    const wrong = await send({
      operation: Operation.Send,
      token: 3,
      contentFormat: ContentFormat.Text,
      payload: text('1'),
    });
    expect(responseOf(wrong)).toMatchObject({ result: 415 });
  });

  it('answers 400 to an undecodable Send payload and keeps it as a quarantined event', async () => {
    const { send } = setup();
    await send(register());
    const out = await send({
      operation: Operation.Send,
      token: 4,
      contentFormat: ContentFormat.SenmlCbor,
      payload: new Uint8Array([0x9f, 0x01]),
    });
    expect(responseOf(out)).toMatchObject({ result: 400 });
    expect(out.events.find((e) => e.type === 'quarantined')?.data).toMatchObject({ topic: `lwm2m/rd/${EP}` });
  });

  it('throws a DecodeError for a message that is not a binding CBOR map (the caller quarantines it)', async () => {
    const { server } = setup();
    await expect(
      server.handle({ topic: `lwm2m/rd/${EP}`, payload: new Uint8Array([0x01]), receivedAt: T0 }),
    ).rejects.toBeInstanceOf(DecodeError);
  });
});

describe('LwM2M server: device management and correlation', () => {
  it('builds a Read, correlates the response by token and decodes its text value', async () => {
    const { send, server } = setup();
    await send(register());
    const { token, action } = await server.buildRequest(EP, { operation: 'read', path: '/3/0/0' }, 'cmd-1');
    expect(decodeMessage(action.payload)).toMatchObject({ operation: Operation.Read, token, uri: '/3/0/0' });

    const out = await send({
      result: 205,
      token,
      contentFormat: ContentFormat.Text,
      payload: text('Open Mobile Alliance'),
    });
    expect(out.kind).toBe('response');
    const e = out.events.find((x) => x.type === 'response')!;
    expect(e.data).toMatchObject({ commandId: 'cmd-1', operation: 'read', result: 205, success: true });
    expect(out.readings[0]).toMatchObject({
      metric: '/3/0/0',
      name: 'Device Manufacturer',
      value: 'Open Mobile Alliance',
    });
  });

  it('creates an observation on a successful Observe and recognises its Notify; Cancel-Observe removes it', async () => {
    const { send, server, registrations } = setup();
    await send(register());
    const { token } = await server.buildRequest(EP, { operation: 'observe', path: '/3303/0/5700' });
    await send({
      result: 205,
      token,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml(compressRecords([{ name: '/3303/0/5700', value: { kind: 'v', value: 20 } }]), 112),
    });
    expect(Object.keys((await registrations.get(EP))!.observations)).toEqual([String(token)]);
    const notify = await send({
      operation: Operation.Notify,
      token,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml(compressRecords([{ name: '/3303/0/5700', value: { kind: 'v', value: 22 } }]), 112),
    });
    expect(notify.kind).toBe('notify');
    expect(notify.actions).toEqual([]);
    expect(notify.readings[0]).toMatchObject({ value: 22 });
    const cancel = await server.buildRequest(EP, { operation: 'cancel-observe', path: '/3303/0/5700' });
    expect(decodeMessage(cancel.action.payload)).toMatchObject({ operation: Operation.CancelObserve });
    expect((await registrations.get(EP))!.observations).toEqual({});
  });

  it('re-registering voids observations', async () => {
    const { send, server, registrations } = setup();
    await send(register());
    const { token } = await server.buildRequest(EP, { operation: 'observe', path: '/3/0/9' });
    await send({ result: 205, token });
    await send(register({ token: 50 }));
    expect((await registrations.get(EP))!.observations).toEqual({});
  });

  it('builds composite, write, execute and write-attributes requests', async () => {
    const { server } = setup();
    const rc = await server.buildRequest(EP, {
      operation: 'read-composite',
      paths: ['/3/0/0', '/3303/0/5700'],
    });
    expect(decodePaths(decodeMessage(rc.action.payload).paths!)).toEqual(['/3/0/0', '/3303/0/5700']);
    const w = decodeMessage(
      (await server.buildRequest(EP, { operation: 'write', path: '/1/0/1', value: 600 })).action.payload,
    );
    expect(w).toMatchObject({ operation: Operation.WriteReplace, uri: '/1/0/1', contentFormat: 112 });
    expect(decodeSenml(w.payload!, 112, { receivedAt: T0 })[0]).toMatchObject({
      name: '/1/0/1',
      value: { kind: 'v', value: 600 },
    });
    const x = decodeMessage(
      (await server.buildRequest(EP, { operation: 'execute', path: '/3/0/4', args: "0='now'" })).action
        .payload,
    );
    expect(x).toMatchObject({ operation: Operation.Execute, uri: '/3/0/4', contentFormat: 0 });
    const wa = decodeMessage(
      (
        await server.buildRequest(EP, {
          operation: 'write-attributes',
          path: '/3303/0/5700',
          attributes: { pmin: 10, pmax: 60, st: 0.5 },
        })
      ).action.payload,
    );
    expect(wa).toMatchObject({ operation: Operation.WriteAttributes, pmin: 10, pmax: 60, st: 0.5 });
    await expect(server.buildRequest(EP, { operation: 'read' })).rejects.toMatchObject({ field: 'path' });
  });

  it('allocates tokens unique among pending requests and expires them after the timeout', async () => {
    const { server, setNow } = setup();
    const tokens = new Set<number>();
    for (let i = 0; i < 500; i++)
      tokens.add((await server.buildRequest(EP, { operation: 'read', path: '/3/0/9' }, `c${i}`)).token);
    expect(tokens.size).toBe(500);
    setNow(T0 + 31_000);
    const expired = await server.expirePending();
    expect(expired).toHaveLength(500);
    expect(expired[0]?.commandId).toBe('c0');
  });

  it('ignores responses with no pending request and echoes of its own requests', async () => {
    const { send } = setup();
    await send(register());
    const stray = await send({ result: 204, token: 12345 });
    expect(stray.kind).toBe('ignored');
    const echo = await send({ operation: Operation.Read, token: 5, uri: '/3/0/0' });
    expect(echo.kind).toBe('ignored');
    expect(echo.actions).toEqual([]);
  });

  it('reports the bootstrap interface as unsupported', async () => {
    const { send } = setup();
    const out = await send({ operation: 0, token: 1 }, undefined, `lwm2m/bs/${EP}`);
    expect(out.kind).toBe('bootstrap');
    expect(responseOf(out)).toMatchObject({ result: 501 });
    expect(out.actions[0]?.topic).toBe(`lwm2m/bs/${EP}`);
  });
});
