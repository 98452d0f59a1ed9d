/**
 * The local MQTT broker (Aedes, in-process) with the same per-device authorization as the IoT policy:
 * the client id is the thing name; a client may publish only on its own Sparkplug node and LwM2M
 * endpoint topics and subscribe only to its own commands (functions/core/topics.ts). Every accepted
 * device publish goes through the rule engine and, for QoS 1, is acknowledged only once its Kinesis
 * record is stored: what the broker accepted is never lost.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { Aedes } from 'aedes';
import type { PublishAction } from '../../functions/core/reading.js';
import { deviceMayPublish, deviceMaySubscribe, isValidEndpoint } from '../../functions/core/topics.js';
import type { RuleDef, StreamKey } from '../pipeline.js';
import { createRuleEngine, type RuleOutput } from './rules.js';

export interface BrokerCounters {
  connected: number;
  messagesIn: Record<StreamKey, number>;
  refused: number;
  recordsForwarded: number;
  forwardRetries: number;
}

export interface LocalBroker {
  port: number;
  counters: BrokerCounters;
  /** Publishes as the server (the IoT data-plane role): bypasses the device ACL. */
  publish(action: PublishAction): Promise<void>;
  close(): Promise<void>;
}

export interface BrokerOptions {
  port: number;
  host?: string;
  rules: readonly RuleDef[];
  kinesis: KinesisClient;
  streamNames: Record<StreamKey, string>;
  clock?: () => number;
  onRefused?: (clientId: string, what: string) => void;
  /** Flush Kinesis batches after this many ms (or 500 records). */
  lingerMs?: number;
}

interface Pending {
  out: RuleOutput;
  done: (error?: Error) => void;
}

/** Batches rule outputs into PutRecords calls per stream; resolves each record once stored. */
class KinesisForwarder {
  private readonly queues = new Map<StreamKey, Pending[]>();
  private timer: NodeJS.Timeout | undefined;
  private inflight = 0;

  constructor(
    private readonly o: BrokerOptions,
    private readonly counters: BrokerCounters,
  ) {}

  enqueue(out: RuleOutput): Promise<void> {
    return new Promise((resolve, reject) => {
      const q = this.queues.get(out.stream) ?? [];
      q.push({ out, done: (e) => (e ? reject(e) : resolve()) });
      this.queues.set(out.stream, q);
      if (q.length >= 500) void this.flush(out.stream);
      else this.timer ??= setTimeout(() => this.flushAll(), this.o.lingerMs ?? 5);
    });
  }

  private flushAll(): void {
    this.timer = undefined;
    for (const stream of this.queues.keys()) void this.flush(stream);
  }

  private async flush(stream: StreamKey): Promise<void> {
    const batch = (this.queues.get(stream) ?? []).splice(0, 500);
    if (batch.length === 0) return;
    this.inflight++;
    try {
      let pending = batch;
      for (let attempt = 0; pending.length > 0; attempt++) {
        try {
          const res = await this.o.kinesis.send(
            new PutRecordsCommand({
              StreamName: this.o.streamNames[stream],
              Records: pending.map((p) => ({ Data: p.out.data, PartitionKey: p.out.partitionKey })),
            }),
          );
          const failed: Pending[] = [];
          (res.Records ?? []).forEach((r, i) => {
            const p = pending[i]!;
            if (r.ErrorCode) failed.push(p);
            else {
              this.counters.recordsForwarded++;
              p.done();
            }
          });
          pending = failed;
        } catch (error) {
          if (attempt >= 20) {
            for (const p of pending) p.done(error as Error);
            return;
          }
        }
        if (pending.length > 0) {
          this.counters.forwardRetries++;
          await new Promise((r) => setTimeout(r, Math.min(1000, 10 * 2 ** attempt)));
        }
      }
    } finally {
      this.inflight--;
    }
  }

  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (
      let i = 0;
      i < 200 && ([...this.queues.values()].some((q) => q.length > 0) || this.inflight > 0);
      i++
    ) {
      this.flushAll();
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export async function startBroker(o: BrokerOptions): Promise<LocalBroker> {
  const clock = o.clock ?? Date.now;
  const engine = createRuleEngine(o.rules);
  const counters: BrokerCounters = {
    connected: 0,
    messagesIn: { sparkplug: 0, lwm2m: 0 },
    refused: 0,
    recordsForwarded: 0,
    forwardRetries: 0,
  };
  const forwarder = new KinesisForwarder(o, counters);
  const refuse = (clientId: string, what: string) => {
    counters.refused++;
    o.onRefused?.(clientId, what);
  };

  const aedes = await Aedes.createBroker({
    authenticate: (client, _username, _password, done) => {
      // Client id = thing name (mutual TLS proves it in AWS; locally the id is taken as given).
      if (!client.id || !isValidEndpoint(client.id)) {
        refuse(String(client.id), 'connect: client id is not a valid thing name');
        const error = Object.assign(new Error('client id must be a thing name'), { returnCode: 2 });
        return done(error as never, false);
      }
      done(null, true);
    },
    authorizePublish: (client, packet, done) => {
      if (!client) return done(null);
      if (!deviceMayPublish(client.id, packet.topic)) {
        refuse(client.id, `publish to ${packet.topic}`);
        return done(new Error(`not authorized to publish to ${packet.topic}`));
      }
      done(null);
    },
    authorizeSubscribe: (client, sub, done) => {
      if (!deviceMaySubscribe(client.id, sub.topic)) {
        refuse(client.id, `subscribe to ${sub.topic}`);
        return done(new Error(`not authorized to subscribe to ${sub.topic}`), null);
      }
      done(null, sub);
    },
    published: (packet, client, done) => {
      // Only device publishes go to the rules (the server's own publishes have no client, as with
      // IoT data-plane Publish, whose messages carry no device client id).
      if (!client || packet.topic.startsWith('$')) return done();
      const outputs = engine.evaluate({
        topic: packet.topic,
        payload: packet.payload as Buffer,
        clientId: client.id,
        timestamp: clock(),
      });
      for (const out of outputs) counters.messagesIn[out.stream]++;
      Promise.all(outputs.map((out) => forwarder.enqueue(out))).then(
        () => done(),
        (error: Error) => done(error),
      );
    },
  });
  aedes.on('client', () => counters.connected++);
  aedes.on('clientDisconnect', () => counters.connected--);

  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    counters,
    publish(action) {
      return new Promise((resolve, reject) =>
        aedes.publish(
          {
            cmd: 'publish',
            topic: action.topic,
            payload: Buffer.from(action.payload),
            qos: action.qos,
            retain: false,
            dup: false,
          },
          (error) => (error ? reject(error) : resolve()),
        ),
      );
    },
    async close() {
      // Stop accepting, disconnect clients (their Wills fire), then flush what was accepted.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await forwarder.drain();
      await closed;
    },
  };
}
