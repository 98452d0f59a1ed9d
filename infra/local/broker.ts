/**
 * The local MQTT broker (Aedes 1.x, in-process) with the same per-device authorization as the IoT
 * policy: the client id is the thing name; a client may publish only on its own Sparkplug node and
 * LwM2M endpoint topics and subscribe only to its own commands (functions/core/topics.ts). A refused
 * publish closes the connection and a refused subscription gets a failure SUBACK (0x80), as in IoT
 * Core. Every accepted publish goes through the rule engine (infra/local/rules.ts) and a batching
 * forwarder into Kinesis before Aedes acknowledges it (the authorizePublish hook waits until the
 * message's records are stored), so a QoS 1 PUBACK means "in the stream" and a slow Kinesis slows the publishers down
 * instead of filling memory. Publishes above IoT Core's 128 KB payload limit are refused like a policy
 * violation (counted, reported, the connection closed). Nothing accepted is dropped silently: records
 * failing for a transient reason (throttling, InternalFailure, an unreachable endpoint) are retried with
 * backoff; a record Kinesis refuses for itself (a validation error, a per-record error code other than
 * throttling or InternalFailure) is dead-lettered once with its reason (`onDeadLetter`), never retried
 * forever, so it cannot hold back the records behind it; close() flushes within a bound and
 * dead-letters, with a reason, what Kinesis did not take by then.
 *
 * IoT Core's other refusals are mirrored too (ADR 0019): a retained publish is refused (the device
 * policy grants no iot:RetainPublish) and a client publishing faster than the per-connection limit
 * (token bucket, default 100/s with a burst of 200) is refused; both close the connection like a
 * policy violation. Listeners: plain MQTT (the zero-setup default, 127.0.0.1), optionally MQTT over
 * TLS with client certificates from the local CA (infra/local/ca.ts; the certificate's CN must equal
 * the client id, as IoT Core's policy variable ties the thing name to the certificate) and MQTT over
 * WebSocket. The per-device topic ACL is the same on every listener.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { createServer as createTlsServer, TLSSocket, type Server as TlsServer } from 'node:tls';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { TransientError, ValidationError } from '../../functions/core/errors.js';
import type { PublishAction } from '../../functions/core/reading.js';
import { deviceMayPublish, deviceMaySubscribe, isValidEndpoint } from '../../functions/core/topics.js';
import type { RuleDef, StreamKey } from '../pipeline.js';
import { type KinesisRecords, sdkRecords } from './kinesis-records.js';
import { createRuleEngine, KINESIS_MAX_RECORD_BYTES, NO_CLIENT_ID, type RuleOutput } from './rules.js';

/** PutRecords limits: 500 records and 5 MiB (data + partition keys) per call. */
export const PUT_RECORDS_MAX_RECORDS = 500;
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;
/** IoT Core's limit on a publish payload (128 KB); a larger publish is refused. */
export const MAX_PUBLISH_PAYLOAD_BYTES = 128 * 1024;
/** IoT Core's per-connection publish limit (publishes per second); the local default. */
export const PUBLISH_RATE_PER_CONNECTION = 100;
/** The local bucket's default burst: two seconds' worth, so network jitter never trips a paced client. */
export const PUBLISH_BURST_PER_CONNECTION = 200;
/** How long close() waits for Kinesis to take what is pending before dead-lettering it (default). */
export const CLOSE_TIMEOUT_MS = 10_000;

/** Per-record PutRecords error codes that pass (retried); any other code is the record's own fault. */
const RETRYABLE_RECORD_ERRORS = new Set(['ProvisionedThroughputExceededException', 'InternalFailure']);
/** Whole-call errors caused by what was sent (one of the records), not by Kinesis' state. */
const REQUEST_ERRORS = new Set(['ValidationException', 'InvalidArgumentException', 'SerializationException']);

/** A record the forwarder gave up on, with why: written to the forwarder's dead-letter file locally. */
export interface DeadLetter {
  stream: StreamKey;
  partitionKey: string;
  data: Buffer;
  /** RECORD_TOO_LARGE, KINESIS_REFUSED (with Kinesis' code in `message`) or SHUTDOWN. */
  code: 'RECORD_TOO_LARGE' | 'KINESIS_REFUSED' | 'SHUTDOWN';
  message: string;
}

export interface ForwarderCounters {
  /** Records handed to the forwarder. */
  recordsIn: number;
  /** Records Kinesis accepted. */
  recordsForwarded: number;
  /** PutRecords calls made (including retries). */
  putRecordsCalls: number;
  /** Records sent again after a failed call or a per-record error. */
  forwardRetries: number;
  /** Records waiting or in flight. */
  pendingRecords: number;
  /** Records given up on (refused by Kinesis, too large, or left at shutdown): see onDeadLetter. */
  deadLettered: number;
}

export interface BrokerCounters extends ForwarderCounters {
  connected: number;
  /** Accepted device messages that a rule routed, per protocol (stream). */
  messagesIn: Record<StreamKey, number>;
  /** Accepted device publishes, routed or not. */
  devicePublishes: number;
  /** Publishes made by the server (the IoT data-plane role). */
  serverPublishes: number;
  /** Refused connects + publishes + subscriptions. */
  refused: number;
  refusedConnects: number;
  /** Publishes refused by the ACL or for their size (both close the connection). */
  refusedPublishes: number;
  /** ... of which above MAX_PUBLISH_PAYLOAD_BYTES. */
  refusedTooLarge: number;
  /** ... of which retained (the policy grants no iot:RetainPublish). */
  refusedRetained: number;
  /** ... of which above the per-connection publish rate. */
  refusedRateLimited: number;
  refusedSubscribes: number;
  /** Rules that matched but whose action could not run (IoT's error action). */
  ruleActionErrors: number;
}

export interface ForwarderOptions {
  kinesis: KinesisClient;
  /** The PutRecords path; default: through `kinesis` (the stack passes its wire client for kinesalite). */
  records?: KinesisRecords;
  streamNames: Record<StreamKey, string>;
  /**
   * A partial batch waits this many ms (a full one goes at once), also between two calls of one stream.
   * Default 50: each call costs the stack's event loop ~1 ms of SDK work (signing, middleware, socket
   * write) whatever its size, so fuller calls leave more of it to the handlers.
   */
  lingerMs?: number;
  /** Backpressure: enqueue waits while this many records are pending. Default 20,000. */
  maxPendingRecords?: number;
  /** Retry backoff: base and cap in ms (defaults 20 and 2,000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  onForwardError?: (error: unknown, stream: StreamKey, records: number) => void;
  /** Each record once Kinesis stored it (fault-injection runs count what the broker accepted). */
  onForwarded?: (stream: StreamKey, data: Buffer) => void;
  /** Each record given up on, once, with its reason (the local stack writes it to a dead-letter file). */
  onDeadLetter?: (record: DeadLetter) => void;
  /** close() waits at most this long for Kinesis before dead-lettering what is left (default 10 s). */
  closeTimeoutMs?: number;
  /** For the stalled-time measure (default Date.now). */
  now?: () => number;
}

export interface BrokerOptions extends ForwarderOptions {
  /** 0 = a free port. */
  port: number;
  host?: string;
  rules: readonly RuleDef[];
  clock?: () => number;
  /** Accept any client id and topic (tests, debugging). */
  allowAll?: boolean;
  /**
   * Run the server's own publishes through the rules as IoT does for data-plane publishes, with
   * clientid() = 'n/a' (so a rebirth NCMD reaches the Sparkplug stream; the LwM2M rule drops them).
   * Default true.
   */
  serverPublishesToRules?: boolean;
  onRefused?: (clientId: string, what: string) => void;
  onRuleError?: (error: Error, topic: string, clientId: string) => void;
  /**
   * MQTT over TLS (IoT Core's 8883): the server certificate and key, and the CA whose certificates are
   * accepted. A client must present a certificate from that CA whose subject CN equals its client id.
   */
  tls?: { port: number; host?: string; ca: string; cert: string; key: string };
  /** MQTT over WebSocket (IoT Core's 443 /mqtt; locally plain ws://, default port 9001). */
  ws?: { port: number; host?: string };
  /**
   * Per-connection publish limit, a token bucket: `perSecond` tokens a second up to `burst`; a publish
   * with no token left is refused and the connection closed. Default 100/s, burst 200; false = none.
   */
  publishLimit?: { perSecond: number; burst?: number } | false;
}

interface Pending {
  stream: StreamKey;
  data: Buffer;
  partitionKey: string;
  bytes: number;
  /** Stored or dead-lettered: counted once, whatever else arrives later. */
  settled: boolean;
  done: (error?: Error) => void;
}

const errorName = (error: unknown) => (error as { name?: string } | null)?.name ?? 'Error';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Batches rule outputs into PutRecords calls, one call in flight per stream (so records of one
 * partition key reach the shard in the order they were accepted), and resolves each record once
 * Kinesis stored it. Failed calls and failed records are retried with capped exponential backoff.
 */
export class KinesisForwarder {
  readonly counters: ForwarderCounters = {
    recordsIn: 0,
    recordsForwarded: 0,
    putRecordsCalls: 0,
    forwardRetries: 0,
    pendingRecords: 0,
    deadLettered: 0,
  };
  private readonly queues = new Map<StreamKey, Pending[]>();
  private readonly bytes = new Map<StreamKey, number>();
  private readonly sending = new Set<StreamKey>();
  private readonly waiters: Array<() => void> = [];
  private readonly idle: Array<() => void> = [];
  /** Every record accepted and not yet settled (queued or in a call). */
  private readonly live = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;
  /** flush() asked for everything now: pumps do not wait for the linger. */
  private draining = false;
  /** abort() ran: nothing is sent any more, in-flight calls are cancelled. */
  private aborted = false;
  private readonly abortCalls = new AbortController();
  private readonly maxPending: number;
  private readonly now: () => number;
  /** When a record was last stored or dead-lettered, or the queue last became non-empty. */
  private progressAt: number;

  private readonly records: KinesisRecords;

  constructor(private readonly o: ForwarderOptions) {
    this.records = o.records ?? sdkRecords(o.kinesis);
    this.maxPending = o.maxPendingRecords ?? 20_000;
    this.now = o.now ?? Date.now;
    this.progressAt = this.now();
  }

  /**
   * Resolves once the record is stored in Kinesis — or dead-lettered (onDeadLetter), as IoT's rule
   * action would send it to its error action; waits first while too many records are pending.
   */
  async enqueue(out: Pick<RuleOutput, 'stream' | 'data' | 'partitionKey'>): Promise<void> {
    while (this.counters.pendingRecords >= this.maxPending)
      await new Promise<void>((r) => this.waiters.push(r));
    this.counters.recordsIn++;
    if (this.counters.pendingRecords === 0) this.progressAt = this.now();
    this.counters.pendingRecords++;
    return new Promise((resolve, reject) => {
      const bytes = out.data.length + Buffer.byteLength(out.partitionKey);
      const p: Pending = { ...out, bytes, settled: false, done: (e) => (e ? reject(e) : resolve()) };
      this.live.add(p);
      if (this.aborted) {
        this.deadLetter(p, 'SHUTDOWN', 'the broker is closed: Kinesis forwarding stopped');
        return;
      }
      if (out.data.length > KINESIS_MAX_RECORD_BYTES) {
        // Kinesis refuses it whatever happens: never send it, never let it hold up a batch.
        this.deadLetter(
          p,
          'RECORD_TOO_LARGE',
          `the record data is ${out.data.length} bytes, more than Kinesis' ${KINESIS_MAX_RECORD_BYTES} per record`,
        );
        return;
      }
      const q = this.queues.get(out.stream) ?? [];
      q.push(p);
      this.queues.set(out.stream, q);
      const total = (this.bytes.get(out.stream) ?? 0) + bytes;
      this.bytes.set(out.stream, total);
      if (this.full(out.stream) || this.draining) void this.pump(out.stream);
      else this.arm();
    });
  }

  /** How long records have been pending without any being stored or dead-lettered (0 when idle). */
  stalledMs(): number {
    return this.counters.pendingRecords === 0 ? 0 : Math.max(0, this.now() - this.progressAt);
  }

  private full(stream: StreamKey): boolean {
    return (
      (this.queues.get(stream)?.length ?? 0) >= PUT_RECORDS_MAX_RECORDS ||
      (this.bytes.get(stream) ?? 0) >= PUT_RECORDS_MAX_BYTES
    );
  }

  private arm(): void {
    this.timer ??= setTimeout(() => this.flushAll(), this.o.lingerMs ?? 50);
  }

  private flushAll(): void {
    this.timer = undefined;
    for (const stream of this.queues.keys()) void this.pump(stream);
  }

  /** Takes the next batch within both PutRecords limits. */
  private take(stream: StreamKey): Pending[] {
    const q = this.queues.get(stream) ?? [];
    let n = 0;
    let bytes = 0;
    while (
      n < q.length &&
      n < PUT_RECORDS_MAX_RECORDS &&
      (n === 0 || bytes + q[n]!.bytes <= PUT_RECORDS_MAX_BYTES)
    )
      bytes += q[n++]!.bytes;
    this.bytes.set(stream, (this.bytes.get(stream) ?? 0) - bytes);
    return q.splice(0, n);
  }

  private async pump(stream: StreamKey): Promise<void> {
    if (this.sending.has(stream) || this.aborted) return;
    this.sending.add(stream);
    try {
      // After a call, only a full batch (or a flush) goes at once; a partial one waits for the linger.
      for (let batch = this.take(stream); batch.length > 0; ) {
        await this.send(stream, batch);
        batch = this.aborted ? [] : this.draining || this.full(stream) ? this.take(stream) : [];
      }
    } finally {
      this.sending.delete(stream);
      if ((this.queues.get(stream)?.length ?? 0) > 0 && !this.aborted) {
        if (this.draining) void this.pump(stream);
        else this.arm();
      }
      this.checkIdle();
    }
  }

  private checkIdle(): void {
    if (this.counters.pendingRecords === 0) {
      this.draining = false;
      for (const f of this.idle.splice(0)) f();
    }
  }

  /**
   * Sends `batch` until every record is stored or dead-lettered. Transient failures (a failed call,
   * per-record throttling or InternalFailure) are retried with backoff; a call refused for what it
   * carries (ValidationException, ...) is split in halves until the refused record is alone, and that
   * record is dead-lettered; a per-record error of any other code dead-letters that record.
   */
  private async send(stream: StreamKey, batch: Pending[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) {
        this.counters.forwardRetries += pending.length;
        const cap = Math.min(this.o.retryMaxMs ?? 2000, (this.o.retryBaseMs ?? 20) * 2 ** (attempt - 1));
        await sleep(cap / 2 + (cap / 2) * ((attempt * 0.618) % 1));
      }
      if (this.aborted) return; // abort() dead-lettered them
      this.counters.putRecordsCalls++;
      try {
        const results = await this.records.putRecords(
          this.o.streamNames[stream],
          pending.map((p) => ({ data: p.data, partitionKey: p.partitionKey })),
          this.abortCalls.signal,
        );
        const failed: Pending[] = [];
        pending.forEach((p, i) => {
          const r = results[i];
          if (r && !r.errorCode) this.stored(stream, p);
          else if (!r || RETRYABLE_RECORD_ERRORS.has(r.errorCode!)) failed.push(p);
          else this.deadLetter(p, 'KINESIS_REFUSED', `${r.errorCode}: ${r.errorMessage ?? 'no message'}`);
        });
        if (failed.length > 0)
          this.o.onForwardError?.(new Error(`${failed.length} records failed`), stream, failed.length);
        pending = failed;
      } catch (error) {
        if (this.aborted) return;
        if (REQUEST_ERRORS.has(errorName(error))) {
          if (pending.length === 1) {
            const message = String((error as Error).message).slice(0, 300);
            this.deadLetter(pending[0]!, 'KINESIS_REFUSED', `${errorName(error)}: ${message}`);
            return;
          }
          // One of them is refused: halves, in order, until it is alone (order per key is kept).
          const half = Math.ceil(pending.length / 2);
          await this.send(stream, pending.slice(0, half));
          await this.send(stream, pending.slice(half));
          return;
        }
        this.o.onForwardError?.(error, stream, pending.length);
      }
    }
  }

  private settle(p: Pending): boolean {
    if (p.settled) return false;
    p.settled = true;
    this.live.delete(p);
    this.counters.pendingRecords--;
    this.progressAt = this.now();
    this.waiters.shift()?.();
    return true;
  }

  private stored(stream: StreamKey, p: Pending): void {
    if (!this.settle(p)) return;
    this.o.onForwarded?.(stream, p.data);
    this.counters.recordsForwarded++;
    p.done();
  }

  private deadLetter(p: Pending, code: DeadLetter['code'], message: string): void {
    if (!this.settle(p)) return;
    this.counters.deadLettered++;
    try {
      this.o.onDeadLetter?.({ stream: p.stream, partitionKey: p.partitionKey, data: p.data, code, message });
    } finally {
      p.done();
      this.checkIdle();
    }
  }

  /** Sends what is queued now and waits until nothing is pending (or the timeout passes). */
  async flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.counters.pendingRecords === 0) return;
    const idle = new Promise<void>((r) => this.idle.push(r));
    this.draining = true;
    for (const stream of this.queues.keys()) void this.pump(stream);
    if (timeoutMs === Number.POSITIVE_INFINITY) return idle;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([idle, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout')
      throw new TransientError(
        'KINESIS_UNAVAILABLE',
        `${this.counters.pendingRecords} accepted records are not in Kinesis yet (still retrying)`,
      );
  }

  /**
   * Stops forwarding for good: in-flight calls are cancelled and every record not yet stored is
   * dead-lettered with `reason` (code SHUTDOWN). Returns how many were dead-lettered.
   */
  abort(reason: string): number {
    if (this.aborted) return 0;
    this.aborted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.abortCalls.abort();
    const left = [...this.live];
    this.queues.clear();
    this.bytes.clear();
    for (const p of left) this.deadLetter(p, 'SHUTDOWN', reason);
    return left.length;
  }

  /**
   * Flushes for at most `timeoutMs` (default closeTimeoutMs, 10 s), then aborts: what Kinesis did not
   * take by then is dead-lettered with the reason. Returns how many records were dead-lettered here.
   */
  async close(timeoutMs = this.o.closeTimeoutMs ?? CLOSE_TIMEOUT_MS): Promise<number> {
    try {
      await this.flush(timeoutMs);
      return 0;
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      return this.abort(
        `shutdown: Kinesis did not take the record within ${timeoutMs} ms (${this.counters.putRecordsCalls} calls made)`,
      );
    }
  }
}

export interface LocalBroker {
  port: number;
  /** mqtt://host:port */
  url: string;
  /** The TLS listener (with the `tls` option): its port and mqtts://host:port. */
  tlsPort?: number;
  tlsUrl?: string;
  /** The WebSocket listener (with the `ws` option): its port and ws://host:port/mqtt. */
  wsPort?: number;
  wsUrl?: string;
  /** The Aedes instance (for LocalBrokerPublisher and tests). */
  aedes: Aedes;
  counters: BrokerCounters;
  /** Publishes as the server (the IoT data-plane role): bypasses the device ACL. */
  publish(action: PublishAction): Promise<void>;
  /** Waits until every accepted record is in Kinesis. */
  flush(timeoutMs?: number): Promise<void>;
  /**
   * Stops accepting, disconnects clients (their Wills fire), then flushes the accepted records for at
   * most `timeoutMs` (default closeTimeoutMs, 10 s); what Kinesis did not take by then is
   * dead-lettered with the reason (onDeadLetter), so close() always returns within the bound.
   */
  close(timeoutMs?: number): Promise<void>;
  /** How long accepted records have waited with none stored (0 when nothing is pending). */
  stalledMs(): number;
}

function refusal(message: string, returnCode: number): Error {
  return Object.assign(new Error(message), { returnCode });
}

/** The subject CN of the client certificate on a TLS connection (undefined when none). */
export function peerCommonName(socket: TLSSocket): string | undefined {
  const cn = socket.getPeerCertificate()?.subject?.CN as string | string[] | undefined;
  return typeof cn === 'string' ? cn : undefined; // several CNs: no single identity
}

/**
 * Connections the kernel queues while the event loop is busy. Node's default (511) is one second of a
 * connect storm at IoT Core's 500 CONNECT/s: a longer stall of the main thread overflowed it, and the
 * clients it dropped saw ECONNRESET (70-532 per 10,000-device storm). The kernel caps it at somaxconn.
 */
const LISTEN_BACKLOG = 8192;

const listen = (server: Server | TlsServer | HttpServer, port: number, host: string) =>
  new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });

const hostForUrl = (address: string) => (address.includes(':') ? `[${address}]` : address);

export async function createBroker(o: BrokerOptions): Promise<LocalBroker> {
  const clock = o.clock ?? Date.now;
  const forwarder = new KinesisForwarder(o);
  const own = {
    connected: 0,
    messagesIn: { sparkplug: 0, lwm2m: 0 } as Record<StreamKey, number>,
    devicePublishes: 0,
    serverPublishes: 0,
    refused: 0,
    refusedConnects: 0,
    refusedPublishes: 0,
    refusedTooLarge: 0,
    refusedRetained: 0,
    refusedRateLimited: 0,
    refusedSubscribes: 0,
    ruleActionErrors: 0,
  };
  // One live view: the forwarder's counters appear as the broker's own.
  const counters = new Proxy(own, {
    get: (target, key: string) =>
      key in forwarder.counters
        ? forwarder.counters[key as keyof ForwarderCounters]
        : target[key as keyof typeof own],
  }) as BrokerCounters;
  const engine = createRuleEngine(o.rules, {
    clock,
    onActionError: (error, topic, clientId) => {
      own.ruleActionErrors++;
      o.onRuleError?.(error, topic, clientId);
    },
  });
  const refuse = (
    kind: 'refusedConnects' | 'refusedPublishes' | 'refusedSubscribes',
    id: string,
    what: string,
  ) => {
    own.refused++;
    own[kind]++;
    o.onRefused?.(id, what);
  };
  const toRules = o.serverPublishesToRules ?? true;
  /** The rule a device may reach by Basic Ingest with its LwM2M uplinks (as the IoT policy allows). */
  const lwm2mRule = o.rules.find((r) => r.stream === 'lwm2m')?.name;
  const limit =
    o.publishLimit === false
      ? undefined
      : {
          perSecond: o.publishLimit?.perSecond ?? PUBLISH_RATE_PER_CONNECTION,
          burst: o.publishLimit?.burst ?? o.publishLimit?.perSecond ?? PUBLISH_BURST_PER_CONNECTION,
        };
  if (limit && (!(limit.perSecond > 0) || !(limit.burst >= 1)))
    throw new ValidationError('publishLimit needs perSecond > 0 and burst >= 1', { field: 'publishLimit' });
  /** Token bucket per connection (a reconnect starts with a full bucket, as a new connection). */
  const buckets = new WeakMap<Client, { tokens: number; at: number }>();
  const takeToken = (client: Client): boolean => {
    if (!limit) return true;
    const now = clock();
    const b = buckets.get(client) ?? { tokens: limit.burst, at: now };
    b.tokens = Math.min(limit.burst, b.tokens + (Math.max(0, now - b.at) * limit.perSecond) / 1000);
    b.at = now;
    buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
  /** Rules → Kinesis; resolves once every record of the message is stored. */
  const route = async (topic: string, payload: Buffer, clientId: string): Promise<void> => {
    const outputs = engine.evaluate(topic, payload, clientId);
    if (outputs.length === 0) return;
    if (clientId !== NO_CLIENT_ID) for (const out of outputs) own.messagesIn[out.stream]++;
    await Promise.all(outputs.map((out) => forwarder.enqueue(out)));
  };

  const aedes = await Aedes.createBroker({
    authenticate: (client: Client, _username, _password, done) => {
      // Client id = thing name (mutual TLS proves it in AWS; locally the id is taken as given).
      if (!o.allowAll && (!client.id || !isValidEndpoint(client.id))) {
        refuse('refusedConnects', String(client.id), 'connect: the client id is not a valid thing name');
        return done(refusal('client id must be a thing name', 2) as never, false);
      }
      if (client.conn instanceof TLSSocket) {
        // Mutual TLS proved who holds the key; the certificate's CN is the thing name, and IoT Core's
        // policy (iot:Connect on client/${iot:Connection.Thing.ThingName}) admits only that client id.
        const cn = peerCommonName(client.conn);
        if (cn !== client.id) {
          refuse(
            'refusedConnects',
            String(client.id),
            `connect over TLS: the client id differs from the certificate's CN (${cn ?? 'none'})`,
          );
          return done(refusal("client id must equal the certificate's CN", 5) as never, false);
        }
      }
      done(null, true);
    },
    // Device publishes are routed here, before Aedes acknowledges them: Aedes 1.x writes the QoS 1
    // PUBACK before its `published` hook runs, so only this hook can make PUBACK mean "in Kinesis".
    authorizePublish: (client, packet, done) => {
      if (!client) return done(null);
      const size = (packet.payload as Buffer).length;
      if (size > MAX_PUBLISH_PAYLOAD_BYTES) {
        // IoT Core refuses payloads above 128 KB. Aedes 1.x speaks MQTT 3.1/3.1.1 only (it refuses an
        // MQTT 5 CONNECT), where no PUBACK can carry a reason: the connection is closed, as for a
        // policy violation, and the refusal is counted and reported. (Under MQTT 5 the answer would be
        // DISCONNECT 0x95 Packet too large; 0x95 is not a valid PUBACK reason code.)
        own.refusedTooLarge++;
        refuse(
          'refusedPublishes',
          client.id,
          `publish to ${packet.topic}: payload of ${size} bytes is above the ${MAX_PUBLISH_PAYLOAD_BYTES}-byte limit`,
        );
        return done(new Error(`payload of ${size} bytes is above ${MAX_PUBLISH_PAYLOAD_BYTES}`));
      }
      if (packet.retain) {
        // The device policy grants no iot:RetainPublish: IoT Core refuses it as a policy violation.
        own.refusedRetained++;
        refuse(
          'refusedPublishes',
          client.id,
          `publish to ${packet.topic}: retained publishes are not allowed`,
        );
        return done(new Error(`client ${client.id} may not publish retained messages`));
      }
      if (!takeToken(client)) {
        own.refusedRateLimited++;
        refuse(
          'refusedPublishes',
          client.id,
          `publish to ${packet.topic}: above the per-connection limit of ${limit!.perSecond} publishes/s (burst ${limit!.burst})`,
        );
        return done(new Error(`client ${client.id} publishes faster than ${limit!.perSecond}/s`));
      }
      if (!o.allowAll && !deviceMayPublish(client.id, packet.topic, lwm2mRule)) {
        refuse('refusedPublishes', client.id, `publish to ${packet.topic}`);
        // IoT Core closes the connection of a client that publishes where its policy does not allow.
        return done(new Error(`client ${client.id} may not publish to ${packet.topic}`));
      }
      own.devicePublishes++;
      route(packet.topic, packet.payload as Buffer, client.id).then(
        () => done(null),
        (error: Error) => done(error),
      );
    },
    authorizeSubscribe: (client, sub, done) => {
      if (!o.allowAll && !deviceMaySubscribe(client.id, sub.topic)) {
        refuse('refusedSubscribes', client.id, `subscribe to ${sub.topic}`);
        return done(null, null); // failure SUBACK (0x80); the session stays up
      }
      done(null, sub);
    },
    // The server's own publishes (no client) and $SYS messages arrive here only.
    published: (packet: AedesPublishPacket, client: Client | null, done) => {
      // Deferred: a synchronous done() lets Aedes read the client's next buffered packet on the same
      // stack, and with thousands of busy sessions that recursion overflowed the stack (10,000-device run).
      if (client || packet.topic.startsWith('$')) return queueMicrotask(() => done());
      own.serverPublishes++;
      // Not awaited: no PUBACK depends on it, and the forwarder never drops what it accepted. Waiting
      // here held Aedes' delivery slots for a PutRecords round trip each; under a 10,000-device
      // registration storm its queue grew and MQEmitter's release recursion overflowed the stack.
      if (toRules) {
        route(packet.topic, packet.payload as Buffer, NO_CLIENT_ID).catch(() => {
          own.ruleActionErrors++;
        });
      }
      queueMicrotask(() => done());
    },
    // Delivery slots (MQEmitter concurrency): many sessions publish at once.
    concurrency: 1000,
  });
  aedes.on('client', () => own.connected++);
  aedes.on('clientDisconnect', () => own.connected--);

  const server: Server = createServer((socket) => aedes.handle(socket));
  const address = await listen(server, o.port, o.host ?? '127.0.0.1');

  let tlsServer: TlsServer | undefined;
  let tlsAddress: AddressInfo | undefined;
  if (o.tls) {
    tlsServer = createTlsServer(
      {
        key: o.tls.key,
        cert: o.tls.cert,
        ca: o.tls.ca,
        requestCert: true,
        rejectUnauthorized: true, // no certificate, or one from another CA: the handshake fails
        minVersion: 'TLSv1.2',
      },
      (socket) => aedes.handle(socket),
    );
    tlsServer.on('tlsClientError', (error) =>
      refuse('refusedConnects', 'unknown', `TLS handshake refused: ${error.message}`),
    );
    tlsAddress = await listen(tlsServer, o.tls.port, o.tls.host ?? '127.0.0.1');
  }
  let httpServer: HttpServer | undefined;
  let wss: WebSocketServer | undefined;
  let wsAddress: AddressInfo | undefined;
  if (o.ws) {
    httpServer = createHttpServer((_req, res) => {
      res
        .writeHead(426, { 'content-type': 'text/plain' })
        .end('MQTT over WebSocket: connect to ws://<host>:<port>/mqtt\n');
    });
    // Subprotocol: MQTT clients offer "mqtt" (or "mqttv3.1"); ws picks the first offered.
    wss = new WebSocketServer({ server: httpServer, perMessageDeflate: false });
    wss.on('connection', (socket, req) => {
      const stream = createWebSocketStream(socket);
      stream.on('error', () => socket.terminate());
      aedes.handle(stream, req);
    });
    wsAddress = await listen(httpServer, o.ws.port, o.ws.host ?? '127.0.0.1');
  }

  let closed = false;
  return {
    port: address.port,
    url: `mqtt://${hostForUrl(address.address)}:${address.port}`,
    ...(tlsAddress
      ? { tlsPort: tlsAddress.port, tlsUrl: `mqtts://${hostForUrl(tlsAddress.address)}:${tlsAddress.port}` }
      : {}),
    ...(wsAddress
      ? { wsPort: wsAddress.port, wsUrl: `ws://${hostForUrl(wsAddress.address)}:${wsAddress.port}/mqtt` }
      : {}),
    aedes,
    counters,
    publish(action) {
      if (action.payload.length > MAX_PUBLISH_PAYLOAD_BYTES) {
        // IoT's data-plane Publish refuses it too (RequestEntityTooLargeException).
        return Promise.reject(
          new ValidationError(
            `payload of ${action.payload.length} bytes to ${action.topic} is above the ${MAX_PUBLISH_PAYLOAD_BYTES}-byte limit`,
            { field: 'payload', code: 'PAYLOAD_TOO_LARGE' },
          ),
        );
      }
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
    flush: (timeoutMs) => forwarder.flush(timeoutMs),
    async close(timeoutMs) {
      if (closed) return;
      closed = true;
      const serverClosed = Promise.all(
        [server, tlsServer, httpServer]
          .filter((s) => s !== undefined)
          .map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      );
      for (const c of wss?.clients ?? []) c.terminate();
      wss?.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await serverClosed;
      await forwarder.close(timeoutMs);
    },
    stalledMs: () => forwarder.stalledMs(),
  };
}

/** @deprecated the earlier name of createBroker (infra/local/stack.ts still uses it). */
export const startBroker = createBroker;
