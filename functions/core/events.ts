/**
 * The lifecycle event log (registrations, births, deaths, stale, quarantined messages) that the API
 * serves at /events. Quarantined messages are events too: they carry the topic, the payload and the
 * reason, so nothing rejected is ever lost.
 */
import type { LifecycleEvent, Protocol } from './reading.js';

export interface StoredEvent extends LifecycleEvent {
  /** Time-ordered, deterministic id (so a redelivered record rewrites the same event). */
  id: string;
  /** Device type from the registry when known (for application-scoped reads). */
  deviceType?: string;
}

export interface QuarantineEntry {
  protocol: Protocol;
  topic: string;
  /** The original payload, base64 — its first MAX_QUARANTINE_PAYLOAD characters when truncated. */
  payload: string;
  /** Set when `payload` holds only the start of the payload's base64 text. */
  payloadTruncated?: boolean;
  /** Length of the whole base64 text (when truncated). */
  payloadLength?: number;
  /** SHA-256 (hex) of the whole base64 text (when truncated). */
  payloadSha256?: string;
  clientId?: string;
  receivedAt: number;
  reason: { code: string; message: string; field?: string };
  /** Where it came from (Kinesis sequence number and partition key) when known. */
  source?: { sequenceNumber: string; partitionKey: string };
}

export interface EventQuery {
  since?: string;
  types?: string[];
  deviceIds?: string[];
  deviceTypes?: string[];
  limit?: number;
}

export interface EventLog {
  append(events: StoredEvent[]): Promise<void>;
  list(query: EventQuery): Promise<{ events: StoredEvent[]; nextCursor?: string }>;
}

const ID_TIME_DIGITS = 15;

/**
 * Event ids sort by time: `{epoch ms, zero-padded}-{source key}-{index}`. The source key is the Kinesis
 * sequence number (or another stable id) so re-processing the same record yields the same ids.
 */
export function eventId(time: number, sourceKey: string, index: number): string {
  return `${Math.max(0, Math.trunc(time)).toString().padStart(ID_TIME_DIGITS, '0')}-${sourceKey}-${index}`;
}

export function eventTime(id: string): number {
  return Number.parseInt(id.slice(0, ID_TIME_DIGITS), 10);
}

export function quarantineEvent(entry: QuarantineEntry, deviceId: string, id: string): StoredEvent {
  return {
    id,
    type: 'quarantined',
    protocol: entry.protocol,
    deviceId,
    time: entry.receivedAt,
    detail: `${entry.reason.code}: ${entry.reason.message}`,
    data: { ...entry },
  };
}

/** In-memory event log (tests, `dualpath decode`-style tools). Bounded. */
export class InMemoryEventLog implements EventLog {
  private readonly events = new Map<string, StoredEvent>();
  constructor(private readonly maxEvents = 100_000) {}

  async append(events: StoredEvent[]): Promise<void> {
    for (const e of events) this.events.set(e.id, e);
    if (this.events.size > this.maxEvents) {
      const sorted = [...this.events.keys()].sort();
      for (const id of sorted.slice(0, this.events.size - this.maxEvents)) this.events.delete(id);
    }
  }

  async list(query: EventQuery): Promise<{ events: StoredEvent[]; nextCursor?: string }> {
    const limit = query.limit ?? 100;
    const all = [...this.events.values()]
      .filter((e) => query.since === undefined || e.id > query.since)
      .filter((e) => !query.types || query.types.includes(e.type))
      .filter((e) => !query.deviceIds || query.deviceIds.includes(e.deviceId))
      .filter(
        (e) => !query.deviceTypes || (e.deviceType !== undefined && query.deviceTypes.includes(e.deviceType)),
      )
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const page = all.slice(0, limit);
    const last = page.at(-1);
    return all.length > limit && last ? { events: page, nextCursor: last.id } : { events: page };
  }
}
