/**
 * Live updates (ADR 0023): the events pushed to subscribers, who may see which (the REST scoping of
 * ADR 0010 applied to events), an in-memory fan-out hub, and the decorators that publish from the
 * ingest path. Pure: no transport here (the local stack serves the hub as Server-Sent Events).
 */
import type { StorePort } from './ingest.js';
import type { InboundMessage, MessageProcessor } from './processor.js';
import type { EnrichedReading, LifecycleEvent, MessageOutcome, ReadingValue } from './reading.js';
import type { AlertSink } from './rules/delivery.js';
import type { AlertTransition } from './rules/model.js';

export const LIVE_KINDS = ['reading', 'lifecycle', 'alert', 'operation'] as const;
export type LiveKind = (typeof LIVE_KINDS)[number];

interface LiveBase {
  /** Device type of the device the event is about (scoping); absent: admin only. */
  deviceType?: string;
  /** Epoch ms the event happened (reading time, event time, transition time). */
  time: number;
}

export interface LiveReadingEvent extends LiveBase {
  kind: 'reading';
  deviceId: string;
  subDevice?: string;
  metric: string;
  name?: string;
  unit?: string;
  value: ReadingValue;
  quality: string;
}

export interface LiveLifecycleEvent extends LiveBase {
  kind: 'lifecycle';
  deviceId: string;
  event: LifecycleEvent;
}

export interface LiveAlertEvent extends LiveBase {
  kind: 'alert';
  deviceId: string;
  transition: Omit<AlertTransition, 'actions'>;
}

/** Progress of a batch operation (firmware rollout, bulk command): published by whoever runs it. */
export interface LiveOperationEvent extends LiveBase {
  kind: 'operation';
  operationId: string;
  /** The device this step is about, when the step is per device. */
  deviceId?: string;
  /** The application that started the operation (its key may watch it); absent: the admin. */
  appId?: string;
  status: string;
  done?: number;
  total?: number;
  detail?: string;
}

export type LiveEvent = LiveReadingEvent | LiveLifecycleEvent | LiveAlertEvent | LiveOperationEvent;

/** Where live events are published (the hub locally; a WebSocket fan-out in AWS, ADR 0023). */
export interface LivePublisher {
  /** Never throws for a subscriber's failure; cheap when nobody watches. */
  publish(events: LiveEvent[]): void;
  /**
   * Waits for the deliveries in flight (a transport that posts asynchronously, the AWS fan-out: a
   * Lambda must not return before them); never rejects. Absent: delivery is synchronous (the hub).
   */
  flush?(): Promise<void>;
}

/** Who is asking: the API principal, reduced to what scoping needs. */
export type LiveViewer = { kind: 'admin' } | { kind: 'app'; deviceTypes: string[]; appId?: string };

/** The viewer of an API principal (admin, or an application key with its id and device types). */
export function liveViewer(
  principal: { kind: 'admin' } | { kind: 'app'; appId: string; deviceTypes: string[] },
): LiveViewer {
  return principal.kind === 'admin'
    ? { kind: 'admin' }
    : { kind: 'app', deviceTypes: principal.deviceTypes, appId: principal.appId };
}

/**
 * The REST rule applied to an event: admin sees all; an app its device types' events, and the progress
 * of the operations it started (as GET /operations/{id} shows it only those).
 */
export function mayReceive(viewer: LiveViewer, event: LiveEvent): boolean {
  if (viewer.kind === 'admin') return true;
  if (event.kind === 'operation' && event.deviceId === undefined)
    return event.appId !== undefined && event.appId === viewer.appId;
  return event.deviceType !== undefined && viewer.deviceTypes.includes(event.deviceType);
}

/** Builds an operation-progress event (the publish API for batch operations). */
export function operationProgress(
  p: Omit<LiveOperationEvent, 'kind' | 'time'> & { time?: number },
): LiveEvent {
  return { kind: 'operation', time: p.time ?? Date.now(), ...p } as LiveOperationEvent;
}

/** What a pass of the operations worker reports per operation (core/operations TickResult, in part). */
export interface OperationPass {
  changed: number;
  sent: number;
  operation: {
    id: string;
    status: string;
    total: number;
    counts: { pending: number; sent: number };
    appId?: string;
  };
}

/** One progress event per operation that moved in a pass: finished targets out of all (admins, and its application). */
export function operationPassEvents(results: readonly OperationPass[]): LiveEvent[] {
  return results
    .filter((r) => r.changed > 0 || r.sent > 0)
    .map(({ operation: op }) =>
      operationProgress({
        operationId: op.id,
        status: op.status,
        done: op.total - op.counts.pending - op.counts.sent,
        total: op.total,
        ...(op.appId !== undefined ? { appId: op.appId } : {}),
      }),
    );
}

export interface LiveSubscription {
  viewer: LiveViewer;
  /** Only events about this device (operations without a device are not sent). */
  deviceId?: string;
  /** Only these kinds (default: all). */
  kinds?: readonly LiveKind[];
}

type Entry = { sub: LiveSubscription; send: (e: LiveEvent) => void };

/** In-memory fan-out: subscriptions by device (and fleet-wide), filtered by kind and scope. */
export class LiveHub implements LivePublisher {
  private readonly byDevice = new Map<string, Set<Entry>>();
  private readonly fleet = new Set<Entry>();
  /** Events sent to subscribers (all subscriptions together), for status and tests. */
  sent = 0;

  subscribe(sub: LiveSubscription, send: (e: LiveEvent) => void): () => void {
    const entry: Entry = { sub, send };
    let set = this.fleet;
    if (sub.deviceId !== undefined) {
      set = this.byDevice.get(sub.deviceId) ?? new Set();
      this.byDevice.set(sub.deviceId, set);
    }
    set.add(entry);
    this.changed();
    return () => {
      set.delete(entry);
      if (sub.deviceId !== undefined && set.size === 0) this.byDevice.delete(sub.deviceId);
      this.changed();
    };
  }

  private readonly watchListeners = new Set<() => void>();

  /**
   * Told whenever a subscription starts or ends (what `watched()` returns may have changed): publishers
   * in other threads keep a copy of it for their `watching` pre-check (ADR 0026).
   */
  onWatchersChange(listener: () => void): () => void {
    this.watchListeners.add(listener);
    return () => this.watchListeners.delete(listener);
  }

  /** Who is watched now: the whole fleet, or these devices. */
  watched(): { fleet: boolean; devices: string[] } {
    return { fleet: this.fleet.size > 0, devices: [...this.byDevice.keys()] };
  }

  private changed(): void {
    for (const l of this.watchListeners) {
      try {
        l();
      } catch {
        // A listener's failure never harms a subscription.
      }
    }
  }

  /** Anyone watching this device (or the fleet)? The check the ingest path makes before building events. */
  watching(deviceId: string): boolean {
    return this.fleet.size > 0 || this.byDevice.has(deviceId);
  }

  get subscribers(): number {
    let n = this.fleet.size;
    for (const s of this.byDevice.values()) n += s.size;
    return n;
  }

  publish(events: LiveEvent[]): void {
    for (const e of events) {
      const device = e.deviceId === undefined ? undefined : this.byDevice.get(e.deviceId);
      if (device) for (const entry of device) this.deliver(entry, e);
      for (const entry of this.fleet) this.deliver(entry, e);
    }
  }

  private deliver(entry: Entry, e: LiveEvent): void {
    if (entry.sub.kinds && !entry.sub.kinds.includes(e.kind)) return;
    if (!mayReceive(entry.sub.viewer, e)) return;
    try {
      entry.send(e);
      this.sent++;
    } catch {
      // One subscriber's broken connection never harms the others or the publisher.
    }
  }
}

/** The live event of a stored reading. */
export function readingEvent(r: EnrichedReading): LiveReadingEvent {
  const e: LiveReadingEvent = {
    kind: 'reading',
    deviceId: r.deviceId,
    deviceType: r.enrichment.deviceType,
    metric: r.metric,
    value: r.value,
    time: r.time,
    quality: r.quality,
  };
  if (r.subDevice !== undefined) e.subDevice = r.subDevice;
  if (r.name !== undefined) e.name = r.name;
  if (r.unit !== undefined) e.unit = r.unit;
  return e;
}

export interface LiveOnIngestOptions {
  live: LivePublisher;
  /** Cheap pre-check (the hub's `watching`); default: everyone is watched. */
  watching?: (deviceId: string) => boolean;
  /** The device type of a device (the enricher's cache), for lifecycle events. */
  deviceType?: (deviceId: string) => string | undefined;
}

/**
 * The processor and store with live publishing woven in (the same decorator pattern as rulesOnIngest):
 * stored readings are published after the store accepted them (rejected ones never), a batch's lifecycle
 * events after its commit (an aborted batch's are dropped). Publishing never fails the batch.
 */
export function liveOnIngest(
  parts: { processor: MessageProcessor; store: StorePort },
  o: LiveOnIngestOptions,
): { processor: MessageProcessor; store: StorePort } {
  const inner = parts.processor;
  const watching = o.watching ?? (() => true);
  let events: LifecycleEvent[] = [];
  const safePublish = (list: LiveEvent[]) => {
    if (list.length === 0) return;
    try {
      o.live.publish(list);
    } catch {
      // Best effort: REST stays the source of truth.
    }
  };
  const flush = async () => {
    try {
      await o.live.flush?.();
    } catch {
      // Best effort.
    }
  };
  const processor: MessageProcessor = {
    handle: (message: InboundMessage) => inner.handle(message),
    handled: (outcome: MessageOutcome) => {
      inner.handled?.(outcome);
      for (const e of outcome.events) if (watching(e.deviceId)) events.push(e);
    },
    begin: () => {
      inner.begin?.();
      events = [];
    },
    commit: async () => {
      await inner.commit?.();
      const list = events;
      events = [];
      safePublish(
        list.map((event) => {
          const type = o.deviceType?.(event.deviceId);
          return {
            kind: 'lifecycle',
            deviceId: event.deviceId,
            time: event.time,
            event,
            ...(type !== undefined ? { deviceType: type } : {}),
          };
        }),
      );
      await flush();
    },
    abort: () => {
      inner.abort?.();
      events = [];
    },
  };
  if (inner.prepare) processor.prepare = (messages) => inner.prepare!(messages);
  const store: StorePort = {
    async write(readings: EnrichedReading[]) {
      const result = await parts.store.write(readings);
      const rejected = new Set(result.rejected.map((r) => r.reading));
      const out: LiveEvent[] = [];
      for (const r of readings)
        if (!rejected.has(r) && !r.historical && watching(r.deviceId)) out.push(readingEvent(r));
      safePublish(out);
      await flush();
      return result;
    },
  };
  return { processor, store };
}

/** An alert sink that pushes every transition (ingest-driven and clock-driven alike); never fails. */
export function liveAlertSink(live: LivePublisher): AlertSink {
  return {
    async deliver(t: AlertTransition) {
      const { actions: _actions, ...transition } = t;
      try {
        live.publish([
          {
            kind: 'alert',
            deviceId: t.deviceId,
            time: t.at,
            transition,
            ...(t.deviceType !== undefined ? { deviceType: t.deviceType } : {}),
          },
        ]);
        await live.flush?.();
      } catch {
        // Best effort.
      }
    },
  };
}
