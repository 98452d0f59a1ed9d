import { describe, expect, it } from 'vitest';
import { ContentFormat, encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { compressRecords, encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { decodeLines } from '../../infra/cli/decode.js';

const T = 1_700_000_000_000;
const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

async function run(lines: unknown[]): Promise<Array<Record<string, unknown>>> {
  const out: string[] = [];
  async function* source() {
    for (const l of lines) yield typeof l === 'string' ? l : JSON.stringify(l);
  }
  await decodeLines(
    source(),
    (line) => out.push(line),
    () => T + 10_000,
  );
  return out.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('dualpath decode', () => {
  it('carries Sparkplug state across lines: the birth resolves a later alias-only DDATA', async () => {
    const out = await run([
      {
        topic: 'spBv1.0/plant/NBIRTH/edge',
        payload: b64(
          encodePayload({
            timestamp: T,
            seq: 0,
            metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 0 }],
          }),
        ),
        receivedAt: T,
      },
      {
        topic: 'spBv1.0/plant/DBIRTH/edge/pump',
        payload: b64(
          encodePayload({
            timestamp: T,
            seq: 1,
            metrics: [{ name: 'Pressure', alias: 3, datatype: DataType.Int16, value: 1, timestamp: T }],
          }),
        ),
        receivedAt: T,
      },
      {
        topic: 'spBv1.0/plant/DDATA/edge/pump',
        payload: b64(
          encodePayload({
            timestamp: T,
            seq: 2,
            metrics: [
              {
                alias: 3,
                datatype: DataType.Int16,
                raw: { field: 'int', value: 0xffa9 },
                omitDatatype: true,
                timestamp: T,
              },
            ],
          }),
        ),
        receivedAt: T,
      },
    ]);
    expect(out[2]).toEqual({
      ok: true,
      protocol: 'sparkplug',
      kind: 'DDATA',
      group: 'plant',
      node: 'edge',
      device: 'pump',
      readings: [
        {
          metric: 'Pressure',
          device: 'pump',
          type: 'Int16',
          value: -87,
          time: T,
          historical: false,
          transient: false,
        },
      ],
      events: [],
      actions: [],
    });
  });

  it('prints 64-bit integers beyond 2^53 as decimal strings and bytes as base64', async () => {
    const out = await run([
      {
        topic: 'spBv1.0/g/NBIRTH/n',
        payload: b64(
          encodePayload({
            timestamp: T,
            seq: 0,
            metrics: [
              { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
              { name: 'Big', datatype: DataType.UInt64, value: 18_446_744_073_709_551_615n, timestamp: T },
              { name: 'Blob', datatype: DataType.Bytes, value: new Uint8Array([1, 2, 3]), timestamp: T },
            ],
          }),
        ),
      },
    ]);
    const readings = out[0]?.readings as Array<{ metric: string; value: unknown }>;
    expect(readings.find((r) => r.metric === 'Big')?.value).toBe('18446744073709551615');
    expect(readings.find((r) => r.metric === 'Blob')?.value).toBe('AQID');
  });

  it('decodes LwM2M register and a SenML CBOR Send with path, name, unit, type, value and time', async () => {
    const out = await run([
      {
        topic: 'lwm2m/rd/ep1',
        payload: b64(
          encodeMessage({
            operation: Operation.Register,
            token: 1,
            ep: 'ep1',
            lifetime: 60,
            version: '1.2',
            payload: new TextEncoder().encode('</3303/0>'),
          }),
        ),
        receivedAt: T,
      },
      {
        topic: 'lwm2m/rd/ep1',
        payload: b64(
          encodeMessage({
            operation: Operation.Send,
            token: 2,
            contentFormat: ContentFormat.SenmlCbor,
            payload: encodeSenml(
              compressRecords([{ name: '/3303/0/5700', time: T - 5000, value: { kind: 'v', value: 21.5 } }]),
              112,
            ),
          }),
        ),
        receivedAt: T,
      },
    ]);
    expect(out[0]).toMatchObject({ ok: true, protocol: 'lwm2m', kind: 'register', endpoint: 'ep1' });
    expect(out[1]).toMatchObject({
      ok: true,
      protocol: 'lwm2m',
      kind: 'send',
      endpoint: 'ep1',
      readings: [
        {
          metric: '/3303/0/5700',
          name: 'Temperature Sensor Value',
          unit: 'Cel',
          type: 'Float',
          value: 21.5,
          time: T - 5000,
          historical: false, // the newest (only) value of its path answers latest (ADR 0005)
        },
      ],
    });
  });

  it('reports a bad line with code and message and goes on with the next', async () => {
    const out = await run([
      'not json',
      { topic: 'spBv1.0/g/NDATA/n', payload: 'AAEC' },
      { topic: 'lwm2m/rd/ep', payload: '!!' },
      { topic: 'somewhere/else', payload: '' },
      {
        topic: 'spBv1.0/STATE/host',
        payload: b64(new TextEncoder().encode('{"online":false,"timestamp":1}')),
      },
    ]);
    expect(out.map((o) => o.ok)).toEqual([false, false, false, false, true]);
    expect(out.map((o) => (o.error as { code?: string } | undefined)?.code)).toEqual([
      'ENVELOPE_JSON',
      'SPARKPLUG_MALFORMED',
      'ENVELOPE_FIELD',
      'TOPIC_UNKNOWN',
      undefined,
    ]);
    expect(out[2]?.error).toMatchObject({ field: 'payload' });
  });
});
