/**
 * Deliberately bad messages, to exercise quarantine on the cloud side. Each is built so that the real
 * decoders MUST reject it (the tests check that with the shared codecs):
 *  - Sparkplug: garbage protobuf (an invalid wire type up front), a valid DDATA truncated inside a
 *    metric, and a "wrong type" metric (datatype Float carrying a string_value);
 *  - LwM2M: a Send truncated mid-CBOR, garbage that is not CBOR, and a message with wrongly typed keys
 *    (token as a text string, operation as a string).
 */
import { encodeCbor } from '../functions/core/cbor/index.js';
import type { SenmlValue } from '../functions/core/senml/index.js';
import { encodePayload } from '../functions/core/sparkplug/codec.js';
import { DataType } from '../functions/core/sparkplug/types.js';
import { sparkplugTopic } from '../functions/core/topics.js';
import type { Lwm2mClient } from './lwm2m-client.js';
import type { Rng } from './rng.js';
import type { SparkplugNode } from './sparkplug-node.js';

export type BadSparkplugKind = 'garbage-protobuf' | 'truncated-protobuf' | 'wrong-type';
export type BadLwm2mKind = 'truncated-cbor' | 'garbage-cbor' | 'wrong-key-types';

export function badSparkplug(
  node: SparkplugNode,
  device: string,
  now: number,
  rng: Rng,
  kind: BadSparkplugKind = (['garbage-protobuf', 'truncated-protobuf', 'wrong-type'] as const)[
    rng.int(0, 2)
  ]!,
): { topic: string; payload: Uint8Array; kind: BadSparkplugKind } {
  const topic = sparkplugTopic(node.group, 'DDATA', node.node, device);
  const signal = node.signalsOf(device)[0];
  const alias = signal ? (node.aliasOf(signal.key) ?? 1) : 1;
  switch (kind) {
    case 'garbage-protobuf': {
      // 0x0f = field 1 with wire type 7, which does not exist: no decoder can accept this.
      const bytes = new Uint8Array(8 + rng.int(0, 24));
      for (let i = 1; i < bytes.length; i++) bytes[i] = rng.int(0, 255);
      bytes[0] = 0x0f;
      return { topic, payload: bytes, kind };
    }
    case 'truncated-protobuf': {
      // A timestamp then ONE metric (field 2, length-delimited) cut short: the length overruns the end.
      const whole = encodePayload({
        timestamp: now,
        metrics: [{ alias, timestamp: now, datatype: DataType.Double, value: rng.uniform(0, 100) }],
      });
      return { topic, payload: whole.slice(0, whole.length - 3), kind };
    }
    case 'wrong-type':
      return {
        topic,
        payload: encodePayload({
          timestamp: now,
          metrics: [
            {
              alias,
              timestamp: now,
              datatype: DataType.Float,
              raw: { field: 'string', value: 'not-a-float' },
            },
          ],
        }),
        kind,
      };
  }
}

export function badLwm2m(
  client: Lwm2mClient,
  records: Array<{ name: string; time: number; value: SenmlValue }>,
  rng: Rng,
  kind: BadLwm2mKind = (['truncated-cbor', 'garbage-cbor', 'wrong-key-types'] as const)[rng.int(0, 2)]!,
): Uint8Array {
  switch (kind) {
    case 'truncated-cbor': {
      // Built directly (not through client.send) so it takes no token and is not remembered as ours.
      const whole = encodeCbor(
        new Map<number, number | Uint8Array>([
          [1, 24],
          [2, 0],
          [19, 112],
          [7, new Uint8Array(Math.max(8, records.length * 12)).fill(0x41)],
        ]),
      );
      return whole.slice(0, Math.max(1, Math.floor(whole.length / 2)));
    }
    case 'garbage-cbor':
      // 0xff is a "break" outside any indefinite-length item: never valid CBOR.
      return Uint8Array.from([0xff, 0x00, rng.int(0, 255), rng.int(0, 255)]);
    case 'wrong-key-types':
      void client;
      return encodeCbor(
        new Map<number, string | number>([
          [1, 'Send'],
          [2, 'not-a-token'],
          [19, 112],
        ]),
      );
  }
}
