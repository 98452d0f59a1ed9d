/**
 * Redriven (late) LwM2M messages (ADR 0017): a Send yields its readings even after the endpoint
 * de-registered, with no answer to the device; registration operations are not applied (the state has
 * moved on since).
 */
import { describe, expect, it } from 'vitest';
import {
  ContentFormat,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../../../functions/core/lwm2m/message.js';
import { Lwm2mServer } from '../../../functions/core/lwm2m/server/server.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
} from '../../../functions/core/lwm2m/server/state.js';
import { compressRecords, encodeSenml } from '../../../functions/core/senml/index.js';

const T0 = 1_700_000_000_000;
const EP = 'sensor-1';

function setup() {
  const registrations = new InMemoryRegistrationStore();
  const pending = new InMemoryPendingRequestStore();
  const server = new Lwm2mServer({
    registrations,
    pending,
    clock: () => T0 + 60_000,
    requestTimeoutMs: 30_000,
  });
  const send = (m: Lwm2mMessage, at: number, redriveOf?: string) =>
    server.handle({
      topic: `lwm2m/rd/${EP}`,
      payload: encodeMessage(m),
      receivedAt: at,
      clientId: EP,
      ...(redriveOf ? { redriveOf } : {}),
    });
  return { registrations, send };
}

const register: Lwm2mMessage = {
  operation: Operation.Register,
  token: 1,
  ep: EP,
  lifetime: 300,
  version: '1.2',
  binding: 'M',
  payload: new TextEncoder().encode('</3303/0>'),
};
const sendMsg: Lwm2mMessage = {
  operation: Operation.Send,
  token: 7,
  contentFormat: ContentFormat.SenmlCbor,
  payload: encodeSenml(
    compressRecords([{ name: '/3303/0/5700', time: T0 + 10, value: { kind: 'v', value: 21.5 } }]),
    112,
  ),
};

describe('redriven LwM2M messages', () => {
  it('a Send redriven after the De-register still yields its readings, and the device gets no answer', async () => {
    const { send } = setup();
    await send(register, T0);
    await send({ operation: Operation.Deregister, token: 2 }, T0 + 20);
    const live = await send(sendMsg, T0 + 10);
    expect(live.readings).toEqual([]); // not registered: refused (404)
    const late = await send(sendMsg, T0 + 10, '4960001');
    expect(late.kind).toBe('send');
    expect(late.readings.map((r) => [r.metric, r.value])).toEqual([['/3303/0/5700', 21.5]]);
    expect(late.actions).toEqual([]);
  });

  it('a redriven Register is not applied: a later De-register stays in force', async () => {
    const { send, registrations } = setup();
    await send(register, T0);
    await send({ operation: Operation.Deregister, token: 2 }, T0 + 20);
    const late = await send(register, T0, '4960001');
    expect(late.kind).toBe('ignored');
    expect(late.actions).toEqual([]);
    expect(await registrations.get(EP)).toBeUndefined();
  });
});
