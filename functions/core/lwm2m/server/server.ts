/**
 * The LwM2M 1.2 server over the OMA MQTT binding (topic [PREFIX/]lwm2m/rd/{endpoint}, both ways, CBOR
 * maps with integer keys). Registration interface, information reporting (Send, Notify), device
 * management requests with token correlation. Echoes of our own messages are recognised and ignored.
 * See ADR 0005.
 */
import { decodeCbor } from '../../cbor/index.js';
import { DecodeError, DualpathError, describeError } from '../../errors.js';
import type { Clock, InboundMessage, MessageProcessor } from '../../processor.js';
import type { LifecycleEvent, MessageOutcome, PublishAction, Reading } from '../../reading.js';
import { CachedRegistrationStore } from '../../state-cache.js';
import { lwm2mTopic, parseLwm2mTopic } from '../../topics.js';
import { decodeContent } from '../content.js';
import { parseObjectList } from '../link-format.js';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  type Lwm2mMessage,
  MessageKey,
  Operation,
  operationName,
} from '../message.js';
import { recordsToReadings } from './readings.js';
import {
  buildRequestMessage,
  isPlausibleResult,
  type RequestSpec,
  SERVER_OPERATION_CODES,
} from './requests.js';
import {
  isRegistrationAlive,
  type PendingRequest,
  type PendingRequestStore,
  type Registration,
  type RegistrationStore,
} from './state.js';

export type { RequestOperation, RequestSpec } from './requests.js';

export interface Lwm2mServerOptions {
  registrations: RegistrationStore;
  pending: PendingRequestStore;
  clock: Clock;
  /** Lifetime assumed when a Register omits it (seconds). */
  defaultLifetime?: number;
  /** How long a request waits for the device's response. */
  requestTimeoutMs?: number;
  /**
   * Keep registrations in a write-back cache (the ingest function, ADR 0012): read once per endpoint
   * per batch, written by commit() after the batch's readings are stored. Without it (the API's
   * command issuer, tests) every change is written at once.
   */
  writeBack?: boolean;
}

const SEND_FORMATS = new Set<number>([
  ContentFormat.SenmlCbor,
  ContentFormat.SenmlJson,
  ContentFormat.Lwm2mCbor,
]);
/** Results this server itself publishes: a response carrying another one cannot be an echo of ours. */
const OWN_RESULTS = new Set([201, 202, 204, 400, 404, 405, 412, 415, 501]);
/** Requests a device sends on the registration interface (a malformed one is answered 400). */
const DEVICE_OPS = new Set<number>([
  Operation.Register,
  Operation.Update,
  Operation.Deregister,
  Operation.Notify,
  Operation.Send,
]);
/** Binding letters of LwM2M 1.x (U, M, H, T, S, N) plus the 1.0-style queue-mode flag Q. */
const BINDING = /^[UMHTSNQ]+$/;

interface Ctx {
  endpoint: string;
  msg: InboundMessage;
  m: Lwm2mMessage;
  readings: Reading[];
  events: LifecycleEvent[];
  actions: PublishAction[];
  kind: string;
  prefix?: string;
}

export class Lwm2mServer implements MessageProcessor {
  private readonly registrations: RegistrationStore;
  /** The write-back cache this server owns (with `writeBack`); `registrations` is then this cache. */
  private readonly cache: CachedRegistrationStore | undefined;
  private readonly pending: PendingRequestStore;
  private readonly clock: Clock;
  private readonly defaultLifetime: number;
  private readonly requestTimeoutMs: number;

  constructor(opts: Lwm2mServerOptions) {
    this.cache = opts.writeBack ? new CachedRegistrationStore(opts.registrations) : undefined;
    this.registrations = this.cache ?? opts.registrations;
    this.pending = opts.pending;
    this.clock = opts.clock;
    this.defaultLifetime = opts.defaultLifetime ?? 86_400;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
  }

  begin(): void {
    this.cache?.clear();
  }

  async commit(): Promise<void> {
    await this.cache?.flush();
  }

  abort(): void {
    this.cache?.clear();
  }

  /** Bulk-loads the registrations of every endpoint the batch talks about (if the store can). */
  async prepare(messages: InboundMessage[]): Promise<void> {
    if (!this.registrations.prefetch) return;
    const endpoints = new Set<string>();
    for (const m of messages) {
      try {
        endpoints.add(parseLwm2mTopic(m.topic).endpoint);
      } catch {
        // handle() quarantines it
      }
    }
    await this.registrations.prefetch([...endpoints]);
  }

  async handle(msg: InboundMessage): Promise<MessageOutcome> {
    const topic = parseLwm2mTopic(msg.topic);
    const ctx: Ctx = {
      endpoint: topic.endpoint,
      msg,
      m: {},
      readings: [],
      events: [],
      actions: [],
      kind: 'ignored',
    };
    if (topic.prefix !== undefined) ctx.prefix = topic.prefix;
    const outcome = (): MessageOutcome => ({
      protocol: 'lwm2m',
      kind: ctx.kind,
      deviceId: topic.endpoint,
      readings: ctx.readings,
      events: ctx.events,
      actions: ctx.actions,
    });
    if (msg.clientId !== undefined && msg.clientId !== topic.endpoint) {
      // Only the endpoint's own MQTT session speaks for it; anything else on its topic is the server's
      // own publish coming back (the IoT rule filters these out too: clientid() = topic(3)).
      this.event(ctx, 'ignored', `published by client "${msg.clientId}", not by the endpoint: echo`);
      return outcome();
    }
    try {
      ctx.m = decodeMessage(msg.payload);
    } catch (error) {
      // A device request that is a binding map with a mistyped field gets a 400 with the reason;
      // anything else (not CBOR, not a map, ...) propagates and the caller quarantines it.
      if (topic.iface !== 'rd' || !this.rejectMalformedRequest(ctx, error)) throw error;
      return outcome();
    }
    const { m } = ctx;
    if (msg.redriveOf !== undefined) {
      await this.lateMessage(ctx);
      return outcome();
    }
    if (topic.iface === 'bs') {
      ctx.kind = 'bootstrap';
      this.event(ctx, 'ignored', 'LwM2M bootstrap over MQTT is not supported by this server');
      if (m.operation !== undefined) this.respond(ctx, 501, 'bootstrap interface not supported', 'bs');
    } else if (m.operation !== undefined) {
      await this.request(ctx, m.operation);
    } else {
      await this.response(ctx);
    }
    return outcome();
  }

  private rejectMalformedRequest(ctx: Ctx, error: unknown): boolean {
    if (!(error instanceof DecodeError) || error.code !== 'LWM2M_KEY_TYPE') return false;
    let root: unknown;
    try {
      root = decodeCbor(ctx.msg.payload);
    } catch {
      return false;
    }
    if (!(root instanceof Map)) return false;
    const op = root.get(MessageKey.operation);
    const token = root.get(MessageKey.token);
    if (typeof op !== 'number' || !DEVICE_OPS.has(op)) return false;
    if (typeof token === 'number' && Number.isInteger(token) && token >= 0) ctx.m.token = token;
    else if (typeof token === 'bigint' && token >= 0n) ctx.m.token = token;
    else return false;
    ctx.m.operation = op;
    ctx.kind = 'rejected';
    const reason = describeError(error);
    this.event(ctx, 'quarantined', `${operationName(op)} rejected: ${reason.message}`, {
      topic: ctx.msg.topic,
      payload: Buffer.from(ctx.msg.payload).toString('base64'),
      reason,
    });
    this.respond(ctx, 400, reason.message);
    return true;
  }

  // ---- redriven (late) messages (ADR 0017) -----------------------------------------------------

  /**
   * A redriven message arrives after the messages that followed it on the stream: the registration
   * state has moved on (a later Update, De-register or Register), so it is not changed, and the device
   * gets no answer (it gave up on this request long ago). A Send (or Notify) still yields its readings:
   * the endpoint's own session published them (the rule checks clientid() = topic(3)). A response to
   * one of our requests completes it if it is still pending (as a first delivery would).
   */
  private async lateMessage(ctx: Ctx): Promise<void> {
    const op = ctx.m.operation;
    if (op === undefined) await this.response(ctx);
    else if (op === Operation.Send || (op === Operation.Notify && ctx.m.payload !== undefined)) {
      ctx.kind = op === Operation.Send ? 'send' : 'notify';
      this.decodeReadings(ctx);
    } else {
      ctx.kind = 'ignored';
      this.event(
        ctx,
        'ignored',
        `redriven ${operationName(op)}: not applied, the registration state has moved on`,
      );
    }
    ctx.actions.length = 0;
  }

  // ---- device → server requests ----------------------------------------------------------------

  private async request(ctx: Ctx, op: number): Promise<void> {
    if (ctx.m.ep !== undefined && ctx.m.ep !== ctx.endpoint) {
      ctx.kind = 'rejected';
      this.event(ctx, 'ignored', `ep "${ctx.m.ep}" does not match the topic endpoint`);
      this.respond(ctx, 400, `ep "${ctx.m.ep}" does not match the topic endpoint "${ctx.endpoint}"`);
      return;
    }
    switch (op) {
      case Operation.Register:
        return this.register(ctx);
      case Operation.Update:
        return this.update(ctx);
      case Operation.Deregister:
        return this.deregister(ctx);
      case Operation.Send:
        return this.send(ctx);
      case Operation.Notify:
        return this.notifyOrSend(ctx);
      default:
        if (SERVER_OPERATION_CODES.has(op)) {
          ctx.kind = 'ignored';
          this.event(ctx, 'ignored', `echo of our own ${operationName(op)} request`);
          return;
        }
        ctx.kind = 'rejected';
        this.event(
          ctx,
          'ignored',
          `operation ${operationName(op)} is not accepted on the registration interface`,
        );
        this.respond(ctx, 405, `operation ${op} not allowed`);
    }
  }

  private async register(ctx: Ctx): Promise<void> {
    ctx.kind = 'register';
    const { m, msg } = ctx;
    if (m.version === undefined) {
      this.event(ctx, 'ignored', 'Register without an LwM2M version (key 9)');
      this.respond(ctx, 400, 'version (key 9) is required');
      return;
    }
    if (!/^1\.\d+$/.test(m.version)) {
      this.event(ctx, 'ignored', `unsupported LwM2M version ${m.version}`);
      this.respond(ctx, 412, `unsupported LwM2M version ${m.version}: 1.x required`);
      return;
    }
    if (m.binding !== undefined && !BINDING.test(m.binding)) {
      this.event(ctx, 'ignored', `bad binding "${m.binding}"`);
      this.respond(ctx, 400, `binding "${m.binding}" must be letters of U, M, H, T, S, N (and Q)`);
      return;
    }
    let objects: Registration['objects'];
    try {
      objects = parseObjectList(m.payload ? new TextDecoder('utf-8', { fatal: true }).decode(m.payload) : '');
    } catch (error) {
      this.event(ctx, 'ignored', `bad object list: ${describeError(error).message}`);
      this.respond(ctx, 400, `object list: ${describeError(error).message}`);
      return;
    }
    const existing = await this.registrations.get(ctx.endpoint);
    const binding = m.binding ?? 'U';
    const reg: Registration = {
      endpoint: ctx.endpoint,
      version: existing?.version ?? 0,
      lwm2mVersion: m.version,
      lifetime: m.lifetime ?? this.defaultLifetime,
      binding,
      queueMode: binding.includes('Q'),
      objects,
      registeredAt: msg.receivedAt,
      lastUpdate: msg.receivedAt,
      // A new registration voids every observation of the previous one.
      observations: {},
    };
    if (m.sms !== undefined) reg.sms = m.sms;
    await this.registrations.put(reg, existing?.version);
    if (existing) await this.pending.deleteEndpoint(ctx.endpoint);
    this.event(
      ctx,
      'register',
      `lifetime ${reg.lifetime} s, binding ${binding}, ${objects.objects.length} objects`,
      {
        lifetime: reg.lifetime,
        version: reg.lwm2mVersion,
        binding,
        objects: objects.objects,
        replaced: existing !== undefined,
        observationsVoided: existing ? Object.keys(existing.observations).length : 0,
      },
    );
    this.respond(ctx, 201);
  }

  private async update(ctx: Ctx): Promise<void> {
    ctx.kind = 'update';
    const reg = await this.aliveRegistration(ctx);
    if (!reg) return;
    const { m } = ctx;
    if (m.lifetime !== undefined) reg.lifetime = m.lifetime;
    if (m.binding !== undefined) {
      if (!BINDING.test(m.binding)) {
        this.event(ctx, 'ignored', `bad binding "${m.binding}"`);
        this.respond(ctx, 400, `binding "${m.binding}" must be letters of U, M, H, T, S, N (and Q)`);
        return;
      }
      reg.binding = m.binding;
      reg.queueMode = m.binding.includes('Q');
    }
    if (m.sms !== undefined) reg.sms = m.sms;
    if (m.payload !== undefined && m.payload.length > 0) {
      try {
        // An object list in an Update is complete, not a delta.
        reg.objects = parseObjectList(new TextDecoder('utf-8', { fatal: true }).decode(m.payload));
      } catch (error) {
        this.event(ctx, 'ignored', `bad object list: ${describeError(error).message}`);
        this.respond(ctx, 400, `object list: ${describeError(error).message}`);
        return;
      }
    }
    reg.lastUpdate = ctx.msg.receivedAt;
    await this.registrations.put(reg, reg.version);
    this.event(ctx, 'update', `lifetime ${reg.lifetime} s`, {
      lifetime: reg.lifetime,
      objects: reg.objects.objects.length,
    });
    this.respond(ctx, 204);
  }

  private async deregister(ctx: Ctx): Promise<void> {
    ctx.kind = 'deregister';
    const reg = await this.registrations.get(ctx.endpoint);
    if (!reg) {
      this.event(ctx, 'ignored', 'De-register without a registration');
      this.respond(ctx, 404, 'not registered');
      return;
    }
    await this.registrations.delete(ctx.endpoint);
    await this.pending.deleteEndpoint(ctx.endpoint);
    this.event(ctx, 'deregister', 'de-registered; observations voided');
    this.respond(ctx, 202);
  }

  private async aliveRegistration(ctx: Ctx): Promise<Registration | undefined> {
    const reg = await this.registrations.get(ctx.endpoint);
    if (reg && isRegistrationAlive(reg, ctx.msg.receivedAt)) return reg;
    if (reg) {
      this.event(ctx, 'expired', `registration expired at ${reg.lastUpdate + reg.lifetime * 1000}`);
    } else {
      this.event(ctx, 'ignored', `${operationName(ctx.m.operation ?? -1)} without a registration`);
    }
    this.respond(ctx, 404, reg ? 'registration expired: register again' : 'not registered');
    return undefined;
  }

  private async notifyOrSend(ctx: Ctx): Promise<void> {
    const reg = await this.registrations.get(ctx.endpoint);
    const token = ctx.m.token === undefined ? undefined : String(ctx.m.token);
    const observation = token !== undefined ? reg?.observations[token] : undefined;
    if (observation && reg && isRegistrationAlive(reg, ctx.msg.receivedAt)) {
      ctx.kind = 'notify';
      this.decodeReadings(ctx, observation.paths.length === 1 ? observation.paths[0] : undefined);
      const e: Record<string, unknown> = { token: observation.token, paths: observation.paths };
      if (observation.commandId !== undefined) e.commandId = observation.commandId;
      this.event(ctx, 'update', `notify: ${ctx.readings.length} readings`, e);
      // No response: the MQTT PUBACK acknowledges a Notify (ADR 0005).
      return;
    }
    // The binding's own example sends with op 23: accept it as Send when it carries content.
    if (ctx.m.payload !== undefined && ctx.m.contentFormat !== undefined) return this.send(ctx);
    ctx.kind = 'ignored';
    this.event(ctx, 'ignored', `Notify with token ${token ?? '(none)'} matches no observation`);
  }

  private async send(ctx: Ctx): Promise<void> {
    ctx.kind = 'send';
    const reg = await this.aliveRegistration(ctx);
    if (!reg) return;
    const ct = ctx.m.contentFormat;
    if (ct === undefined || !SEND_FORMATS.has(ct)) {
      this.event(
        ctx,
        'ignored',
        `Send content format ${ct ?? '(missing)'} is not SenML CBOR/JSON or LwM2M CBOR`,
      );
      this.respond(ctx, 415, 'Send needs content format 112, 110 or 11544');
      return;
    }
    if (!this.decodeReadings(ctx)) return;
    this.respond(ctx, 204);
  }

  /** Decodes the message content into readings; a bad payload is answered 400 and kept as an event. */
  private decodeReadings(ctx: Ctx, path?: string): boolean {
    if (ctx.m.payload === undefined) return true;
    try {
      const records = decodeContent(ctx.m.payload, ctx.m.contentFormat, {
        receivedAt: ctx.msg.receivedAt,
        ...(path === undefined ? {} : { path }),
      });
      ctx.readings.push(...recordsToReadings(ctx.endpoint, records));
      return true;
    } catch (error) {
      if (!(error instanceof DualpathError)) throw error;
      const reason = describeError(error);
      this.event(ctx, 'quarantined', `${reason.code}: ${reason.message}`, {
        topic: ctx.msg.topic,
        payload: Buffer.from(ctx.msg.payload).toString('base64'),
        reason,
      });
      if (ctx.kind === 'send') this.respond(ctx, 400, reason.message);
      return false;
    }
  }

  // ---- device → server responses ---------------------------------------------------------------

  private async response(ctx: Ctx): Promise<void> {
    const { m } = ctx;
    const result = m.result ?? 0;
    const token = m.token === undefined ? undefined : Number(m.token);
    let pending = token === undefined ? undefined : await this.pending.take(ctx.endpoint, token);
    if (pending && !isPlausibleResult(pending.operation, result) && OWN_RESULTS.has(result)) {
      // E.g. our own 201 to a Register whose token happens to equal a pending Read's: not its answer.
      await this.pending.put(pending);
      pending = undefined;
    }
    if (!pending) {
      // Either the echo of one of our own responses, or a late/unknown response: never an error.
      ctx.kind = 'ignored';
      this.event(
        ctx,
        'ignored',
        `response ${result} with token ${token ?? '(none)'} matches no pending request`,
      );
      return;
    }
    ctx.kind = 'response';
    const success = result >= 200 && result < 300;
    if (success) this.decodeReadings(ctx, pending.paths.length === 1 ? pending.paths[0] : undefined);
    if (success && (pending.operation === 'observe' || pending.operation === 'observe-composite')) {
      const reg = await this.registrations.get(ctx.endpoint);
      if (reg) {
        reg.observations[String(pending.token)] = {
          token: pending.token,
          paths: pending.paths,
          since: ctx.msg.receivedAt,
          ...(pending.commandId === undefined ? {} : { commandId: pending.commandId }),
        };
        await this.registrations.put(reg, reg.version);
      }
    }
    const data: Record<string, unknown> = {
      operation: pending.operation,
      paths: pending.paths,
      result,
      success,
      token: pending.token,
      readings: ctx.readings.map((r) => ({
        metric: r.metric,
        name: r.name,
        unit: r.unit,
        type: r.type,
        value: r.value,
      })),
    };
    if (pending.commandId !== undefined) data.commandId = pending.commandId;
    if (!success && m.payload !== undefined) data.reason = new TextDecoder().decode(m.payload);
    this.event(ctx, 'response', `${pending.operation} ${pending.paths.join(',')} → ${result}`, data);
  }

  // ---- server → device requests ----------------------------------------------------------------

  /**
   * Builds a request (requests.ts), allocates its token (unique among the endpoint's pending
   * requests) and records it as pending with its deadline and command id. Publishing the returned
   * action is the caller's job. Throws ValidationError for a request that cannot be sent.
   */
  async buildRequest(
    endpoint: string,
    spec: RequestSpec,
    commandId?: string,
  ): Promise<{ token: number; action: PublishAction; message: Lwm2mMessage }> {
    const { message: m, paths } = buildRequestMessage(spec);
    const token = await this.pending.allocateToken(endpoint);
    m.token = token;
    const payload = encodeMessage(m);
    const now = this.clock();
    const pending: PendingRequest = {
      endpoint,
      token,
      operation: spec.operation,
      paths,
      createdAt: now,
      deadline: now + this.requestTimeoutMs,
    };
    if (commandId !== undefined) pending.commandId = commandId;
    await this.pending.put(pending);
    if (spec.operation === 'cancel-observe') await this.cancelObservation(endpoint, paths);
    const describe: Record<string, unknown> = {
      ...m,
      operation: `${m.operation} ${operationName(m.operation!)}`,
    };
    if (m.paths !== undefined) describe.paths = paths;
    if (m.payload !== undefined)
      describe.payload =
        m.contentFormat === ContentFormat.Text
          ? new TextDecoder().decode(m.payload)
          : `${m.payload.length} bytes`;
    const action: PublishAction = {
      kind: 'publish',
      topic: lwm2mTopic(endpoint),
      payload,
      qos: 1,
      reason: `${spec.operation} ${paths.join(',')}`,
      describe,
    };
    return { token, action, message: m };
  }

  /** Pending requests past their deadline (removed): the caller marks their commands timed out. */
  async expirePending(now = this.clock()): Promise<PendingRequest[]> {
    return this.pending.takeExpired(now);
  }

  /** Forgets the observation(s) of exactly these paths: their Notifies are no longer expected. */
  private async cancelObservation(endpoint: string, paths: string[]): Promise<void> {
    const reg = await this.registrations.get(endpoint);
    if (!reg) return;
    const key = [...paths].sort().join('\n');
    let changed = false;
    for (const [token, o] of Object.entries(reg.observations)) {
      if ([...o.paths].sort().join('\n') === key) {
        delete reg.observations[token];
        changed = true;
      }
    }
    if (changed) await this.registrations.put(reg, reg.version);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private respond(ctx: Ctx, result: number, reason?: string, iface: 'rd' | 'bs' = 'rd'): void {
    const m: Lwm2mMessage = { result };
    if (ctx.m.token !== undefined) m.token = ctx.m.token;
    if (reason !== undefined) {
      m.contentFormat = ContentFormat.Text;
      m.payload = new TextEncoder().encode(reason);
    }
    ctx.actions.push({
      kind: 'publish',
      topic: lwm2mTopic(ctx.endpoint, iface, ctx.prefix),
      payload: encodeMessage(m),
      qos: 1,
      reason: `${operationName(ctx.m.operation ?? -1)} → ${result}`,
      describe:
        reason === undefined ? { result, token: ctx.m.token } : { result, token: ctx.m.token, reason },
    });
  }

  private event(
    ctx: Ctx,
    type: LifecycleEvent['type'],
    detail: string,
    data?: Record<string, unknown>,
  ): void {
    const e: LifecycleEvent = {
      type,
      protocol: 'lwm2m',
      deviceId: ctx.endpoint,
      time: ctx.msg.receivedAt,
      detail,
    };
    if (data) e.data = data;
    ctx.events.push(e);
  }
}
