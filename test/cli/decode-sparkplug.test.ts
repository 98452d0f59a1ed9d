/**
 * `dualpath decode` on a Sparkplug session: exact output lines for births, alias-only DDATA, a rebirth
 * request, STATE, and bad lines (the run goes on after them).
 */
import { describe, expect, it } from 'vitest';
import { decodePayload, encodePayload, type SpPayloadInput } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { decodeLines } from '../../infra/cli/decode.js';
import {
  byAlias,
  DEVICE,
  data,
  dbirth,
  GROUP,
  NODE,
  nbirth,
  T0,
  topicOf,
} from '../fixtures/sparkplug-host/session.js';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const line = (type: string, payload: SpPayloadInput, device?: string, receivedAt = T0 + 50) =>
  JSON.stringify({ topic: topicOf(type, device), payload: b64(encodePayload(payload)), receivedAt });

async function run(lines: string[]): Promise<{ out: string[]; counts: { ok: number; failed: number } }> {
  const out: string[] = [];
  async function* source() {
    yield* lines;
  }
  const counts = await decodeLines(
    source(),
    (l) => out.push(l),
    () => T0 + 60_000,
  );
  return { out, counts };
}

describe('dualpath decode: Sparkplug session', () => {
  it('prints one exact line per input: births, alias-only DDATA, bad lines, and goes on', async () => {
    const { out, counts } = await run([
      line('NBIRTH', nbirth(0)),
      line('DBIRTH', dbirth(1), DEVICE),
      'this is not json',
      JSON.stringify({
        topic: topicOf('DDATA', DEVICE),
        payload: b64(new Uint8Array([0x0a, 0xff])),
        receivedAt: T0,
      }),
      line(
        'DDATA',
        data(2, [
          {
            alias: 10,
            datatype: DataType.Int16,
            raw: { field: 'int', value: 0xffa9 },
            omitDatatype: true,
            timestamp: T0,
          },
        ]),
        DEVICE,
      ),
    ]);

    expect(counts).toEqual({ ok: 3, failed: 2 });
    expect(out).toHaveLength(5);
    // The alias-only DDATA, resolved with the name and datatype from the DBIRTH (byte-exact line).
    expect(out[4]).toBe(
      JSON.stringify({
        ok: true,
        protocol: 'sparkplug',
        kind: 'DDATA',
        group: GROUP,
        node: NODE,
        device: DEVICE,
        readings: [
          {
            metric: 'Pressure',
            device: DEVICE,
            unit: 'kPa',
            type: 'Int16',
            value: -87,
            time: T0,
            historical: false,
            transient: false,
          },
        ],
        events: [],
        actions: [],
      }),
    );
    const nb = JSON.parse(out[0]!);
    expect(nb).toMatchObject({ ok: true, kind: 'NBIRTH', group: GROUP, node: NODE, actions: [] });
    expect(nb.device).toBeUndefined();
    expect(nb.readings).toEqual([
      { metric: 'Uptime', type: 'Int64', value: 5, time: T0, historical: false, transient: false },
    ]);
    expect(nb.events.map((e: { type: string }) => e.type)).toEqual(['birth']);
    const db = JSON.parse(out[1]!);
    expect(db.readings.map((r: { metric: string }) => r.metric)).toEqual([
      'Pressure',
      'Running',
      'Pump1/Speed',
      'Pump1/Amps',
      'Pump1/Bearing/Temp',
    ]);
    expect(JSON.parse(out[2]!)).toEqual({
      ok: false,
      error: { code: 'ENVELOPE_JSON', message: expect.stringContaining('line is not JSON') },
    });
    // Protobuf garbage on a valid topic: the codec's DecodeError, with the field it stopped at.
    expect(JSON.parse(out[3]!)).toEqual({
      ok: false,
      error: {
        code: 'SPARKPLUG_MALFORMED',
        message: expect.stringContaining('Payload field 1'),
        field: 'Payload field 1',
      },
    });
  });

  it('prints the rebirth request of an unknown alias with its topic, QoS, reason and base64 payload', async () => {
    const { out } = await run([
      line('NBIRTH', nbirth(0)),
      line('DBIRTH', dbirth(1), DEVICE),
      line(
        'DDATA',
        data(2, [byAlias(99, DataType.Int32, 1), byAlias(11, DataType.Boolean, false)]),
        DEVICE,
        T0 + 70,
      ),
    ]);
    const dd = JSON.parse(out[2]!);
    expect(dd.readings).toEqual([
      {
        metric: 'Running',
        device: DEVICE,
        type: 'Boolean',
        value: false,
        time: T0 + 100,
        historical: false,
        transient: false,
      },
    ]);
    expect(dd.events.map((e: { type: string }) => e.type)).toEqual(['ignored', 'rebirth-requested']);
    expect(dd.events[0].data).toEqual({ unknown: ['alias 99'] });
    expect(dd.actions).toHaveLength(1);
    const action = dd.actions[0];
    expect(action).toMatchObject({
      topic: `spBv1.0/${GROUP}/NCMD/${NODE}`,
      qos: 0,
      reason: 'rebirth: unknown metric or alias: alias 99',
      describe: { metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }] },
    });
    const ncmd = decodePayload(new Uint8Array(Buffer.from(action.payload, 'base64')));
    expect(ncmd.metrics[0]).toMatchObject({ name: 'Node Control/Rebirth', value: true });
    expect(ncmd.seq).toBeUndefined();
  });

  it('prints STATE as a state event without touching protobuf, and an unparsable one as an error', async () => {
    const state = (text: string) =>
      JSON.stringify({
        topic: 'spBv1.0/STATE/scada',
        payload: b64(new TextEncoder().encode(text)),
        receivedAt: T0,
      });
    const { out, counts } = await run([state('{"online":true,"timestamp":1700000000000}'), state('ONLINE')]);
    expect(counts).toEqual({ ok: 1, failed: 1 });
    expect(JSON.parse(out[0]!)).toEqual({
      ok: true,
      protocol: 'sparkplug',
      kind: 'STATE',
      node: 'scada',
      readings: [],
      events: [
        {
          type: 'state',
          protocol: 'sparkplug',
          deviceId: 'scada',
          time: T0,
          detail: 'host scada online',
          data: { online: true, timestamp: T0 },
        },
      ],
      actions: [],
    });
    expect(JSON.parse(out[1]!).error).toEqual({
      code: 'SPARKPLUG_STATE_INVALID',
      message: 'Sparkplug STATE is not UTF-8 JSON',
      field: 'STATE',
    });
  });
});
