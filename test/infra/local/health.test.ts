/** The local pipeline's health rule (GET /health): a stuck forwarder, stuck consumers, a lagging stream. */
import { describe, expect, it } from 'vitest';
import { createApiRouter } from '../../../functions/api/router.js';
import { PipelineHealth, type PipelineSample } from '../../../infra/local/health.js';
import { type Api, createApi } from '../../api/fixture.js';

const quiet: PipelineSample = {
  pendingRecords: 0,
  forwarderStalledMs: 0,
  lagRecords: 0,
  recordsRead: 100,
  millisBehind: { sparkplug: 0, lwm2m: 0 },
};

describe('PipelineHealth', () => {
  it('is healthy while idle or making progress, however busy', () => {
    let now = 0;
    const h = new PipelineHealth({ clock: () => now });
    expect(h.check(quiet)).toEqual([]);
    for (let i = 1; i <= 10; i++) {
      now += 20_000;
      // Busy: records pending and waiting, but stored and read all the time.
      expect(
        h.check({
          ...quiet,
          pendingRecords: 5_000,
          forwarderStalledMs: 200,
          lagRecords: 9_000,
          recordsRead: 100 + i * 1_000,
        }),
      ).toEqual([]);
    }
  });

  it('reports a forwarder with records pending and nothing stored for 30 s', () => {
    const h = new PipelineHealth({ clock: () => 0 });
    expect(h.check({ ...quiet, pendingRecords: 12, forwarderStalledMs: 29_999 })).toEqual([]);
    expect(h.check({ ...quiet, pendingRecords: 12, forwarderStalledMs: 45_000 })).toEqual([
      'forwarder stuck: 12 accepted records not stored in Kinesis for 45 s',
    ]);
  });

  it('reports consumers that stop reading while records wait, and a stream far behind its tip', () => {
    let now = 0;
    const h = new PipelineHealth({ clock: () => now, stuckAfterMs: 10_000, lagAfterMs: 60_000 });
    expect(h.check({ ...quiet, lagRecords: 40 })).toEqual([]);
    now = 12_000;
    expect(h.check({ ...quiet, lagRecords: 40, millisBehind: { sparkplug: 0, lwm2m: 61_000 } })).toEqual([
      'consumers stuck: 40 records in Kinesis not read for 12 s',
      'stream lwm2m lags: 61 s behind its tip',
    ]);
    // Reading again: healthy again.
    now = 13_000;
    expect(h.check({ ...quiet, lagRecords: 10, recordsRead: 130 })).toEqual([]);
  });
});

describe('GET /health with a degraded pipeline', () => {
  it('answers 503 degraded with the reasons, and 200 ok once they are gone', async () => {
    const api: Api = await createApi();
    try {
      let reasons: string[] = ['forwarder stuck: 3 accepted records not stored in Kinesis for 31 s'];
      const router = createApiRouter({
        ...api.deps,
        health: async () => ({ online: { sparkplug: 2 }, degraded: reasons }),
      });
      const get = () =>
        router.handle({ method: 'GET', path: '/health', query: {}, headers: {}, body: undefined });
      const degraded = await get();
      expect(degraded.status).toBe(503);
      expect(degraded.body).toMatchObject({ status: 'degraded', reasons, online: { sparkplug: 2 } });
      reasons = [];
      const ok = await get();
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ status: 'ok', online: { sparkplug: 2 } });
      expect(ok.body).not.toHaveProperty('reasons');
      expect(ok.body).not.toHaveProperty('degraded');
    } finally {
      await api.close();
    }
  });
});
