/**
 * Rule states written behind (ADR 0016 amendment 10) read back through the DynamoDB telemetry store
 * (dynalite): an engine that writes a state only when its alert, hold or due time changes — or a minute
 * of readings later — and is replaced by a new one (a cold start) every few batches fires exactly the
 * transitions of an engine that writes every state every batch.
 */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoTelemetryStore } from '../../functions/adapters/dynamo-telemetry-store.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import {
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  RuleEngine,
  telemetryHistory,
  validateRule,
} from '../../functions/core/rules/index.js';
import {
  createTelemetryTable,
  type LocalTelemetryTable,
  startTelemetryDynalite,
} from './dynamo-telemetry.helpers.js';
import { NOW, reading, T0 } from './telemetry-store.contract.js';

let local: LocalTelemetryTable;
beforeAll(async () => {
  local = await startTelemetryDynalite();
});
afterAll(async () => {
  await local.stop();
});

const CONDITIONS = [
  'mean(30s) > 60 clear mean(30s) < 40',
  'abs(delta()) > 30',
  'value > 85 for 5s clear < 70',
];

/**
 * Two node-level series of one device (one frame per second: a cold start reads them back at once) and
 * a sub-device series, 1 Hz, values moving through the thresholds.
 */
function stream(n: number): EnrichedReading[] {
  const out: EnrichedReading[] = [];
  const wave = (i: number) => (i % 50 < 25 ? (i % 50) * 4 : (50 - (i % 50)) * 4);
  for (let i = 0; i < n; i++) {
    const v = wave(i);
    out.push(reading({ metric: 'load', value: v, time: T0 + i * 1000, unit: undefined }));
    out.push(reading({ metric: 'temp', value: wave(i + 17), time: T0 + i * 1000, unit: undefined }));
    // Half a second later: read back with the node-level series, it would interleave with it.
    out.push(
      reading({
        metric: 'load',
        subDevice: 'pump-2',
        value: 100 - v,
        time: T0 + i * 1000 + 500,
        unit: undefined,
      }),
    );
  }
  return out;
}

async function run(writeBehind: boolean, coldEvery: number) {
  const table = await createTelemetryTable(local);
  const telemetry = new DynamoTelemetryStore({ client: local.doc, tableName: table, clock: () => NOW });
  const rules = new InMemoryRuleStore();
  for (const [i, condition] of CONDITIONS.entries()) {
    await rules.put(
      validateRule({ name: `r${i}`, severity: 'minor', condition }, { id: `r${i}`, now: T0 }),
      'create',
    );
  }
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  let replayed = 0;
  const engine = () =>
    new RuleEngine({
      rules,
      state,
      alerts,
      clock: () => NOW,
      ...(writeBehind ? { history: telemetryHistory(telemetry, () => NOW), stateFlushMs: 60_000 } : {}),
    });
  let e = engine();
  const ids: string[] = [];
  const readings = stream(300);
  for (let b = 0, from = 0; from < readings.length; b++, from += 10) {
    const batch = readings.slice(from, from + 10);
    // As on the ingest path: stored first, then evaluated.
    await telemetry.write(batch);
    e.begin();
    await e.evaluate({ readings: batch });
    ids.push(...(await e.commit()).map((t) => t.id));
    if (b % coldEvery === coldEvery - 1) {
      replayed += e.stats.replayed;
      e = engine();
    }
  }
  replayed += e.stats.replayed;
  return { ids, puts: state.calls.put, replayed };
}

describe('rule states written behind, read back from the DynamoDB telemetry store', () => {
  it('fire the transitions of states written every batch, across cold starts, with fewer writes', async () => {
    const every = await run(false, 7);
    const behind = await run(true, 7);
    expect(every.ids.length).toBeGreaterThan(10);
    expect(behind.ids).toEqual(every.ids);
    expect(behind.replayed).toBeGreaterThan(0);
    expect(behind.puts).toBeLessThan(every.puts * 0.8);
  });

  it('reads the history consistently (a reading written by the invocation before, elsewhere)', async () => {
    const table = await createTelemetryTable(local);
    const sent: Array<Record<string, unknown>> = [];
    const doc = local.doc;
    const send = doc.send.bind(doc);
    const spy = Object.assign(Object.create(doc), {
      send: (command: unknown, ...rest: unknown[]) => {
        if (command instanceof QueryCommand) sent.push(command.input as Record<string, unknown>);
        return (send as (...a: unknown[]) => unknown)(command, ...rest);
      },
    });
    const telemetry = new DynamoTelemetryStore({ client: spy, tableName: table, clock: () => NOW });
    await telemetry.write([
      reading({ metric: 'load', value: 5, time: T0 + 1000 }),
      reading({ metric: 'load', value: 6, time: T0 + 2000 }),
    ]);
    const got = await telemetryHistory(telemetry, () => NOW).samples({
      deviceId: 'edge-1',
      metrics: ['load'],
      after: T0 + 1000,
      until: T0 + 60_000,
    });
    expect(got).toEqual(new Map([['load', { times: [T0 + 2000], values: [6] }]]));
    expect(sent.length).toBeGreaterThan(0);
    for (const q of sent) expect(q.ConsistentRead).toBe(true);
  });
});
