/**
 * The ingest path shared by both Lambda handlers and the local runner: one Kinesis batch in, readings
 * stored, state advanced, actions published, bad records quarantined, transient failures reported as
 * batch item failures (ReportBatchItemFailures semantics). Pure over its ports: no AWS SDK here.
 *
 * Ordering: records of one partition key (one Sparkplug edge node, one LwM2M endpoint) are processed in
 * order; different keys run concurrently up to `concurrency`. After a record of a key fails
 * transiently, the later records of that key are not processed in this invocation: the stream
 * redelivers from the lowest failed sequence number, and every write is idempotent.
 *
 * Chunks: a large batch is decoded, enriched and stored a few thousand readings at a time, so its
 * readings do not all live until one store call. Protocol state is still flushed once, after every
 * chunk is stored, and actions are published after that (ADR 0012); a chunk that cannot be stored
 * hands the whole batch back (the chunks stored before it are re-written as duplicates).
 */
import { createHash } from 'node:crypto';
import { ConflictError, DualpathError, describeError, isRetryable } from './errors.js';
import { type EventLog, eventId, type QuarantineEntry, quarantineEvent, type StoredEvent } from './events.js';
import type { Clock, InboundMessage, MessageProcessor } from './processor.js';
import type {
  EnrichedReading,
  LifecycleEvent,
  MessageOutcome,
  Protocol,
  PublishAction,
  Reading,
} from './reading.js';

export interface IngestRecord {
  sequenceNumber: string;
  partitionKey: string;
  /** The IoT-rule envelope as bytes (JSON). */
  data: Uint8Array;
}

export interface EnricherPort {
  prepare(deviceIds: string[]): Promise<void>;
  enrich(readings: Reading[]): { enriched: EnrichedReading[]; unknownDevices: string[] };
  deviceType?(deviceId: string): string | undefined;
  /** Notes what a message said about its device (online, registration, last seen). */
  record?(deviceId: string, protocol: Protocol, time: number, events: LifecycleEvent[], group?: string): void;
  /** Writes the noted device changes (at most one write per device per batch). */
  flush?(): Promise<void>;
}

export interface StorePort {
  write(readings: EnrichedReading[]): Promise<{
    written: number;
    duplicates: number;
    rejected: Array<{ reading: EnrichedReading; reason: string; code: string }>;
    /** Accepted, confirmed only later (Timestream magnetic store): never counted as stored. */
    pending?: number;
  }>;
}

export interface PublisherPort {
  publish(actions: PublishAction[]): Promise<void>;
}

/** Counters the handler turns into EMF metrics (and the local stack into its status line). */
export interface IngestStats {
  records: number;
  messages: number;
  readingsDecoded: number;
  readingsStored: number;
  /** Readings the store accepted but confirms later (Timestream magnetic store, ADR 0020). */
  readingsPending: number;
  duplicates: number;
  quarantined: number;
  rejectedByStore: number;
  actionsPublished: number;
  rebirthsRequested: number;
  registrations: number;
  transientFailures: number;
  retries: number;
  /** Events the event log did not take after its retries (logged in full instead). */
  eventsUnwritten: number;
  /** Server → device messages the broker refused for good (a `publish-refused` event each). */
  actionsRefused: number;
}

export interface IngestResult {
  batchItemFailures: Array<{ itemIdentifier: string }>;
  stats: IngestStats;
}

export interface IngestDeps {
  protocol: Protocol;
  processor: MessageProcessor;
  enricher: EnricherPort;
  store: StorePort;
  publisher: PublisherPort;
  events: EventLog;
  clock: Clock;
  /** Partition-key groups processed at once. */
  concurrency?: number;
  /** Attempts for a transient failure before it is reported (default 3). */
  attempts?: number;
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Readings per chunk (default INGEST_CHUNK_READINGS). A store with a high fixed cost per write (the
   * local DuckDB store: one staged anti-join insert, serialised) wants fewer, larger chunks.
   */
  chunkReadings?: number;
  /**
   * After each chunk is stored: for every message that carried readings, how long after its receipt
   * (the envelope's receivedAt, stamped by the topic rule) its readings were stored, and how many.
   */
  onStored?(latencyMs: number, readings: number): void;
  /** Called for every record-level problem (for the logger); `events`: events that could not be logged. */
  onProblem?: (problem: {
    kind: 'quarantine' | 'transient' | 'events';
    record: IngestRecord;
    error: unknown;
    events?: StoredEvent[];
  }) => void;
}

/** The envelope's fields are the message's: one object per record, handed to the processor as is. */
type Envelope = InboundMessage;

const textDecoder = new TextDecoder('utf-8', { fatal: true });

class EnvelopeError extends DualpathError {
  readonly retryable = false;
  constructor(
    readonly code: string,
    message: string,
    field: string,
  ) {
    super(message, { field });
  }
}

/** Payloads are decoded into shared 64 KiB slabs (as Buffer's pool does, without a Buffer per payload). */
const SLAB_BYTES = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/** Base64 → a plain Uint8Array of the decoded bytes (decoded byte values stay plain arrays, not Buffers). */
function base64Bytes(b64: string): Uint8Array {
  // At most 3 bytes per 4 characters (Buffer's decoder skips what is not base64, never adds).
  const max = (b64.length >>> 2) * 3 + 3;
  if (max > SLAB_BYTES / 8) {
    const b = Buffer.from(b64, 'base64');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  if (slabUsed + max > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const n = slab.write(b64, slabUsed, max, 'base64');
  const bytes = new Uint8Array(slab.buffer, slab.byteOffset + slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return bytes;
}

/** Parses the IoT-rule envelope: {"payload":"<base64>","topic":"...","receivedAt":ms,"clientId":"..."}. */
export function parseRuleEnvelope(data: Uint8Array): Envelope {
  const env = envelopeFields(data);
  const envelope: Envelope = {
    topic: env.topic as string,
    payload: base64Bytes(env.payload as string),
    receivedAt: env.receivedAt as number,
  };
  if (typeof env.clientId === 'string') envelope.clientId = env.clientId;
  const redrive = redriveOf(env.redrive);
  if (redrive !== undefined) envelope.redriveOf = redrive;
  return envelope;
}

/**
 * The envelope field a redriven record carries: `"redrive": {"sequenceNumber": "<first sequence
 * number>"}` (infra/redrive.ts writes it). Anything else there is ignored.
 */
function redriveOf(field: unknown): string | undefined {
  if (field === null || typeof field !== 'object') return undefined;
  const seq = (field as { sequenceNumber?: unknown }).sequenceNumber;
  return typeof seq === 'string' && /^[0-9]{1,128}$/.test(seq) ? seq : undefined;
}

/** The envelope's payload field exactly as sent (base64 text), for quarantine entries. */
function envelopePayloadText(data: Uint8Array): string {
  return envelopeFields(data).payload as string;
}

/** The envelope's JSON object, its fields checked (the errors every malformed envelope gets). */
function envelopeFields(data: Uint8Array): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textDecoder.decode(data));
  } catch {
    throw new EnvelopeError('ENVELOPE_JSON', 'record data is not a JSON envelope', 'data');
  }
  if (parsed === null || typeof parsed !== 'object') {
    throw new EnvelopeError('ENVELOPE_SHAPE', 'record data must be a JSON object', 'data');
  }
  const env = parsed as Record<string, unknown>;
  if (typeof env.topic !== 'string' || env.topic.length === 0) {
    throw new EnvelopeError('ENVELOPE_FIELD', 'envelope "topic" must be a non-empty string', 'topic');
  }
  if (typeof env.payload !== 'string') {
    throw new EnvelopeError('ENVELOPE_FIELD', 'envelope "payload" must be a base64 string', 'payload');
  }
  if (typeof env.receivedAt !== 'number' || !Number.isFinite(env.receivedAt)) {
    throw new EnvelopeError(
      'ENVELOPE_FIELD',
      'envelope "receivedAt" must be epoch milliseconds',
      'receivedAt',
    );
  }
  return env;
}

export function emptyStats(): IngestStats {
  return {
    records: 0,
    messages: 0,
    readingsDecoded: 0,
    readingsStored: 0,
    readingsPending: 0,
    duplicates: 0,
    quarantined: 0,
    rejectedByStore: 0,
    actionsPublished: 0,
    rebirthsRequested: 0,
    registrations: 0,
    transientFailures: 0,
    retries: 0,
    eventsUnwritten: 0,
    actionsRefused: 0,
  };
}

interface RecordResult {
  record: IngestRecord;
  envelope?: Envelope;
  /** Readings the message produced. */
  readings?: number;
  /** Where its readings start in the chunk's reading list (they are contiguous). */
  readingStart?: number;
  events: LifecycleEvent[];
  actions: PublishAction[];
  deviceId?: string;
  group?: string;
  quarantine?: QuarantineEntry;
}

/** Shared empty events/actions of the (many) records that have none: fewer objects kept per batch. */
const NONE = Object.freeze([]) as unknown as never[];

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `fn`, retrying retryable failures with exponential backoff and jitter-free delays. */
async function withRetry<T>(
  fn: () => Promise<T>,
  deps: IngestDeps,
  stats: IngestStats,
  retryIf: (error: unknown) => boolean = isRetryable,
): Promise<T> {
  const attempts = deps.attempts ?? 3;
  const sleep = deps.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!retryIf(error) || attempt >= attempts) throw error;
      stats.retries++;
      await sleep((deps.baseDelayMs ?? 50) * 2 ** (attempt - 1));
    }
  }
}

/** Handles a message as withRetry(() => handle(message)) does, without a closure for the first attempt. */
async function handleWithRetry(
  message: InboundMessage,
  deps: IngestDeps,
  stats: IngestStats,
): Promise<MessageOutcome> {
  try {
    return await deps.processor.handle(message);
  } catch (error) {
    const attempts = deps.attempts ?? 3;
    if (!isRetryable(error) || attempts <= 1) throw error;
    stats.retries++;
    await (deps.sleep ?? defaultSleep)(deps.baseDelayMs ?? 50);
  }
  // Attempts 2.. with the same delays: withRetry's attempt k is this function's attempt k + 1.
  return withRetry(
    () => deps.processor.handle(message),
    { ...deps, attempts: (deps.attempts ?? 3) - 1, baseDelayMs: (deps.baseDelayMs ?? 50) * 2 },
    stats,
  );
}

/**
 * What event ids are derived from: the record's sequence number, or for a redriven record the one it
 * first had, so a redrive rewrites the same event items instead of adding copies (ADR 0017).
 */
function sourceKey(r: { record: IngestRecord; envelope?: Envelope }): string {
  return r.envelope?.redriveOf ?? r.record.sequenceNumber;
}

/**
 * Readings decoded, enriched and stored at a time (about: chunks are whole records). The readings of a
 * chunk are stored before the next chunk is decoded, so a large batch never holds all its readings at
 * once: they die young instead of being copied through the young generation (with the whole 10,000-record
 * batch held, a quarter of the handler's CPU time was GC). The first chunk is
 * `INGEST_FIRST_CHUNK_RECORDS` records; later ones are sized from the readings per record seen so far.
 */
export const INGEST_CHUNK_READINGS = 2048;
export const INGEST_FIRST_CHUNK_RECORDS = 32;

/** Per-batch state carried across chunks. */
interface BatchRun {
  records: IngestRecord[];
  deps: IngestDeps;
  stats: IngestStats;
  /** Per record: its message, or its quarantine result when the envelope is malformed. */
  parsed: Array<InboundMessage | RecordResult>;
  /** Records reported for redelivery (a transient failure and the later records of its key). */
  failed: Set<IngestRecord>;
  /** Keys that failed transiently: their records in later chunks are not processed. */
  failedKeys: Set<string>;
  results: RecordResult[];
  /** Devices already handed to enricher.prepare in this batch. */
  prepared: Set<string>;
  /** Devices whose readings enrichment left out (quarantined at the end of the batch). */
  unknown: Set<string>;
  storeRejects: StoredEvent[];
}

export async function processBatch(records: IngestRecord[], deps: IngestDeps): Promise<IngestResult> {
  const stats = emptyStats();
  stats.records = records.length;

  deps.processor.begin?.();

  // 1. Envelopes first, so the processor can load the protocol state of the whole batch in bulk.
  const parsed: Array<InboundMessage | RecordResult> = new Array(records.length);
  const messages: InboundMessage[] = [];
  for (let i = 0; i < records.length; i++) {
    const p = parseRecord(records[i]!, deps);
    parsed[i] = p;
    if (!('record' in p)) messages.push(p);
  }
  if (deps.processor.prepare && messages.length > 0) {
    try {
      await withRetry(() => deps.processor.prepare!(messages), deps, stats);
    } catch (error) {
      return failEverything(records, stats, deps, error);
    }
  }

  // 2. Chunk by chunk: decode + protocol state (in order per key, keys concurrently), then enrich and
  // store the chunk's readings. Every reading is stored before any state is flushed (step 3).
  const run: BatchRun = {
    records,
    deps,
    stats,
    parsed,
    failed: new Set(),
    failedKeys: new Set(),
    results: [],
    prepared: new Set(),
    unknown: new Set(),
    storeRejects: [],
  };
  // (An empty batch is one empty chunk: the enricher is still prepared once, as for any batch.)
  const chunkReadings = deps.chunkReadings ?? INGEST_CHUNK_READINGS;
  let size = Math.max(INGEST_FIRST_CHUNK_RECORDS, Math.floor(chunkReadings / 64));
  for (let start = 0; start === 0 || start < records.length; start += size) {
    if (start > 0) {
      const perRecord = stats.readingsDecoded / start;
      size = Math.max(1, Math.floor(chunkReadings / Math.max(1, perRecord)));
    }
    const end = Math.min(records.length, start + size);
    const readings: Reading[] = [];
    const chunk = await decodeChunk(run, start, end, readings);
    try {
      await storeChunk(run, chunk, readings, start === 0);
    } catch (error) {
      return failEverything(records, stats, deps, error);
    }
  }
  const { results, unknown, storeRejects, failed } = run;
  const good: RecordResult[] = [];
  for (const r of results) {
    if (r.quarantine !== undefined) continue;
    good.push(r);
    if (r.deviceId !== undefined && unknown.has(r.deviceId) && r.envelope) {
      r.quarantine = quarantineEntry(deps.protocol, r.record, r.envelope, {
        code: 'UNKNOWN_DEVICE',
        message: `device "${r.deviceId}" is not registered and auto-registration is off`,
        field: 'deviceId',
      });
    }
  }

  // 3. State changes of the batch are written once per key — after the readings are stored: a batch
  // that fails before this point is redelivered against the state it started from (had a later death or
  // de-registration been persisted first, the redelivered DATA before it would be dropped). A conflict
  // means another writer moved the state: the batch is redelivered and decided again (its readings,
  // already stored, are re-written as duplicates). Devices hear answers only after their state is saved.
  // A throttled write is retried (the caches keep what is still unwritten); a conflict is not: the
  // state moved under us and the batch has to be decided again.
  try {
    await withRetry(
      async () => {
        await deps.processor.commit?.();
      },
      deps,
      stats,
      (error) => isRetryable(error) && !(error instanceof ConflictError),
    );
  } catch (error) {
    return failEverything(records, stats, deps, error);
  }

  // 4. Publish actions (rebirth requests, LwM2M responses); a persistent failure is retried via the stream.
  const actions: PublishAction[] = [];
  for (const r of good) if (!r.quarantine) for (const a of r.actions) actions.push(a);
  if (actions.length > 0) {
    try {
      await withRetry(() => deps.publisher.publish(actions), deps, stats);
      stats.actionsPublished = actions.length;
    } catch (error) {
      if (isRetryable(error)) return failEverything(records, stats, deps, error);
      // Refused for good (a topic the broker will not take): publish one by one, report the refused.
      for (const r of good) {
        for (const a of r.actions) {
          try {
            await withRetry(() => deps.publisher.publish([a]), deps, stats);
            stats.actionsPublished++;
          } catch (e) {
            if (isRetryable(e)) return failEverything(records, stats, deps, e);
            stats.actionsRefused++;
            const reason = describeError(e);
            r.events = [
              ...r.events,
              {
                type: 'publish-refused',
                protocol: deps.protocol,
                deviceId: r.deviceId ?? deviceFromTopic(a.topic),
                time: r.envelope?.receivedAt ?? deps.clock(),
                detail: `${reason.code}: ${reason.message}`,
                data: { topic: a.topic, reason: a.reason },
              } satisfies LifecycleEvent,
            ];
          }
        }
      }
    }
  }

  // 5. Lifecycle events and quarantine entries go to the event log (deterministic ids: idempotent).
  const events: StoredEvent[] = [...storeRejects];
  for (const r of results) {
    if (r.quarantine) {
      stats.quarantined++;
      deps.onProblem?.({ kind: 'quarantine', record: r.record, error: r.quarantine.reason });
      events.push(
        quarantineEvent(
          r.quarantine,
          r.deviceId ?? deviceFromTopic(r.quarantine.topic),
          eventId(r.quarantine.receivedAt, sourceKey(r), 0),
        ),
      );
      continue;
    }
    r.events.forEach((e, i) => {
      const stored: StoredEvent = { ...e, id: eventId(e.time, sourceKey(r), i + 1) };
      const type = deps.enricher.deviceType?.(e.deviceId);
      if (type !== undefined) stored.deviceType = type;
      events.push(stored);
      if (e.type === 'rebirth-requested' && e.data?.throttled !== true) stats.rebirthsRequested++;
      if (e.type === 'register') stats.registrations++;
    });
  }
  if (events.length > 0) await appendEvents(events, records, deps, stats);

  // 6. The registry's view of each device (last seen, online, registration): one write per device.
  if (deps.enricher.record && deps.enricher.flush) {
    for (const r of good) {
      if (r.quarantine || r.deviceId === undefined || !r.envelope) continue;
      deps.enricher.record(r.deviceId, deps.protocol, r.envelope.receivedAt, r.events, r.group);
    }
    try {
      await withRetry(() => deps.enricher.flush!(), deps, stats);
    } catch (error) {
      // Registry bookkeeping is not worth redelivering a stored batch for: report and go on.
      deps.onProblem?.({ kind: 'transient', record: records[0]!, error });
    }
  }

  stats.messages = results.length;
  return { batchItemFailures: lowestFailure(records, failed), stats };
}

/**
 * Appends the batch's events without ever failing its readings or state, already stored: with their own
 * retry budget (EVENT_APPEND_ATTEMPTS), and when a write is refused for good, event by event, so one
 * event the log cannot take costs only itself. What still cannot be written is reported (the handler
 * logs each event in full, so nothing is lost without a trace) and counted in `eventsUnwritten`.
 */
export const EVENT_APPEND_ATTEMPTS = 6;

async function appendEvents(
  events: StoredEvent[],
  records: IngestRecord[],
  deps: IngestDeps,
  stats: IngestStats,
): Promise<void> {
  const budget = { ...deps, attempts: Math.max(deps.attempts ?? 3, EVENT_APPEND_ATTEMPTS) };
  try {
    await withRetry(() => deps.events.append(events), budget, stats);
    return;
  } catch (error) {
    if (isRetryable(error) || events.length === 1) {
      stats.eventsUnwritten += events.length;
      deps.onProblem?.({ kind: 'events', record: records[0]!, error, events });
      return;
    }
  }
  // Refused (not throttled): one event at a time, so only the offending ones are left out.
  for (const e of events) {
    try {
      await withRetry(() => deps.events.append([e]), budget, stats);
    } catch (error) {
      stats.eventsUnwritten++;
      deps.onProblem?.({ kind: 'events', record: records[0]!, error, events: [e] });
    }
  }
}

/**
 * Decodes records [start, end): in order per partition key, keys concurrently. The readings of the
 * records that went through are appended to `readings`; the chunk's results are returned (and kept in
 * `run.results`, without their readings).
 */
async function decodeChunk(
  run: BatchRun,
  start: number,
  end: number,
  readings: Reading[],
): Promise<RecordResult[]> {
  const { records, deps, stats, parsed, failed, failedKeys } = run;
  const groups = new Map<string, number[]>();
  for (let i = start; i < end; i++) {
    const record = records[i]!;
    if (failedKeys.has(record.partitionKey)) {
      failed.add(record); // an earlier chunk gave up on this key: redelivered with it
      continue;
    }
    const group = groups.get(record.partitionKey);
    if (group) group.push(i);
    else groups.set(record.partitionKey, [i]);
  }
  const chunk: RecordResult[] = [];
  const queue = [...groups.values()];
  const runGroup = async (group: number[]) => {
    for (let g = 0; g < group.length; g++) {
      const i = group[g]!;
      const record = records[i]!;
      try {
        const result = await processRecord(record, parsed[i]!, deps, stats, readings);
        chunk.push(result);
      } catch (error) {
        // Transient (after retries): this record and the rest of its key are redelivered.
        stats.transientFailures++;
        deps.onProblem?.({ kind: 'transient', record, error });
        for (let later = g; later < group.length; later++) failed.add(records[group[later]!]!);
        failedKeys.add(record.partitionKey);
        return;
      }
    }
  };
  let next = 0;
  const workers = Array.from({ length: Math.min(deps.concurrency ?? 8, queue.length) }, async () => {
    while (next < queue.length) await runGroup(queue[next++]!);
  });
  await Promise.all(workers);
  for (const r of chunk) run.results.push(r);
  return chunk;
}

/** Enriches and stores a chunk's readings (throws when a dependency keeps failing). */
async function storeChunk(
  run: BatchRun,
  chunk: RecordResult[],
  readings: Reading[],
  first: boolean,
): Promise<void> {
  const { deps, stats, prepared } = run;
  const deviceIds: string[] = [];
  for (const r of chunk) {
    if (r.quarantine !== undefined || !r.deviceId || prepared.has(r.deviceId)) continue;
    prepared.add(r.deviceId);
    deviceIds.push(r.deviceId);
  }
  stats.readingsDecoded += readings.length;
  // The first chunk always prepares (as the whole batch did before chunks), later ones only for devices
  // not seen yet in the batch: a device is read from the registry at most once per batch.
  if (first || deviceIds.length > 0) {
    await withRetry(() => deps.enricher.prepare(deviceIds), deps, stats);
  }
  if (readings.length === 0) return;
  const out = deps.enricher.enrich(readings);
  for (const id of out.unknownDevices) run.unknown.add(id);
  const enriched = out.enriched;
  if (enriched.length === 0) return;
  let written: Awaited<ReturnType<StorePort['write']>>;
  try {
    written = await withRetry(() => deps.store.write(enriched), deps, stats);
  } catch (error) {
    if (isRetryable(error)) throw error; // the store itself is failing: the batch is redelivered
    // Refused for good: a record's readings caused it. Store record by record; quarantine the culprits.
    written = await storeRecordByRecord(run, chunk, readings);
  }
  if (deps.onStored) {
    const now = deps.clock();
    for (const r of chunk) {
      if (r.readings && r.envelope && !run.unknown.has(r.deviceId!))
        deps.onStored(now - r.envelope.receivedAt, r.readings);
    }
  }
  stats.readingsStored += written.written;
  stats.readingsPending += written.pending ?? 0;
  stats.duplicates += written.duplicates;
  const offset = stats.rejectedByStore;
  stats.rejectedByStore += written.rejected.length;
  written.rejected.forEach((rej, i) => {
    run.storeRejects.push({
      id: eventId(rej.reading.time, `store-${rej.reading.deviceId}-${rej.reading.metric}`, offset + i),
      type: 'quarantined',
      protocol: rej.reading.protocol,
      deviceId: rej.reading.deviceId,
      deviceType: rej.reading.enrichment.deviceType,
      time: rej.reading.time,
      detail: `${rej.code}: ${rej.reason}`,
      data: {
        reading: { metric: rej.reading.metric, time: rej.reading.time, type: rej.reading.type },
        reason: rej,
      },
    });
  });
}

/**
 * After the store refused a chunk outright (a non-retryable error, not a per-reading rejection): each
 * record's readings are written on their own, so the records that cause the refusal are quarantined
 * (STORE_REFUSED) and every other record is stored. A retryable failure still fails the batch.
 */
async function storeRecordByRecord(
  run: BatchRun,
  chunk: RecordResult[],
  readings: Reading[],
): Promise<Awaited<ReturnType<StorePort['write']>>> {
  const { deps, stats } = run;
  const total: Awaited<ReturnType<StorePort['write']>> = { written: 0, duplicates: 0, rejected: [] };
  for (const r of chunk) {
    if (r.quarantine !== undefined || !r.readings || r.readingStart === undefined || !r.envelope) continue;
    const own = deps.enricher.enrich(readings.slice(r.readingStart, r.readingStart + r.readings)).enriched;
    if (own.length === 0) continue;
    try {
      const out = await withRetry(() => deps.store.write(own), deps, stats);
      total.written += out.written;
      total.duplicates += out.duplicates;
      total.pending = (total.pending ?? 0) + (out.pending ?? 0);
      for (const rej of out.rejected) total.rejected.push(rej);
    } catch (error) {
      if (isRetryable(error)) throw error;
      const reason = describeError(error);
      r.quarantine = quarantineEntry(deps.protocol, r.record, r.envelope, {
        code: 'STORE_REFUSED',
        message: `the telemetry store refused this message's readings: ${reason.message}`,
        field: reason.field ?? 'readings',
      });
    }
  }
  return total;
}

/** The record's message (its envelope), or its quarantine result when the envelope is malformed. */
function parseRecord(record: IngestRecord, deps: IngestDeps): InboundMessage | RecordResult {
  try {
    return parseRuleEnvelope(record.data);
  } catch (error) {
    const raw = Buffer.from(record.data).toString('base64');
    return {
      record,
      events: NONE,
      actions: NONE,
      quarantine: {
        protocol: deps.protocol,
        topic: '',
        ...boundedPayload(raw),
        receivedAt: deps.clock(),
        reason: describeError(error),
        source: { sequenceNumber: record.sequenceNumber, partitionKey: record.partitionKey },
      },
    };
  }
}

/**
 * Times a reading or event may carry: from 2000-01-01 UTC to one day after the broker received the
 * message. Outside it a time is a device bug (an unset clock, a unit mix-up, a value that wrapped): the
 * message is quarantined instead of being stored in the wrong place — or, beyond JavaScript's Date
 * range, failing the batch in whichever dependency formats it first.
 */
export const MIN_READING_TIME = Date.UTC(2000, 0, 1);
export const MAX_READING_AHEAD_MS = 86_400_000;

class TimeRangeError extends DualpathError {
  readonly retryable = false;
  readonly code = 'TIME_OUT_OF_RANGE';
}

export function checkTimes(outcome: MessageOutcome, receivedAt: number): void {
  const max = receivedAt + MAX_READING_AHEAD_MS;
  const rs = outcome.readings;
  for (let i = 0; i < rs.length; i++) {
    const t = rs[i]!.time;
    // Written so that NaN fails too.
    if (!(t >= MIN_READING_TIME && t <= max)) {
      throw new TimeRangeError(
        `reading ${rs[i]!.metric} has time ${t}, outside [${new Date(MIN_READING_TIME).toISOString()}, receipt + 1 day]`,
        { field: `readings[${i}].time` },
      );
    }
  }
  const es = outcome.events;
  for (let i = 0; i < es.length; i++) {
    const t = es[i]!.time;
    if (!(t >= MIN_READING_TIME && t <= max)) {
      throw new TimeRangeError(`${es[i]!.type} event has time ${t}, outside the accepted range`, {
        field: 'timestamp',
      });
    }
  }
}

/** Handles one record; its readings (if it went through) are appended to `readings`. */
async function processRecord(
  record: IngestRecord,
  parsed: InboundMessage | RecordResult,
  deps: IngestDeps,
  stats: IngestStats,
  readings: Reading[],
): Promise<RecordResult> {
  if ('record' in parsed) return parsed;
  const message = parsed;
  try {
    const outcome = await handleWithRetry(message, deps, stats);
    deps.processor.handled?.(outcome);
    const rs = outcome.readings;
    checkTimes(outcome, message.receivedAt);
    const readingStart = readings.length;
    for (let i = 0; i < rs.length; i++) readings.push(rs[i]!);
    const result: RecordResult = {
      record,
      envelope: message,
      readings: rs.length,
      readingStart,
      events: outcome.events.length === 0 ? NONE : outcome.events,
      actions: outcome.actions.length === 0 ? NONE : outcome.actions,
      deviceId: outcome.deviceId,
    };
    if (outcome.group !== undefined) result.group = outcome.group;
    return result;
  } catch (error) {
    if (isRetryable(error)) throw error;
    // Bad input (or a decoder bug surfacing as a plain Error): never lose the record, quarantine it.
    return {
      record,
      envelope: message,
      events: NONE,
      actions: NONE,
      deviceId: deviceFromTopic(message.topic),
      quarantine: quarantineEntry(deps.protocol, record, message, describeError(error)),
    };
  }
}

/**
 * Quarantine entries keep at most the first 64 KiB of the payload's base64 text, with the full text's
 * length and SHA-256: an entry is always far below DynamoDB's 400 KB item limit, whatever was sent.
 */
export const MAX_QUARANTINE_PAYLOAD = 65_536;
const MAX_QUARANTINE_TOPIC = 1024;

function boundedPayload(
  base64: string,
): Pick<QuarantineEntry, 'payload' | 'payloadTruncated' | 'payloadLength' | 'payloadSha256'> {
  if (base64.length <= MAX_QUARANTINE_PAYLOAD) return { payload: base64 };
  return {
    payload: base64.slice(0, MAX_QUARANTINE_PAYLOAD),
    payloadTruncated: true,
    payloadLength: base64.length,
    payloadSha256: createHash('sha256').update(base64).digest('hex'),
  };
}

function quarantineEntry(
  protocol: Protocol,
  record: IngestRecord,
  envelope: Envelope,
  reason: { code: string; message: string; field?: string },
): QuarantineEntry {
  const entry: QuarantineEntry = {
    protocol,
    topic:
      envelope.topic.length > MAX_QUARANTINE_TOPIC
        ? envelope.topic.slice(0, MAX_QUARANTINE_TOPIC)
        : envelope.topic,
    // The payload text as sent (the message only keeps its bytes): the envelope is read again.
    ...boundedPayload(envelopePayloadText(record.data)),
    receivedAt: envelope.receivedAt,
    reason,
    source: { sequenceNumber: record.sequenceNumber, partitionKey: record.partitionKey },
  };
  if (envelope.clientId !== undefined) entry.clientId = envelope.clientId;
  return entry;
}

/** Best-effort device id for a quarantined message: Sparkplug node (level 4) or LwM2M endpoint (last level). */
export function deviceFromTopic(topic: string): string {
  const parts = topic.split('/');
  if (parts[0] === 'spBv1.0') return parts[3] ?? '';
  return parts.at(-1) ?? '';
}

function failEverything(
  records: IngestRecord[],
  stats: IngestStats,
  deps: IngestDeps,
  error: unknown,
): IngestResult {
  stats.transientFailures++;
  // The batch is redelivered: protocol state advanced in memory must not outlive it.
  deps.processor.abort?.();
  const first = records[0];
  // A dependency failing (even non-retryably) is not the records' fault: the stream redelivers them.
  if (first) deps.onProblem?.({ kind: 'transient', record: first, error });
  return { batchItemFailures: first ? [{ itemIdentifier: first.sequenceNumber }] : [], stats };
}

/**
 * Lambda checkpoints at the lowest reported sequence number and redelivers everything after it, so
 * reporting the lowest failed record is both sufficient and exact.
 */
function lowestFailure(
  records: IngestRecord[],
  failed: Set<IngestRecord>,
): Array<{ itemIdentifier: string }> {
  for (const record of records) if (failed.has(record)) return [{ itemIdentifier: record.sequenceNumber }];
  return [];
}
