import { describe, expect, it } from 'vitest';
import type { StorePort } from '../../functions/core/ingest.js';
import {
  type LiveEvent,
  LiveHub,
  liveAlertSink,
  liveOnIngest,
  liveViewer,
  mayReceive,
  operationPassEvents,
  operationProgress,
} from '../../functions/core/live.js';
import type { InboundMessage, MessageProcessor } from '../../functions/core/processor.js';
import type { EnrichedReading, LifecycleEvent } from '../../functions/core/reading.js';
import type { AlertTransition } from '../../functions/core/rules/model.js';

const reading = (
  deviceId: string,
  deviceType: string,
  over: Partial<EnrichedReading> = {},
): EnrichedReading => ({
  protocol: 'sparkplug',
  deviceId,
  metric: 'Voltage',
  type: 'Float',
  value: 230,
  time: 1000,
  historical: false,
  transient: false,
  quality: 'GOOD',
  enrichment: { deviceType, applications: [] },
  ...over,
});

const app = (...types: string[]) => ({ kind: 'app' as const, deviceTypes: types });

describe('live scoping and hub', () => {
  it('an application receives only its device types; events of unknown type are admin-only', () => {
    const e: LiveEvent = {
      kind: 'reading',
      deviceId: 'd',
      deviceType: 'breaker',
      metric: 'm',
      value: 1,
      time: 1,
      quality: 'GOOD',
    };
    expect(mayReceive(app('breaker'), e)).toBe(true);
    expect(mayReceive(app('env-sensor'), e)).toBe(false);
    expect(mayReceive({ kind: 'admin' }, e)).toBe(true);
    const untyped = operationProgress({ operationId: 'op1', status: 'running', done: 1, total: 4 });
    expect(mayReceive(app('breaker'), untyped)).toBe(false);
    expect(mayReceive({ kind: 'admin' }, untyped)).toBe(true);
  });

  it("an application receives the progress of the operations it started, not another's or the admin's", () => {
    const viewer = liveViewer({ kind: 'app', appId: 'a1', deviceTypes: ['breaker'] });
    const [own] = operationPassEvents([
      {
        changed: 1,
        sent: 0,
        operation: { id: 'op1', status: 'running', total: 2, counts: { pending: 1, sent: 0 }, appId: 'a1' },
      },
    ]);
    expect(own).toMatchObject({ kind: 'operation', operationId: 'op1', appId: 'a1', done: 1 });
    expect(mayReceive(viewer, own!)).toBe(true);
    expect(mayReceive(liveViewer({ kind: 'app', appId: 'a2', deviceTypes: ['breaker'] }), own!)).toBe(false);
    expect(mayReceive({ kind: 'admin' }, own!)).toBe(true);
    const admins = operationProgress({ operationId: 'op2', status: 'running' });
    expect(mayReceive(viewer, admins)).toBe(false);
  });

  it('fans out by device, kind and scope; unsubscribe and watching', () => {
    const hub = new LiveHub();
    const got: Record<string, LiveEvent[]> = { dev: [], fleetApp: [], alertsOnly: [] };
    expect(hub.watching('b1')).toBe(false);
    const off = hub.subscribe({ viewer: app('breaker'), deviceId: 'b1' }, (e) => got.dev!.push(e));
    hub.subscribe({ viewer: app('breaker') }, (e) => got.fleetApp!.push(e));
    hub.subscribe({ viewer: { kind: 'admin' }, kinds: ['alert'] }, (e) => got.alertsOnly!.push(e));
    hub.subscribe({ viewer: { kind: 'admin' }, deviceId: 'b1' }, () => {
      throw new Error('broken connection');
    });
    expect(hub.watching('b1')).toBe(true);
    hub.publish([
      {
        kind: 'reading',
        deviceId: 'b1',
        deviceType: 'breaker',
        metric: 'm',
        value: 1,
        time: 1,
        quality: 'GOOD',
      },
      {
        kind: 'reading',
        deviceId: 'e1',
        deviceType: 'env-sensor',
        metric: 'm',
        value: 2,
        time: 1,
        quality: 'GOOD',
      },
      {
        kind: 'reading',
        deviceId: 'b2',
        deviceType: 'breaker',
        metric: 'm',
        value: 3,
        time: 1,
        quality: 'GOOD',
      },
    ]);
    expect(got.dev!.map((e) => (e as { value: number }).value)).toEqual([1]);
    expect(got.fleetApp!.map((e) => (e as { value: number }).value)).toEqual([1, 3]);
    expect(got.alertsOnly).toEqual([]);
    off();
    hub.publish([
      {
        kind: 'reading',
        deviceId: 'b1',
        deviceType: 'breaker',
        metric: 'm',
        value: 4,
        time: 1,
        quality: 'GOOD',
      },
    ]);
    expect(got.dev).toHaveLength(1);
    expect(hub.subscribers).toBe(3);
  });
});

describe('liveOnIngest', () => {
  function parts(events: LifecycleEvent[]) {
    const processor: MessageProcessor = {
      handle: async () => ({
        protocol: 'sparkplug',
        kind: 'NBIRTH',
        deviceId: 'b1',
        readings: [],
        events,
        actions: [],
      }),
      begin: () => {},
      commit: async () => {},
      abort: () => {},
    };
    const store: StorePort = {
      write: async (readings) => ({
        written: readings.length - 1,
        duplicates: 0,
        rejected: [{ reading: readings[0]!, reason: 'bad', code: 'BAD' }],
      }),
    };
    return { processor, store };
  }
  const birth: LifecycleEvent = { type: 'birth', protocol: 'sparkplug', deviceId: 'b1', time: 5 };

  it('publishes stored, non-historical readings of watched devices only', async () => {
    const published: LiveEvent[] = [];
    const { store } = liveOnIngest(parts([]), {
      live: { publish: (es) => published.push(...es) },
      watching: (id) => id !== 'unwatched',
    });
    await store.write([
      reading('b1', 'breaker', { value: 1 }), // rejected by the store
      reading('b1', 'breaker', { value: 2 }),
      reading('b1', 'breaker', { value: 3, historical: true }),
      reading('unwatched', 'breaker', { value: 4 }),
    ]);
    expect(published.map((e) => (e as { value: number }).value)).toEqual([2]);
    expect(published[0]).toMatchObject({ kind: 'reading', deviceId: 'b1', deviceType: 'breaker' });
  });

  it('publishes lifecycle events after commit with the device type, drops them on abort, never throws', async () => {
    const published: LiveEvent[] = [];
    const { processor } = liveOnIngest(parts([birth]), {
      live: {
        publish: (es) => {
          published.push(...es);
          throw new Error('transport down');
        },
      },
      deviceType: () => 'breaker',
    });
    const msg = {} as InboundMessage;
    processor.begin!();
    processor.handled!(await processor.handle(msg)); // as processBatch does
    processor.abort!();
    processor.begin!();
    await processor.commit!();
    expect(published).toEqual([]);
    processor.begin!();
    processor.handled!(await processor.handle(msg)); // as processBatch does
    await processor.commit!();
    expect(published).toEqual([
      { kind: 'lifecycle', deviceId: 'b1', deviceType: 'breaker', time: 5, event: birth },
    ]);
  });

  it('the alert sink pushes transitions without their actions', async () => {
    const published: LiveEvent[] = [];
    const t = {
      id: 't1',
      alertId: 'a1',
      kind: 'open',
      deviceId: 'b1',
      deviceType: 'breaker',
      at: 9,
      actions: [{ kind: 'webhook' }],
    } as unknown as AlertTransition;
    await liveAlertSink({ publish: (es) => published.push(...es) }).deliver(t);
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ kind: 'alert', deviceId: 'b1', deviceType: 'breaker', time: 9 });
    expect((published[0] as { transition: object }).transition).not.toHaveProperty('actions');
  });
});
