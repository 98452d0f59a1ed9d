/**
 * A minimal MQTT 3.1.1 sink for load tests (`npm run bench -- simulator`): accepts CONNECT, SUBSCRIBE,
 * PUBLISH (PUBACK for QoS 1), PINGREQ; answers LwM2M Register with 2.01 so devices register; counts
 * messages and bytes. No routing, no persistence: it measures the simulator, not a broker.
 * Run as a child process: `node --import tsx simulator/sink.ts` (prints its port; reports via IPC).
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { decodeMessage, encodeMessage, Operation } from '../functions/core/lwm2m/message.js';

export interface SinkCounters {
  connections: number;
  publishes: number;
  bytes: number;
}

export function startSink(port = 0): Promise<{ port: number; counters: SinkCounters; close(): void }> {
  const counters: SinkCounters = { connections: 0, publishes: 0, bytes: 0 };
  const opts = { protocolVersion: 4 as const };
  const server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    const parser = mqttPacket.parser(opts);
    const send = (p: object) => socket.write(mqttPacket.generate(p as mqttPacket.Packet, opts));
    parser.on('packet', (p: mqttPacket.Packet) => {
      switch (p.cmd) {
        case 'connect':
          counters.connections++;
          send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
          break;
        case 'subscribe':
          send({ cmd: 'suback', messageId: p.messageId, granted: p.subscriptions.map((s) => s.qos) });
          break;
        case 'publish': {
          counters.publishes++;
          const payload = p.payload as Buffer;
          counters.bytes += payload.length;
          if (p.qos === 1) send({ cmd: 'puback', messageId: p.messageId });
          if (p.topic.startsWith('lwm2m/rd/')) {
            try {
              const m = decodeMessage(payload);
              if (m.operation === Operation.Register && m.token !== undefined) {
                send({
                  cmd: 'publish',
                  topic: p.topic,
                  qos: 0,
                  retain: false,
                  dup: false,
                  payload: Buffer.from(encodeMessage({ result: 201, token: m.token })),
                });
              }
            } catch {
              // bad messages are counted like any other
            }
          }
          break;
        }
        case 'pingreq':
          send({ cmd: 'pingresp' });
          break;
        case 'disconnect':
          socket.end();
          break;
        default:
          break;
      }
    });
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('close', () => {
      counters.connections--;
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        counters,
        close: () => server.close(),
      });
    });
  });
}

// As a child process: report the port and counters to the parent over IPC.
if (process.argv[1]?.endsWith('sink.ts') && process.send) {
  const sink = await startSink();
  process.send({ port: sink.port });
  setInterval(() => process.send?.({ counters: sink.counters }), 500).unref();
  process.on('message', (m) => {
    if (m === 'stop') {
      sink.close();
      process.exit(0);
    }
  });
}
