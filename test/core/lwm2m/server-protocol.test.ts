import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../../functions/core/cbor/index.js';
import { ProtocolError } from '../../../functions/core/errors.js';
import { encodeLwm2mCbor } from '../../../functions/core/lwm2m/lwm2m-cbor.js';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../../../functions/core/lwm2m/message.js';
import type { RequestSpec } from '../../../functions/core/lwm2m/server/requests.js';
import { Lwm2mServer } from '../../../functions/core/lwm2m/server/server.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
  isRegistrationAlive,
} from '../../../functions/core/lwm2m/server/state.js';
import type { MessageOutcome } from '../../../functions/core/reading.js';
import { compressRecords, encodeSenml, type SenmlValue } from '../../../functions/core/senml/index.js';

const T0 = 1_700_000_000_000;
const EP = 'meter-7';
const TOPIC = `lwm2m/rd/${EP}`;
const text = (s: string) => new TextEncoder().encode(s);
const v = (value: number): SenmlValue => ({ kind: 'v', value });

function setup() {
  let now = T0;
  const registrations = new InMemoryRegistrationStore();
  const pending = new InMemoryPendingRequestStore();
  const server = new Lwm2mServer({ registrations, pending, clock: () => now, requestTimeoutMs: 30_000 });
  const deliver = (payload: Uint8Array, opts: { at?: number; clientId?: string; topic?: string } = {}) => {
    now = opts.at ?? now + 1000;
    return server.handle({
      topic: opts.topic ?? TOPIC,
      payload,
      receivedAt: now,
      clientId: 'clientId' in opts ? opts.clientId : EP,
    } as Parameters<Lwm2mServer['handle']>[0]);
  };
  const send = (m: Lwm2mMessage, opts: { at?: number; clientId?: string; topic?: string } = {}) =>
    deliver(encodeMessage(m), opts);
  return { server, registrations, pending, send, deliver, setNow: (t: number) => (now = t) };
}

const register = (extra: Partial<Lwm2mMessage> = {}): Lwm2mMessage => ({
  operation: Operation.Register,
  token: 1,
  lifetime: 120,
  version: '1.2',
  binding: 'M',
  payload: text('</1/0>,</3/0>,</3303/0>,</3303/1>,</3304/0>'),
  ...extra,
});
const responseOf = (o: MessageOutcome) => decodeMessage(o.actions[0]!.payload);
const reasonOf = (o: MessageOutcome) => new TextDecoder().decode(responseOf(o).payload);
const senml = (records: { name: string; time?: number; value: SenmlValue }[]) =>
  encodeSenml(compressRecords(records), ContentFormat.SenmlCbor);

describe('LwM2M server: Register validation', () => {
  it('stores binding, queue mode, SMS and defaults the lifetime to 86400 s when absent', async () => {
    const { send, registrations } = setup();
    const { lifetime: _omit, ...noLifetime } = register({ binding: 'UQ', sms: '+15550100' });
    const out = await send(noLifetime);
    expect(responseOf(out)).toEqual({ result: 201, token: 1 });
    expect(await registrations.get(EP)).toMatchObject({
      lifetime: 86_400,
      binding: 'UQ',
      queueMode: true,
      sms: '+15550100',
      lwm2mVersion: '1.2',
    });
  });

  it.each<[string, number, Partial<Lwm2mMessage>, RegExp]>([
    ['a missing version', 400, { version: undefined }, /version/],
    ['an unsupported major version', 412, { version: '2.0' }, /unsupported LwM2M version 2\.0/],
    ['a binding with an unknown letter', 400, { binding: 'MX' }, /binding "MX"/],
    ['an object list that is not link format', 400, { payload: text('3/0,</4/0') }, /object list/],
    ['an ep that differs from the topic endpoint', 400, { ep: 'someone-else' }, /does not match/],
  ])('answers %s with %i and a text reason, storing nothing', async (_name, code, extra, reason) => {
    const { send, registrations } = setup();
    const m = register({ token: 77, ...extra });
    if ('version' in extra && extra.version === undefined) delete m.version;
    const out = await send(m);
    expect(responseOf(out)).toMatchObject({ result: code, token: 77, contentFormat: ContentFormat.Text });
    expect(reasonOf(out)).toMatch(reason);
    expect(out.events.length).toBeGreaterThan(0);
    expect(await registrations.get(EP)).toBeUndefined();
  });

  it('answers 400 to a Register whose field has the wrong CBOR type, and keeps it as a quarantined event', async () => {
    // Prepare: lifetime (key 8) as text: a binding map, but not a valid Register.
    const payload = encodeCbor(
      new Map<number, string | number>([
        [1, Operation.Register],
        [2, 9],
        [8, 'forever'],
        [9, '1.2'],
      ]),
    );
    const { deliver, registrations } = setup();
    // Act
    const out = await deliver(payload);
    // Assess
    expect(out.kind).toBe('rejected');
    expect(responseOf(out)).toMatchObject({ result: 400, token: 9 });
    expect(reasonOf(out)).toMatch(/lifetime/);
    expect(out.events[0]).toMatchObject({ type: 'quarantined', data: { topic: TOPIC } });
    expect(await registrations.get(EP)).toBeUndefined();
  });

  it('lets a mistyped message that is not a device request propagate for quarantine', async () => {
    const { deliver } = setup();
    const bad = encodeCbor(
      new Map<number, string | number>([
        [18, 'ok'],
        [2, 1],
      ]),
    );
    await expect(deliver(bad)).rejects.toMatchObject({ code: 'LWM2M_KEY_TYPE' });
  });

  it('throws a ProtocolError for a topic that is not the binding grammar', async () => {
    const { send } = setup();
    await expect(send(register(), { topic: 'lwm2m/rd' })).rejects.toBeInstanceOf(ProtocolError);
  });

  it('answers 405 to an operation a device may not send on the registration interface', async () => {
    const { send } = setup();
    const out = await send({ operation: 5, token: 3 });
    expect(responseOf(out)).toMatchObject({ result: 405, token: 3 });
  });
});

describe('LwM2M server: lifetimes', () => {
  it('keeps a lifetime-0 registration alive forever and expires others at lastUpdate + lifetime', async () => {
    const { send, registrations } = setup();
    await send(register({ lifetime: 0 }), { at: T0 });
    const forever = (await registrations.get(EP))!;
    expect(isRegistrationAlive(forever, T0 + 10 * 365 * 86_400_000)).toBe(true);
    await send(register({ lifetime: 120 }), { at: T0 });
    const reg = (await registrations.get(EP))!;
    expect(isRegistrationAlive(reg, T0 + 119_999)).toBe(true);
    expect(isRegistrationAlive(reg, T0 + 120_000)).toBe(false);
  });

  it('answers 404 with an expired event to Update, Send and Notify from an expired registration', async () => {
    // Prepare: a registration with an observation, then silence past its lifetime.
    const { send, server } = setup();
    await send(register({ lifetime: 60 }), { at: T0 });
    const { token } = await server.buildRequest(EP, { operation: 'observe', path: '/3303/0/5700' });
    await send({ result: 205, token }, { at: T0 + 1000 });
    const late = T0 + 61_000;
    // Act
    const update = await send({ operation: Operation.Update, token: 2 }, { at: late });
    const sent = await send(
      {
        operation: Operation.Send,
        token: 3,
        contentFormat: 112,
        payload: senml([{ name: '/3303/0/5700', value: v(1) }]),
      },
      { at: late + 1 },
    );
    const notify = await send(
      {
        operation: Operation.Notify,
        token,
        contentFormat: 112,
        payload: senml([{ name: '/3303/0/5700', value: v(2) }]),
      },
      { at: late + 2 },
    );
    // Assess
    for (const out of [update, sent, notify]) {
      expect(responseOf(out).result).toBe(404);
      expect(out.events.map((e) => e.type)).toContain('expired');
      expect(out.readings).toEqual([]);
    }
  });

  it('answers 404 to an Update without any registration', async () => {
    const { send } = setup();
    const out = await send({ operation: Operation.Update, token: 4 });
    expect(out.kind).toBe('update');
    expect(responseOf(out)).toMatchObject({ result: 404, token: 4 });
  });
});

describe('LwM2M server: Send payload formats and times', () => {
  it('decodes an LwM2M CBOR (11544) Send into readings', async () => {
    const { send } = setup();
    await send(register());
    const out = await send({
      operation: Operation.Send,
      token: 5,
      contentFormat: ContentFormat.Lwm2mCbor,
      payload: encodeLwm2mCbor([
        { name: '/3303/0/5700', value: v(18.5) },
        { name: '/3304/0/5700', value: v(61) },
      ]),
    });
    expect(responseOf(out)).toEqual({ result: 204, token: 5 });
    expect(out.readings.map((r) => [r.metric, r.value, r.unit, r.historical])).toEqual([
      ['/3303/0/5700', 18.5, 'Cel', false],
      ['/3304/0/5700', 61, '%RH', false],
    ]);
  });

  it('resolves relative SenML times (below 2^28 s) against the receipt time', async () => {
    const { send } = setup();
    await send(register());
    const at = T0 + 50_000;
    const payload = encodeSenml(
      [
        { bn: '/3303/0/', bt: -60, n: '5700', v: 20 },
        { n: '5700', t: 30, v: 21 },
        { n: '5700', t: 60, v: 22 },
      ],
      ContentFormat.SenmlCbor,
    );
    const out = await send({ operation: Operation.Send, token: 6, contentFormat: 112, payload }, { at });
    expect(out.readings.map((r) => [r.value, r.time, r.historical])).toEqual([
      [20, at - 60_000, true],
      [21, at - 30_000, true],
      [22, at, false],
    ]);
  });

  it('keeps every sample of a bulk SenML JSON Send with absolute times', async () => {
    const { send } = setup();
    await send(register());
    const bt = 1_699_990_000;
    const json = JSON.stringify([
      { bn: '/3303/0/5700', bt, v: 10 },
      { t: 10, v: 11 },
      { t: 20, v: 12 },
      { n: '', t: 30, v: 13 },
    ]);
    const out = await send({ operation: Operation.Send, token: 8, contentFormat: 110, payload: text(json) });
    expect(out.readings.map((r) => [r.time, r.value])).toEqual([
      [bt * 1000, 10],
      [(bt + 10) * 1000, 11],
      [(bt + 20) * 1000, 12],
      [(bt + 30) * 1000, 13],
    ]);
    expect(out.readings.filter((r) => r.historical)).toHaveLength(3);
  });
});

describe('LwM2M server: correlation and echoes', () => {
  it('ignores everything published on the topic by another client id (our own publishes coming back)', async () => {
    const { send, server, pending } = setup();
    await send(register());
    const { token, action } = await server.buildRequest(EP, { operation: 'read', path: '/3/0/0' });
    const echoRequest = await send(decodeMessage(action.payload), { clientId: 'n/a' });
    const fakeAnswer = await send(
      { result: 205, token, contentFormat: 0, payload: text('x') },
      { clientId: 'n/a' },
    );
    expect([echoRequest.kind, fakeAnswer.kind]).toEqual(['ignored', 'ignored']);
    expect(fakeAnswer.readings).toEqual([]);
    expect(await pending.take(EP, token)).toBeDefined();
  });

  it('treats every request it builds, echoed back without a client id, as its own echo', async () => {
    const { send, server } = setup();
    await send(register());
    const specs: RequestSpec[] = [
      { operation: 'read', path: '/3/0/0' },
      { operation: 'read-composite', paths: ['/3/0/0', '/3/0/9'] },
      { operation: 'discover', path: '/3' },
      { operation: 'write', path: '/1/0/1', value: 60 },
      { operation: 'write-partial', path: '/1/0', values: { '/1/0/2': 5 } },
      { operation: 'write-composite', values: { '/1/0/1': 60 } },
      { operation: 'execute', path: '/3/0/4' },
      { operation: 'observe', path: '/3303/0/5700' },
      { operation: 'observe-composite', paths: ['/3303/0/5700', '/3304/0/5700'] },
      { operation: 'cancel-observe', path: '/3303/0/5700' },
      { operation: 'write-attributes', path: '/3303/0/5700', attributes: { pmax: 60 } },
    ];
    for (const spec of specs) {
      const { action } = await server.buildRequest(EP, spec);
      const out = await send(decodeMessage(action.payload), { clientId: undefined });
      expect(out.kind, spec.operation).toBe('ignored');
      expect(out.actions, spec.operation).toEqual([]);
    }
  });

  it('does not take our own 201/204 echoes for the answer of a pending request with the same token', async () => {
    // Prepare: the device registers with token 1; before our 201 comes back, a Read gets token 1 too.
    const { send, server } = setup();
    const registered = await send(register({ token: 1 }));
    const { token } = await server.buildRequest(EP, { operation: 'read', path: '/3/0/9' }, 'cmd-9');
    expect(token).toBe(1);
    const updated = await send({ operation: Operation.Update, token: 1 });
    // Act: our 201 and 204 come back (no client id known), then the device's real answer.
    const echo201 = await send(decodeMessage(registered.actions[0]!.payload), { clientId: undefined });
    const echo204 = await send(decodeMessage(updated.actions[0]!.payload), { clientId: undefined });
    const answer = await send({ result: 205, token: 1, contentFormat: 0, payload: text('77') });
    // Assess
    expect(echo201.kind).toBe('ignored');
    expect(echo204.kind).toBe('ignored');
    expect(answer.kind).toBe('response');
    expect(answer.events.find((e) => e.type === 'response')?.data).toMatchObject({ commandId: 'cmd-9' });
    expect(answer.readings[0]).toMatchObject({ metric: '/3/0/9', type: 'Integer', value: 77 });
  });

  it('completes a request with an error result and reports its reason', async () => {
    const { send, server } = setup();
    await send(register());
    const { token } = await server.buildRequest(EP, { operation: 'execute', path: '/3/0/4' }, 'reboot-1');
    const out = await send({ result: 405, token, contentFormat: 0, payload: text('not executable') });
    expect(out.kind).toBe('response');
    expect(out.events[0]?.data).toMatchObject({
      commandId: 'reboot-1',
      operation: 'execute',
      result: 405,
      success: false,
      reason: 'not executable',
    });
    // Completed: the same answer again is a stray.
    expect((await send({ result: 405, token })).kind).toBe('ignored');
  });

  it('observes a composite, recognises its Notify with every path, and cancels it by path list', async () => {
    const { send, server, registrations } = setup();
    await send(register());
    const paths = ['/3303/0/5700', '/3304/0/5700'];
    const { token } = await server.buildRequest(EP, { operation: 'observe-composite', paths }, 'obs-1');
    const first = await send({
      result: 205,
      token,
      contentFormat: 112,
      payload: senml([
        { name: paths[0]!, value: v(20) },
        { name: paths[1]!, value: v(50) },
      ]),
    });
    expect(first.readings).toHaveLength(2);
    const notify = await send({
      operation: Operation.Notify,
      token,
      contentFormat: 112,
      payload: senml([
        { name: paths[0]!, value: v(21) },
        { name: paths[1]!, value: v(51) },
      ]),
    });
    expect(notify.kind).toBe('notify');
    expect(notify.actions).toEqual([]);
    expect(notify.events[0]?.data).toMatchObject({ commandId: 'obs-1', paths });
    expect(notify.readings.map((r) => r.value)).toEqual([21, 51]);
    // Cancelling one path of it is not cancelling it; the whole list is.
    await server.buildRequest(EP, { operation: 'cancel-observe', path: paths[0]! });
    expect(Object.keys((await registrations.get(EP))!.observations)).toEqual([String(token)]);
    await server.buildRequest(EP, { operation: 'cancel-observe', paths });
    expect((await registrations.get(EP))!.observations).toEqual({});
  });

  it('De-register voids pending requests: a late answer is then ignored', async () => {
    const { send, server } = setup();
    await send(register());
    const { token } = await server.buildRequest(EP, { operation: 'read', path: '/3/0/0' });
    const dereg = await send({ operation: Operation.Deregister, token: 2 });
    expect(responseOf(dereg)).toEqual({ result: 202, token: 2 });
    expect((await send({ result: 205, token, contentFormat: 0, payload: text('x') })).kind).toBe('ignored');
  });

  it('stores no pending request for a request it cannot build', async () => {
    const { server, setNow } = setup();
    await expect(
      server.buildRequest(
        EP,
        { operation: 'write-attributes', path: '/3/0/9', attributes: { pmin: -5 } },
        'bad',
      ),
    ).rejects.toMatchObject({ field: 'attributes.pmin' });
    setNow(T0 + 3_600_000);
    expect(await server.expirePending()).toEqual([]);
  });

  it('shows the decoded request in the publish action', async () => {
    const { server } = setup();
    const { action, token } = await server.buildRequest(EP, {
      operation: 'execute',
      path: '/3/0/4',
      args: '5',
    });
    expect(action).toMatchObject({ kind: 'publish', topic: TOPIC, qos: 1 });
    expect(action.describe).toMatchObject({ operation: '16 Execute', token, uri: '/3/0/4', payload: '5' });
  });

  it('does not answer a response on the bootstrap topic', async () => {
    const { send } = setup();
    const out = await send({ result: 204, token: 1 }, { topic: `lwm2m/bs/${EP}` });
    expect(out.kind).toBe('bootstrap');
    expect(out.actions).toEqual([]);
    expect(out.events[0]?.detail).toMatch(/bootstrap/);
  });
});
