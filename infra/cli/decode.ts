/**
 * `dualpath decode [file]`: reads IoT-rule envelopes as JSON lines ({"topic","payload":base64,
 * "receivedAt"?}) from a file or stdin and prints one JSON line per input, in order. Protocol state
 * (births, aliases, registrations, pending requests) is carried across lines in memory.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { describeError, ValidationError } from '../../functions/core/errors.js';
import { createInMemoryLwm2mServer } from '../../functions/core/lwm2m/server/index.js';
import type { InboundMessage, MessageProcessor } from '../../functions/core/processor.js';
import type { MessageOutcome, Reading } from '../../functions/core/reading.js';
import { createInMemorySparkplugHost } from '../../functions/core/sparkplug/host/index.js';
import { parseTopic } from '../../functions/core/topics.js';
import { stringifyLine } from './json.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath decode [FILE]

Decodes Sparkplug B and LwM2M (OMA MQTT binding) messages given as JSON lines:
  {"topic": "spBv1.0/g/DDATA/n/d", "payload": "<base64>", "receivedAt": 1700000000000}
from FILE or standard input, and prints one JSON line per input line, in order.
State carries across lines: births resolve the aliases of later DATA lines.
`;

export function parseEnvelope(line: string, now: number): InboundMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new ValidationError(`line is not JSON: ${(error as Error).message}`, { code: 'ENVELOPE_JSON' });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError('envelope must be a JSON object', { code: 'ENVELOPE_SHAPE' });
  }
  const env = parsed as Record<string, unknown>;
  if (typeof env.topic !== 'string' || env.topic.length === 0) {
    throw new ValidationError('"topic" must be a non-empty string', {
      field: 'topic',
      code: 'ENVELOPE_FIELD',
    });
  }
  if (typeof env.payload !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(env.payload)) {
    throw new ValidationError('"payload" must be a base64 string', {
      field: 'payload',
      code: 'ENVELOPE_FIELD',
    });
  }
  let receivedAt = now;
  if (env.receivedAt !== undefined) {
    if (typeof env.receivedAt !== 'number' || !Number.isFinite(env.receivedAt) || env.receivedAt < 0) {
      throw new ValidationError('"receivedAt" must be epoch milliseconds', {
        field: 'receivedAt',
        code: 'ENVELOPE_FIELD',
      });
    }
    receivedAt = env.receivedAt;
  }
  const message: InboundMessage = {
    topic: env.topic,
    payload: new Uint8Array(Buffer.from(env.payload, 'base64')),
    receivedAt,
  };
  if (typeof env.clientId === 'string') message.clientId = env.clientId;
  return message;
}

function formatReading(r: Reading): Record<string, unknown> {
  const out: Record<string, unknown> = { metric: r.metric };
  if (r.subDevice !== undefined && r.protocol === 'sparkplug') out.device = r.subDevice;
  if (r.name !== undefined) out.name = r.name;
  if (r.unit !== undefined) out.unit = r.unit;
  Object.assign(out, {
    type: r.type,
    value: r.value,
    time: r.time,
    historical: r.historical,
    transient: r.transient,
  });
  if (r.quality !== 'GOOD') out.quality = r.quality;
  if (r.row !== undefined) out.row = r.row;
  if (r.index !== undefined) out.index = r.index;
  return out;
}

export function formatOutcome(outcome: MessageOutcome): Record<string, unknown> {
  const head: Record<string, unknown> = { ok: true, protocol: outcome.protocol, kind: outcome.kind };
  if (outcome.protocol === 'sparkplug') {
    if (outcome.group !== undefined) head.group = outcome.group;
    head.node = outcome.deviceId;
    if (outcome.subDevice !== undefined) head.device = outcome.subDevice;
  } else {
    head.endpoint = outcome.deviceId;
  }
  return {
    ...head,
    readings: outcome.readings.map(formatReading),
    events: outcome.events,
    actions: outcome.actions.map((a) => ({
      topic: a.topic,
      qos: a.qos,
      reason: a.reason,
      describe: a.describe,
      payload: a.payload,
    })),
  };
}

/** Decodes a stream of envelope lines, calling `emit` with each output line. Never throws for bad input. */
export async function decodeLines(
  lines: AsyncIterable<string>,
  emit: (line: string) => void,
  clock: () => number = Date.now,
): Promise<{ ok: number; failed: number }> {
  const sparkplug: MessageProcessor = createInMemorySparkplugHost({ clock });
  const lwm2m: MessageProcessor = createInMemoryLwm2mServer({ clock });
  let ok = 0;
  let failed = 0;
  for await (const raw of lines) {
    const line = raw.trim();
    if (line.length === 0) continue;
    try {
      const message = parseEnvelope(line, clock());
      const processor = parseTopic(message.topic).protocol === 'sparkplug' ? sparkplug : lwm2m;
      emit(stringifyLine(formatOutcome(await processor.handle(message))));
      ok++;
    } catch (error) {
      emit(stringifyLine({ ok: false, error: describeError(error) }));
      failed++;
    }
  }
  return { ok, failed };
}

export const decodeCommand: Command = {
  summary: 'decode Sparkplug B / LwM2M envelopes (JSON lines) to readings',
  async run(args) {
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(HELP);
      return 0;
    }
    const file = args.find((a) => !a.startsWith('-'));
    const input = file === undefined || file === '-' ? process.stdin : createReadStream(file);
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    await decodeLines(lines, (line) => process.stdout.write(`${line}\n`));
    return 0;
  },
};
