/**
 * Device commands issued through the API: LwM2M requests (read, write, execute, observe, ...) and
 * Sparkplug NCMD/DCMD metric writes and rebirth requests. A command is recorded as pending, its MQTT
 * message published; the ingest path completes it when the device answers (LwM2M), and a pending
 * command past its deadline reads as timed out. Sparkplug has no command acknowledgement: a Sparkplug
 * command succeeds when it is published.
 */
import { ValidationError } from './errors.js';
import type { Lwm2mServer, RequestOperation, RequestSpec } from './lwm2m/server/server.js';
import type { Clock } from './processor.js';
import type { PublishAction } from './reading.js';
import type { Command, RegistryPort } from './registry.js';
import { encodePayload } from './sparkplug/codec.js';
import { rebirthAction } from './sparkplug/host/host.js';
import { DataType, type DataTypeName } from './sparkplug/types.js';
import { sparkplugTopic } from './topics.js';

export interface CommandDeps {
  registry: RegistryPort;
  lwm2m: Pick<Lwm2mServer, 'buildRequest'>;
  publish: (actions: PublishAction[]) => Promise<void>;
  clock: Clock;
  newId: () => string;
  timeoutMs?: number;
}

const LWM2M_OPS: readonly RequestOperation[] = [
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

export class CommandService {
  constructor(private readonly d: CommandDeps) {}

  async create(deviceId: string, body: Record<string, unknown>): Promise<Command> {
    const protocol = body.protocol;
    const now = this.d.clock();
    const commandId = this.d.newId();
    const base = {
      deviceId,
      commandId,
      createdAt: now,
      updatedAt: now,
      deadline: now + (this.d.timeoutMs ?? 60_000),
    };
    if (protocol === 'lwm2m') {
      const operation = body.operation as RequestOperation;
      if (!LWM2M_OPS.includes(operation)) {
        throw new ValidationError(`operation must be one of ${LWM2M_OPS.join(', ')}`, { field: 'operation' });
      }
      const spec: RequestSpec = { operation };
      if (typeof body.path === 'string') spec.path = body.path;
      if (Array.isArray(body.paths)) spec.paths = body.paths.map(String);
      if (['string', 'number', 'boolean'].includes(typeof body.value))
        spec.value = body.value as string | number | boolean;
      if (body.values && typeof body.values === 'object')
        spec.values = body.values as Record<string, string | number | boolean>;
      if (typeof body.args === 'string') spec.args = body.args;
      if (body.attributes && typeof body.attributes === 'object')
        spec.attributes = body.attributes as RequestSpec['attributes'];
      const { token, action } = await this.d.lwm2m.buildRequest(deviceId, spec, commandId);
      const command: Command = {
        ...base,
        protocol: 'lwm2m',
        operation,
        request: { ...spec },
        token,
        status: 'pending',
      };
      await this.d.registry.putCommand(command);
      await this.d.publish([action]);
      return command;
    }
    if (protocol === 'sparkplug') {
      const device = await this.d.registry.getDevice(deviceId);
      const group = device?.sparkplug?.group ?? device?.group;
      if (!group)
        throw new ValidationError('the device has no Sparkplug group yet (no NBIRTH seen)', {
          field: 'protocol',
        });
      let action: PublishAction;
      if (body.operation === 'rebirth') {
        action = rebirthAction(group, deviceId, now, 'requested through the API');
      } else if (body.operation === 'write') {
        const metrics = parseMetrics(body.metrics);
        const sub = typeof body.device === 'string' ? body.device : undefined;
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
        throw new ValidationError('operation must be write or rebirth', { field: 'operation' });
      }
      await this.d.publish([action]);
      const command: Command = {
        ...base,
        protocol: 'sparkplug',
        operation: String(body.operation),
        request: { ...body },
        status: 'succeeded',
        response: {
          published: action.topic,
          note: 'Sparkplug commands have no acknowledgement; see the next DATA',
        },
      };
      await this.d.registry.putCommand(command);
      return command;
    }
    throw new ValidationError('protocol must be lwm2m or sparkplug', { field: 'protocol' });
  }

  /** Reads a command; a pending one past its deadline reads as timed out. */
  async get(deviceId: string, commandId: string): Promise<Command | undefined> {
    const c = await this.d.registry.getCommand(deviceId, commandId);
    if (c && c.status === 'pending' && this.d.clock() > c.deadline) return { ...c, status: 'timed-out' };
    return c;
  }

  /** Called by the ingest path when the device answered. */
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
}

function parseMetrics(
  raw: unknown,
): Array<{ name: string; datatype: number; value: boolean | number | string }> {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 100) {
    throw new ValidationError('metrics must be a non-empty array of {name, type, value}', {
      field: 'metrics',
    });
  }
  return raw.map((m, i) => {
    const field = `metrics[${i}]`;
    if (!m || typeof m !== 'object') throw new ValidationError(`${field} must be an object`, { field });
    const { name, type, value } = m as Record<string, unknown>;
    if (typeof name !== 'string' || name.length === 0)
      throw new ValidationError(`${field}.name is required`, { field: `${field}.name` });
    const datatype = DataType[type as DataTypeName];
    if (datatype === undefined || !['boolean', 'number', 'string'].includes(typeof value)) {
      throw new ValidationError(
        `${field} needs a scalar type (Boolean, Int32, Double, String, ...) and a matching value`,
        { field: `${field}.type` },
      );
    }
    return { name, datatype, value: value as boolean | number | string };
  });
}
