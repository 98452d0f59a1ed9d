/**
 * `dualpath redrive --data-dir`: a local stack whose store was down for longer than the retry budget
 * leaves its DLQ (dlq.jsonl, with payloads) in the data directory; after it stopped, the command starts
 * the stack again on that directory, puts the DLQ back on the streams and drains: the store then holds
 * every reading the broker accepted, once. Running it again finds nothing left to redrive.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { redriveCommand } from '../../infra/cli/redrive.js';
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';
import { countAcceptedReadings } from '../../infra/local/faults.js';
import { startLocalStack } from '../../infra/local/stack.js';
import { startFleet } from '../../simulator/fleet.js';

const dir = mkdtempSync(join(tmpdir(), 'dualpath-redrive-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('dualpath redrive --data-dir', () => {
  it('redrives the local DLQ of a stopped stack: stored == accepted, no duplicates', async () => {
    const stack = await startLocalStack({
      dataDir: dir,
      mqttPort: 0,
      httpPort: 0,
      faults: {},
      eventSource: { maxRetryAttempts: 1 },
    });
    let accepted: number;
    try {
      const fleet = await startFleet({
        url: `mqtt://127.0.0.1:${stack.mqttPort}`,
        devices: 3,
        rate: 3,
        lwm2mRate: 1.5,
        readingsPerMessage: 5,
        sparkplugQos: 1,
        seed: 3,
      });
      expect(await fleet.ready(30_000)).toBe(true);
      await sleep(800);
      stack.faults!.outage('store', true);
      await sleep(1200);
      stack.faults!.outage('store', false);
      await sleep(800);
      await fleet.stop();
      await stack.broker.flush(30_000);
      expect(await stack.drain(30_000)).toBe(true);
      expect(stack.status().dlqRecords).toBeGreaterThan(0);
      accepted = (await countAcceptedReadings(stack.faults!.accepted)).distinct;
      expect((await stack.store.counts()).readings).toBeLessThan(accepted);
    } finally {
      await stack.stop();
    }
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => lines.push(s) > 0) as typeof process.stdout.write;
    let rc: number;
    try {
      rc = await redriveCommand.run(['--data-dir', dir]);
    } finally {
      process.stdout.write = write;
    }
    expect(rc).toBe(0);
    expect(lines.join('')).toMatch(/[1-9]\d* records from 1 DLQ files put back/);
    expect(existsSync(join(dir, 'dlq.jsonl'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('dlq-redriven-'))).toHaveLength(1);

    const store = await DuckDbTelemetryStore.open({ dataDir: dir });
    try {
      const rows = await store.counts();
      expect(rows.readings).toBe(accepted);
      expect(rows.distinct).toBe(rows.readings);
    } finally {
      await store.close();
    }
  }, 120_000);
});
