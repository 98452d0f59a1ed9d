/**
 * The TelemetryStore contract against the Timestream adapter, the service mocked with
 * aws-sdk-client-mock and answered by a stand-in with Timestream's write semantics and its SQL run on
 * DuckDB (timestream-fake.ts). Request shapes, rejections and retries: timestream-store.test.ts.
 */
import { afterAll, beforeAll } from 'vitest';
import { TimestreamTelemetryStore } from '../../functions/adapters/timestream-store.js';
import { NOW, telemetryStoreContract } from './telemetry-store.contract.js';
import { startTimestreamFake, type TimestreamFake } from './timestream-fake.js';

let fake: TimestreamFake;
beforeAll(async () => {
  fake = await startTimestreamFake('dualpath', 'telemetry');
});
afterAll(async () => {
  await fake.close();
});

telemetryStoreContract(
  'TimestreamTelemetryStore (mocked service)',
  async () => {
    await fake.reset();
    const open = () =>
      new TimestreamTelemetryStore({
        writeClient: fake.writeClient,
        queryClient: fake.queryClient,
        database: 'dualpath',
        table: 'telemetry',
        clock: () => NOW,
      });
    return { store: open(), another: async () => open(), teardown: async () => {} };
  },
  // ADR 0007: an identical re-write is accepted silently (counted as written), doubles travel as text
  // ("-0" becomes 0), min_by/max_by pick any of tied points, and sums are the engine's.
  { exactRewriteCounts: false, negativeZero: false, firstLastTies: false, exactSums: false },
);
