import { describe, expect, it } from 'vitest';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { compressRecords, encodeSenml } from '../../functions/core/senml/index.js';
import { decodeLines } from '../../infra/cli/decode.js';

const T = 1_700_000_000_000;
const EP = 'urn:dev:os:00-ab';
const TOPIC = `lwm2m/rd/${EP}`;
const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const line = (m: Lwm2mMessage, receivedAt = T) => ({
  topic: TOPIC,
  payload: b64(encodeMessage(m)),
  receivedAt,
});

async function run(
  lines: unknown[],
): Promise<{ out: Array<Record<string, unknown>>; ok: number; failed: number }> {
  const out: string[] = [];
  async function* source() {
    for (const l of lines) yield typeof l === 'string' ? l : JSON.stringify(l);
  }
  const counts = await decodeLines(
    source(),
    (l) => out.push(l),
    () => T + 60_000,
  );
  return { out: out.map((l) => JSON.parse(l) as Record<string, unknown>), ...counts };
}

const sendPayload = encodeSenml(
  compressRecords([
    { name: '/3303/0/5700', time: T - 20_000, value: { kind: 'v', value: 21.25 } },
    { name: '/3303/0/5700', time: T - 10_000, value: { kind: 'v', value: 21.5 } },
    { name: '/3/0/9', time: T - 10_000, value: { kind: 'v', value: 80 } },
  ]),
  ContentFormat.SenmlCbor,
);

describe('dualpath decode: LwM2M envelopes', () => {
  it('prints register, send, update, op-23 send, stray response and deregister outcomes in order, with state carried', async () => {
    // Prepare
    const lines = [
      line({
        operation: Operation.Register,
        token: 1,
        ep: EP,
        lifetime: 300,
        version: '1.2',
        binding: 'M',
        payload: new TextEncoder().encode('</3/0>,</3303/0>'),
      }),
      line({
        operation: Operation.Send,
        token: 2,
        contentFormat: ContentFormat.SenmlCbor,
        payload: sendPayload,
      }),
      line({ operation: Operation.Update, token: 3, lifetime: 600 }),
      line({
        operation: Operation.Notify,
        token: 4,
        contentFormat: ContentFormat.SenmlJson,
        payload: new TextEncoder().encode('[{"n":"/3304/0/5700","v":55}]'),
      }),
      line({ result: 205, token: 999 }),
      line({ operation: Operation.Deregister, token: 5 }),
    ];
    // Act
    const { out, ok, failed } = await run(lines);
    // Assess
    expect([ok, failed]).toEqual([6, 0]);
    expect(out.map((o) => [o.ok, o.protocol, o.kind, o.endpoint])).toEqual([
      [true, 'lwm2m', 'register', EP],
      [true, 'lwm2m', 'send', EP],
      [true, 'lwm2m', 'update', EP],
      [true, 'lwm2m', 'send', EP],
      [true, 'lwm2m', 'ignored', EP],
      [true, 'lwm2m', 'deregister', EP],
    ]);
    expect(out[1]?.readings).toEqual([
      {
        metric: '/3303/0/5700',
        name: 'Temperature Sensor Value',
        unit: 'Cel',
        type: 'Float',
        value: 21.25,
        time: T - 20_000,
        historical: true,
        transient: false,
      },
      {
        metric: '/3303/0/5700',
        name: 'Temperature Sensor Value',
        unit: 'Cel',
        type: 'Float',
        value: 21.5,
        time: T - 10_000,
        historical: false,
        transient: false,
      },
      {
        metric: '/3/0/9',
        name: 'Device Battery Level',
        unit: '%',
        type: 'Integer',
        value: 80,
        time: T - 10_000,
        historical: false,
        transient: false,
      },
    ]);
    expect(out[3]?.readings).toEqual([
      expect.objectContaining({ metric: '/3304/0/5700', unit: '%RH', value: 55, time: T }),
    ]);
  });

  it('prints the server response actions on the endpoint topic with the decoded map', async () => {
    const { out } = await run([
      line({ operation: Operation.Register, token: 7, lifetime: 60, version: '1.2' }),
      line({ operation: Operation.Register, token: 8, lifetime: 60, version: '9.9' }),
    ]);
    const [ok201, bad412] = out.map((o) => (o.actions as Array<Record<string, unknown>>)[0]);
    expect(ok201).toMatchObject({ topic: TOPIC, qos: 1, describe: { result: 201, token: 7 } });
    expect(decodeMessage(Buffer.from(ok201?.payload as string, 'base64'))).toEqual({ result: 201, token: 7 });
    expect(bad412).toMatchObject({ describe: { result: 412, token: 8 } });
    expect(out[1]).toMatchObject({ events: [{ type: 'ignored' }] });
  });

  it('prints {"ok":false,"error":{code,message}} for bad lines and goes on', async () => {
    const { out, ok, failed } = await run([
      line({ operation: Operation.Register, token: 1, lifetime: 60, version: '1.2' }),
      { topic: TOPIC, payload: b64(new Uint8Array([0xa1, 0x01])) }, // truncated CBOR map
      { topic: TOPIC, payload: b64(new Uint8Array([0x83, 1, 2, 3])) }, // a CBOR array, not a map
      { topic: 'lwm2m/xx/ep', payload: '' },
      '{"topic": 5}',
      line({
        operation: Operation.Send,
        token: 2,
        contentFormat: ContentFormat.SenmlCbor,
        payload: sendPayload,
      }),
    ]);
    expect([ok, failed]).toEqual([2, 4]);
    expect(out.map((o) => o.ok)).toEqual([true, false, false, false, false, true]);
    for (const bad of out.slice(1, 5)) {
      expect(bad).toEqual({
        ok: false,
        error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }),
      });
    }
    expect(out[2]).toMatchObject({ error: { code: 'LWM2M_NOT_MAP' } });
    expect(out[5]).toMatchObject({ kind: 'send', readings: [{}, {}, {}] });
  });
});
