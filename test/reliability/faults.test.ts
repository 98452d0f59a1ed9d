/**
 * Fault injection in the local stack: the telemetry store throttling, DynamoDB throttling, handlers
 * crashing after they processed (and stored) their batch, and the event-source runners restarted
 * while a fleet publishes. After the drain: readings stored == readings the devices published (QoS 1,
 * so every publish the broker acknowledged is in Kinesis), no duplicate rows, nothing in the DLQ.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';
import { startFleet } from '../../simulator/fleet.js';

let stack: LocalStack;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-faults-'));
  stack = await startLocalStack({
    dataDir: dir,
    mqttPort: 0,
    httpPort: 0,
    // Rates chosen so a batch exhausting all its retries (→ DLQ) is vanishingly unlikely in a short run.
    faults: { storeFailureRate: 0.15, dynamoFailureRate: 0.02, handlerCrashRate: 0.05, seed: 7 },
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('fault injection in the local stack', () => {
  it('stores exactly what the broker accepted, once, through store/DynamoDB faults, crashes and a runner restart', async () => {
    const fleet = await startFleet({
      url: `mqtt://127.0.0.1:${stack.mqttPort}`,
      devices: 6,
      rate: 4,
      seed: 11,
      readingsPerSend: 10,
      lwm2mRate: 1,
      sparkplugQos: 1,
    });
    expect(await fleet.ready(30_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 3000));
    await stack.restartRunners();
    await new Promise((r) => setTimeout(r, 3000));
    await fleet.stop();
    expect(await stack.drain(60_000)).toBe(true);

    const published = fleet.stats();
    const status = stack.status();
    const rows = await stack.store.counts();
    const faults = status.faults!;
    // The faults really happened.
    expect(faults.storeFailures).toBeGreaterThan(0);
    expect(faults.dynamoFailures).toBeGreaterThan(0);
    expect(faults.handlerCrashes + faults.storeFailures).toBeGreaterThan(1);
    // Nothing lost, nothing twice.
    const sent = published.readings.sparkplug + published.readings.lwm2m;
    expect(published.publishErrors).toBe(0);
    expect(sent).toBeGreaterThan(200);
    expect(status.readingsStored).toBe(sent);
    expect(rows.readings).toBe(sent);
    expect(rows.distinct).toBe(rows.readings);
    expect(status.dlqRecords).toBe(0);
    expect(status.quarantined).toBe(0);
  }, 120_000);
});
