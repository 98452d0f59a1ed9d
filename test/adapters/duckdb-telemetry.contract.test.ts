/** The TelemetryStore contract against the local DuckDB adapter (an in-memory database per test). */
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';
import { telemetryStoreContract } from './telemetry-store.contract.js';

telemetryStoreContract(
  'DuckDbTelemetryStore',
  async () => {
    const store = await DuckDbTelemetryStore.open({ path: ':memory:', threads: 1 });
    return { store, teardown: () => store.close() };
  },
  // DuckDB's sum() does not add in key order: avg/sum can differ from the reference in the last bits.
  { exactRewriteCounts: true, negativeZero: true, firstLastTies: true, exactSums: false },
);
