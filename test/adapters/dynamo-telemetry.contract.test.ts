/** The TelemetryStore contract against the packed DynamoDB adapter on dynalite (a fresh table per test). */
import { afterAll, beforeAll } from 'vitest';
import { DynamoTelemetryStore } from '../../functions/adapters/dynamo-telemetry-store.js';
import {
  createTelemetryTable,
  type LocalTelemetryTable,
  startTelemetryDynalite,
} from './dynamo-telemetry.helpers.js';
import { NOW, telemetryStoreContract } from './telemetry-store.contract.js';

let local: LocalTelemetryTable;
beforeAll(async () => {
  local = await startTelemetryDynalite();
});
afterAll(async () => {
  await local.stop();
});

telemetryStoreContract(
  'DynamoTelemetryStore',
  async () => {
    const tableName = await createTelemetryTable(local);
    const open = () => new DynamoTelemetryStore({ client: local.doc, tableName, clock: () => NOW });
    return { store: open(), another: async () => open(), teardown: async () => {} };
  },
  { exactRewriteCounts: true, negativeZero: true, firstLastTies: true, exactSums: true },
);
