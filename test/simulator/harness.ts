/**
 * Test harness: an in-process Aedes broker on 127.0.0.1:0, a listener subscribed to `#` that decodes
 * with the real codecs, and a minimal LwM2M server responder (2.01 / 2.04 / 2.02) built on the core
 * codecs, so devices can register.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import {
  decodeMessage,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';

export interface Captured {
  topic: string;
  payload: Uint8Array;
  at: number;
}

export interface Harness {
  url: string;
  messages: Captured[];
  listener: MqttClient;
  /** Publishes as the cloud side (NCMD/DCMD, LwM2M requests). */
  publish(topic: string, payload: Uint8Array, qos?: 0 | 1): Promise<void>;
  /** LwM2M messages seen on lwm2m/rd/{ep}, decoded. */
  lwm2m(ep?: string): Array<Lwm2mMessage & { topic: string }>;
  close(): Promise<void>;
  setAutoRespond(on: boolean): void;
}

export async function startHarness(opts: { autoRespond?: boolean } = {}): Promise<Harness> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const messages: Captured[] = [];
  const listener = await mqtt.connectAsync(url, { clientId: 'test-listener', reconnectPeriod: 0 });
  let autoRespond = opts.autoRespond ?? true;
  const answered = new Set<string>();
  listener.on('message', (topic, payload) => {
    const bytes = new Uint8Array(payload);
    messages.push({ topic, payload: bytes, at: Date.now() });
    if (!autoRespond || !topic.startsWith('lwm2m/rd/')) return;
    let m: Lwm2mMessage;
    try {
      m = decodeMessage(bytes);
    } catch {
      return;
    }
    const code =
      m.operation === Operation.Register
        ? 201
        : m.operation === Operation.Update || m.operation === Operation.Send
          ? 204
          : m.operation === Operation.Deregister
            ? 202
            : undefined;
    if (code === undefined || m.token === undefined) return;
    const key = `${topic}:${m.token}:${m.operation}`;
    if (answered.has(key)) return;
    answered.add(key);
    listener.publish(topic, Buffer.from(encodeMessage({ result: code, token: m.token })), { qos: 1 });
  });
  await listener.subscribeAsync('#', { qos: 1 });
  return {
    url,
    messages,
    listener,
    async publish(topic, payload, qos = 1) {
      await listener.publishAsync(topic, Buffer.from(payload), { qos });
    },
    lwm2m(ep) {
      return messages
        .filter((m) => m.topic.startsWith('lwm2m/rd/') && (ep === undefined || m.topic === `lwm2m/rd/${ep}`))
        .flatMap((m) => {
          try {
            return [{ ...decodeMessage(m.payload), topic: m.topic }];
          } catch {
            return [];
          }
        });
    },
    setAutoRespond(on) {
      autoRespond = on;
    },
    async close() {
      await listener.endAsync(true);
      await new Promise<void>((r) => aedes.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
