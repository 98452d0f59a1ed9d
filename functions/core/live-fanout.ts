/**
 * Live updates over connections held elsewhere (ADR 0023, AWS: API Gateway WebSocket connections): a
 * LivePublisher for functions that hold no connection themselves (ingest, rules clock, operations
 * worker). Who watches is read from the connection store — one listing per `ttlMs` per instance,
 * cached — and routed through a LiveHub built from it, so the filter (device, kinds) and the scoping
 * (`mayReceive`) are the ones the local stack applies. Each connection gets its events of one publish
 * as one message `{"events":[...]}` (split below the transport's message size). A connection the
 * transport reports gone is deleted from the store. Best effort: nothing here ever throws to the caller;
 * `flush()` waits for the posts in flight (a Lambda must not return before them).
 */
import { type LiveEvent, LiveHub, type LivePublisher, type LiveSubscription } from './live.js';
import type { Clock } from './processor.js';

/** One live connection as the publisher sees it: its id and what it subscribed to (already authorized). */
export interface LiveConnection {
  id: string;
  sub: LiveSubscription;
}

export interface LiveConnectionSource {
  /** Every open connection (one read; called at most once per TTL per instance). */
  list(): Promise<LiveConnection[]>;
  /** Forgets a connection the transport reported gone. */
  remove(id: string): Promise<void>;
}

/** Sends one message to one connection: `gone` when the transport says it no longer exists (HTTP 410). */
export type LivePost = (connectionId: string, data: string) => Promise<'ok' | 'gone'>;

export interface ConnectionFanoutOptions {
  connections: LiveConnectionSource;
  post: LivePost;
  clock: Clock;
  /** How long the list of connections is trusted (default 10 s). */
  ttlMs?: number;
  /** Largest message sent (default 96 KiB; API Gateway takes up to 128 KiB per message). */
  maxMessageBytes?: number;
  /** A failed list, post or delete (logged by the caller; never thrown). */
  onError?: (what: string, error: unknown) => void;
}

export interface FanoutStats {
  lists: number;
  posts: number;
  gone: number;
  failed: number;
}

interface Snapshot {
  at: number;
  hub: LiveHub;
  /** Events collected per connection during one hub.publish. */
  outbox: Map<string, LiveEvent[]>;
  connections: LiveConnection[];
}

export class ConnectionFanout implements LivePublisher {
  private snapshot: Snapshot | undefined;
  private loading: Promise<Snapshot | undefined> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly ttlMs: number;
  private readonly maxBytes: number;
  readonly stats: FanoutStats = { lists: 0, posts: 0, gone: 0, failed: 0 };

  constructor(private readonly o: ConnectionFanoutOptions) {
    this.ttlMs = o.ttlMs ?? 10_000;
    this.maxBytes = o.maxMessageBytes ?? 96 * 1024;
  }

  /**
   * Anyone watching this device (or the fleet)? From the cached list: unknown before the first listing
   * (true: the events are built, and dropped at delivery if nobody watches); a stale list is answered
   * from and refreshed in the background.
   */
  watching(deviceId: string): boolean {
    const s = this.snapshot;
    if (!s) {
      this.track(this.current());
      return true;
    }
    if (this.o.clock() - s.at >= this.ttlMs) this.track(this.current());
    return s.hub.watching(deviceId);
  }

  publish(events: LiveEvent[]): void {
    if (events.length === 0) return;
    const s = this.snapshot;
    // Fresh and nobody connected: nothing to do, not even a promise.
    if (s && s.hub.subscribers === 0 && this.o.clock() - s.at < this.ttlMs) return;
    this.track(this.deliver(events));
  }

  /** Waits for every post, delete and listing in flight; never rejects. */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Drops the cached list (the next publish lists again). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((error: unknown) => this.o.onError?.('live publish', error));
    this.inFlight.add(guarded);
    void guarded.finally(() => this.inFlight.delete(guarded));
  }

  private current(): Promise<Snapshot | undefined> {
    const s = this.snapshot;
    if (s && this.o.clock() - s.at < this.ttlMs) return Promise.resolve(s);
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<Snapshot | undefined> {
    let list: LiveConnection[];
    try {
      this.stats.lists++;
      list = await this.o.connections.list();
    } catch (error) {
      this.o.onError?.('listing live connections', error);
      // Keep the old list (if any) for another TTL rather than listing again at every batch.
      if (this.snapshot) this.snapshot = { ...this.snapshot, at: this.o.clock() };
      return this.snapshot;
    }
    this.snapshot = this.build(list, this.o.clock());
    return this.snapshot;
  }

  private async deliver(events: LiveEvent[]): Promise<void> {
    const s = await this.current();
    if (!s || s.hub.subscribers === 0) return;
    s.outbox.clear();
    s.hub.publish(events);
    const batches = [...s.outbox];
    s.outbox.clear();
    await Promise.all(batches.map(([id, list]) => this.send(s, id, list)));
  }

  private async send(s: Snapshot, id: string, events: LiveEvent[]): Promise<void> {
    for (const data of this.messages(events)) {
      let outcome: 'ok' | 'gone';
      try {
        this.stats.posts++;
        outcome = await this.o.post(id, data);
      } catch (error) {
        this.stats.failed++;
        this.o.onError?.(`posting to live connection ${id}`, error);
        return;
      }
      if (outcome === 'gone') {
        this.stats.gone++;
        this.forget(s, id);
        try {
          await this.o.connections.remove(id);
        } catch (error) {
          this.o.onError?.(`deleting gone live connection ${id}`, error);
        }
        return;
      }
    }
  }

  /** A gone connection leaves the cached list at once (no more posts to it until the next listing). */
  private forget(s: Snapshot, id: string): void {
    if (this.snapshot !== s) return;
    this.snapshot = this.build(
      s.connections.filter((c) => c.id !== id),
      s.at,
    );
  }

  /** The LiveHub of a list of connections: LiveHub stays the one owner of the filter and scoping. */
  private build(connections: LiveConnection[], at: number): Snapshot {
    const hub = new LiveHub();
    const outbox = new Map<string, LiveEvent[]>();
    for (const c of connections) {
      hub.subscribe(c.sub, (e) => {
        const box = outbox.get(c.id);
        if (box) box.push(e);
        else outbox.set(c.id, [e]);
      });
    }
    return { at, hub, outbox, connections };
  }

  /** `{"events":[...]}` messages, each below maxBytes (an event larger than that goes alone). */
  private messages(events: LiveEvent[]): string[] {
    const out: string[] = [];
    let part: string[] = [];
    let size = 12;
    for (const e of events) {
      const json = JSON.stringify(e);
      if (part.length > 0 && size + json.length + 1 > this.maxBytes) {
        out.push(`{"events":[${part.join(',')}]}`);
        part = [];
        size = 12;
      }
      part.push(json);
      size += json.length + 1;
    }
    if (part.length > 0) out.push(`{"events":[${part.join(',')}]}`);
    return out;
  }
}
