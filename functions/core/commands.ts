/**
 * Device commands issued through the API: LwM2M requests (read, write, execute, observe, ...) and
 * Sparkplug NCMD/DCMD metric writes and rebirth requests. Pure over its ports (registry, LwM2M server,
 * publisher, clock, id generator).
 *
 * Life of a command: it is validated, recorded as `pending` with a deadline, then its MQTT message is
 * published. The ingest path calls `complete()` when the device answers (LwM2M responses carry the
 * command id through the server's pending request), which records the decoded response and the status
 * `succeeded` (2.xx) or `failed`. A pending command read after its deadline reads as `timed-out`.
 *
 * Sparkplug B has no command acknowledgement in the protocol (an edge node reports the new value in its
 * next DATA message, if at all), so a Sparkplug command is `succeeded` as soon as it is published; its
 * response says which topic it went to.
 */
import { ConflictError, DualpathError, ValidationError } from './errors.js';
import type { EventLog, StoredEvent } from './events.js';
import type { Lwm2mServer, RequestOperation, RequestSpec } from './lwm2m/server/server.js';
import type { Clock } from './processor.js';
import type { PublishAction } from './reading.js';
import type { Command, Device, RegistryPort } from './registry.js';
import { encodePayload, type SpMetricInput } from './sparkplug/codec.js';
import { rebirthAction } from './sparkplug/host/host.js';
import { DataType, type DataTypeName } from './sparkplug/types.js';
import { isValidSparkplugId, sparkplugTopic } from './topics.js';

export interface CommandDeps {
  registry: RegistryPort;
  lwm2m: Pick<Lwm2mServer, 'buildRequest'>;
  publish: (actions: PublishAction[]) => Promise<void>;
  clock: Clock;
  newId: () => string;
  /** How long an LwM2M command waits for the device's answer (default 60 s). */
  timeoutMs?: number;
}

export const LWM2M_OPERATIONS: readonly RequestOperation[] = [
  'read',
  'read-composite',
  'discover',
  'write',
  'write-partial',
  'write-composite',
  'execute',
  'observe',
  'observe-composite',
  'cancel-observe',
  'write-attributes',
];

/** Scalar Sparkplug types a command may write. */
export const SPARKPLUG_WRITABLE_TYPES = [
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'Float',
  'Double',
  'Boolean',
  'String',
  'Text',
  'UUID',
  'DateTime',
] as const satisfies readonly DataTypeName[];
type WritableType = (typeof SPARKPLUG_WRITABLE_TYPES)[number];

const INT_RANGES: Partial<Record<WritableType, readonly [bigint, bigint]>> = {
  Int8: [-(2n ** 7n), 2n ** 7n - 1n],
  Int16: [-(2n ** 15n), 2n ** 15n - 1n],
  Int32: [-(2n ** 31n), 2n ** 31n - 1n],
  Int64: [-(2n ** 63n), 2n ** 63n - 1n],
  UInt8: [0n, 2n ** 8n - 1n],
  UInt16: [0n, 2n ** 16n - 1n],
  UInt32: [0n, 2n ** 32n - 1n],
  UInt64: [0n, 2n ** 64n - 1n],
  DateTime: [0n, 2n ** 64n - 1n],
};

/** LwM2M paths: /object[/instance[/resource[/resource-instance]]], each 0-65535. */
const LWM2M_PATH = /^\/\d{1,5}(\/\d{1,5}){0,3}$/;
const ATTRIBUTES = ['pmin', 'pmax', 'gt', 'st', 'epmin', 'epmax', 'hqmax'] as const;

function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { field });
}

function lwm2mPath(v: unknown, field: string): string {
  if (typeof v !== 'string' || !LWM2M_PATH.test(v) || v.split('/').some((p) => Number(p) > 65535)) {
    throw invalid(`${field} must be an LwM2M path such as /3/0/0`, field);
  }
  return v;
}

function scalar(v: unknown, field: string): string | number | boolean {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))
    return v;
  throw invalid(`${field} must be a string, a finite number or a boolean`, field);
}

/** Validates an LwM2M command body into the server's RequestSpec. */
export function parseLwm2mCommand(body: Record<string, unknown>): RequestSpec {
  const operation = body.operation as RequestOperation;
  if (!LWM2M_OPERATIONS.includes(operation))
    throw invalid(`operation must be one of ${LWM2M_OPERATIONS.join(', ')}`, 'operation');
  const spec: RequestSpec = { operation };
  const composite = operation.endsWith('-composite');
  if (composite && operation !== 'write-composite') {
    if (!Array.isArray(body.paths) || body.paths.length === 0 || body.paths.length > 100)
      throw invalid(`${operation} needs paths: 1-100 LwM2M paths`, 'paths');
    spec.paths = body.paths.map((p, i) => lwm2mPath(p, `paths[${i}]`));
  } else if (!composite) {
    spec.path = lwm2mPath(body.path, 'path');
  }
  if (operation === 'write' || operation === 'write-partial') {
    if (body.value === undefined) throw invalid(`${operation} needs a value`, 'value');
    spec.value = scalar(body.value, 'value');
  }
  if (operation === 'write-composite') {
    const values = body.values;
    if (values === null || typeof values !== 'object' || Array.isArray(values))
      throw invalid('write-composite needs values: an object of path → value', 'values');
    const entries = Object.entries(values as Record<string, unknown>);
    if (entries.length === 0 || entries.length > 100) throw invalid('values must hold 1-100 paths', 'values');
    spec.values = Object.fromEntries(
      entries.map(([p, v]) => [lwm2mPath(p, `values.${p}`), scalar(v, `values.${p}`)]),
    );
  }
  if (body.args !== undefined) {
    if (operation !== 'execute') throw invalid('args is only valid for execute', 'args');
    if (typeof body.args !== 'string' || body.args.length > 1024)
      throw invalid('args must be a string of at most 1024 characters', 'args');
    spec.args = body.args;
  }
  if (operation === 'write-attributes') {
    const a = body.attributes;
    if (a === null || typeof a !== 'object' || Array.isArray(a))
      throw invalid(
        'write-attributes needs attributes (pmin, pmax, gt, st, epmin, epmax, hqmax, edge)',
        'attributes',
      );
    const out: NonNullable<RequestSpec['attributes']> = {};
    for (const [k, v] of Object.entries(a as Record<string, unknown>)) {
      const field = `attributes.${k}`;
      if (k === 'edge') {
        if (typeof v !== 'boolean') throw invalid(`${field} must be a boolean`, field);
        out.edge = v;
      } else if ((ATTRIBUTES as readonly string[]).includes(k)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${field} must be a number`, field);
        out[k as (typeof ATTRIBUTES)[number]] = v;
      } else {
        throw invalid(`unknown attribute ${k}`, field);
      }
    }
    if (Object.keys(out).length === 0)
      throw invalid('attributes must name at least one attribute', 'attributes');
    spec.attributes = out;
  }
  return spec;
}

/** Validates Sparkplug write metrics: a scalar type and a value of that type, in range. */
export function parseSparkplugMetrics(raw: unknown): SpMetricInput[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 100)
    throw invalid('metrics must be an array of 1-100 {name, type, value}', 'metrics');
  return raw.map((m, i): SpMetricInput => {
    const field = `metrics[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw invalid(`${field} must be an object`, field);
    const { name, type, value } = m as Record<string, unknown>;
    if (typeof name !== 'string' || name.length === 0 || name.length > 512)
      throw invalid(`${field}.name must be a string of 1-512 characters`, `${field}.name`);
    if (!(SPARKPLUG_WRITABLE_TYPES as readonly unknown[]).includes(type))
      throw invalid(`${field}.type must be one of ${SPARKPLUG_WRITABLE_TYPES.join(', ')}`, `${field}.type`);
    const t = type as WritableType;
    const datatype = DataType[t];
    const vField = `${field}.value`;
    const range = INT_RANGES[t];
    if (range) {
      // 64-bit values beyond 2^53 travel as decimal strings (JSON numbers would lose precision).
      let n: bigint;
      if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
      else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) n = BigInt(value);
      else throw invalid(`${vField} must be an integer (a decimal string beyond 2^53)`, vField);
      if (n < range[0] || n > range[1]) throw invalid(`${vField} is out of range for ${t}`, vField);
      const safe = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER);
      return { name, datatype, value: safe ? Number(n) : n };
    }
    if (t === 'Float' || t === 'Double') {
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw invalid(`${vField} must be a finite number`, vField);
      return { name, datatype, value };
    }
    if (t === 'Boolean') {
      if (typeof value !== 'boolean') throw invalid(`${vField} must be true or false`, vField);
      return { name, datatype, value };
    }
    if (typeof value !== 'string' || value.length > 65_536)
      throw invalid(`${vField} must be a string of at most 65536 characters`, vField);
    return { name, datatype, value };
  });
}

export class CommandService {
  constructor(private readonly d: CommandDeps) {}

  /**
   * Validates, records and publishes a command for `device`. Throws ValidationError (naming the field)
   * for a bad body or a device that does not speak the requested protocol.
   */
  async create(device: Device | string, body: Record<string, unknown>): Promise<Command> {
    const dev = typeof device === 'string' ? await this.d.registry.getDevice(device) : device;
    const deviceId = typeof device === 'string' ? device : device.id;
    const protocol = body.protocol;
    const now = this.d.clock();
    const base = {
      deviceId,
      commandId: this.d.newId(),
      createdAt: now,
      updatedAt: now,
      deadline: now + (this.d.timeoutMs ?? 60_000),
    };
    if (protocol === 'lwm2m') {
      const spec = parseLwm2mCommand(body);
      if (dev && !dev.protocols.includes('lwm2m') && dev.lwm2m === undefined)
        throw invalid(`device ${deviceId} has not registered over LwM2M`, 'protocol');
      let built: { token: number; action: PublishAction };
      try {
        built = await this.d.lwm2m.buildRequest(deviceId, spec, base.commandId);
      } catch (error) {
        // The server's own request checks are input errors here, not decode failures.
        if (error instanceof DualpathError && !error.retryable)
          throw new ValidationError(error.message, { field: error.field ?? 'operation', cause: error });
        throw error;
      }
      const command: Command = {
        ...base,
        protocol: 'lwm2m',
        operation: spec.operation,
        request: { ...spec },
        token: built.token,
        status: 'pending',
      };
      await this.d.registry.putCommand(command);
      await this.d.publish([built.action]);
      return command;
    }
    if (protocol === 'sparkplug') {
      const group = dev?.sparkplug?.group;
      if (!group)
        throw invalid(`device ${deviceId} has no Sparkplug session yet (no NBIRTH seen)`, 'protocol');
      let action: PublishAction;
      const request: Record<string, unknown> = { protocol, operation: body.operation };
      if (body.operation === 'rebirth') {
        action = rebirthAction(group, deviceId, now, 'requested through the API');
      } else if (body.operation === 'write') {
        const metrics = parseSparkplugMetrics(body.metrics);
        let sub: string | undefined;
        if (body.device !== undefined) {
          if (typeof body.device !== 'string' || !isValidSparkplugId(body.device))
            throw invalid('device must be a Sparkplug device id (no +, / or #)', 'device');
          if (!dev?.sparkplug?.devices[body.device])
            throw invalid(
              `device ${body.device} is not known under edge node ${deviceId} (no DBIRTH seen)`,
              'device',
            );
          sub = body.device;
          request.device = sub;
        }
        request.metrics = body.metrics;
        const payload = encodePayload({
          timestamp: now,
          metrics: metrics.map((m) => ({ ...m, timestamp: now })),
        });
        action = {
          kind: 'publish',
          topic: sparkplugTopic(group, sub ? 'DCMD' : 'NCMD', deviceId, sub),
          payload,
          qos: 0,
          reason: `write ${metrics.map((m) => m.name).join(', ')}`,
        };
      } else {
        throw invalid('operation must be write or rebirth', 'operation');
      }
      const command: Command = {
        ...base,
        protocol: 'sparkplug',
        operation: String(body.operation),
        request,
        status: 'pending',
      };
      await this.d.registry.putCommand(command);
      await this.d.publish([action]);
      // No acknowledgement exists in Sparkplug B: published is as far as the protocol lets us know.
      const done: Pick<Command, 'status' | 'response' | 'updatedAt'> = {
        status: 'succeeded',
        response: { published: action.topic, note: 'Sparkplug B commands have no acknowledgement' },
        updatedAt: this.d.clock(),
      };
      await this.d.registry.completeCommand(deviceId, command.commandId, done);
      return { ...command, ...done };
    }
    throw invalid('protocol must be lwm2m or sparkplug', 'protocol');
  }

  /** Reads a command; a pending one past its deadline reads as timed out. */
  async get(deviceId: string, commandId: string): Promise<Command | undefined> {
    const c = await this.d.registry.getCommand(deviceId, commandId);
    return c && this.view(c);
  }

  /** The device's commands, newest first, with the same timed-out view. */
  async list(deviceId: string, limit?: number): Promise<Command[]> {
    return (await this.d.registry.listCommands(deviceId, limit)).map((c) => this.view(c));
  }

  /**
   * Called by the ingest path when the device answered: records the decoded response and
   * `succeeded` (2.xx) or `failed`. ConflictError (from the registry) if it is no longer pending.
   */
  async complete(
    deviceId: string,
    commandId: string,
    response: { result: number; success: boolean } & Record<string, unknown>,
  ): Promise<void> {
    await this.d.registry.completeCommand(deviceId, commandId, {
      status: response.success ? 'succeeded' : 'failed',
      response,
      updatedAt: this.d.clock(),
    });
  }

  private view(c: Command): Command {
    return c.status === 'pending' && this.d.clock() > c.deadline ? { ...c, status: 'timed-out' } : c;
  }
}

/**
 * The event log of the LwM2M ingest path, completing commands as the device's answers are logged: a
 * `response` event that names a command (the server's pending request carried its id) records the
 * decoded response on the command. One code path for AWS and the local stack (the composition root of
 * lwm2m-ingest). Idempotent under redelivery: a command that is no longer pending (completed by the
 * first delivery) is left as it is; any other failure propagates, so the batch is retried.
 */
export function completingCommands(
  events: EventLog,
  registry: Pick<RegistryPort, 'completeCommand'>,
  clock: Clock,
): EventLog {
  return {
    list: (q) => events.list(q),
    async append(list: StoredEvent[]): Promise<void> {
      await events.append(list);
      for (const e of list) {
        if (e.type !== 'response') continue;
        const d = e.data as { commandId?: unknown; result?: unknown; success?: unknown } | undefined;
        if (typeof d?.commandId !== 'string') continue;
        const response = {
          ...(d as Record<string, unknown>),
          result: typeof d.result === 'number' ? d.result : 0,
          success: d.success === true,
        };
        try {
          await registry.completeCommand(e.deviceId, d.commandId, {
            status: response.success ? 'succeeded' : 'failed',
            response,
            updatedAt: clock(),
          });
        } catch (error) {
          if (!(error instanceof ConflictError)) throw error;
        }
      }
    },
  };
}
