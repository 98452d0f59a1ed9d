/**
 * A simulated fleet (both protocols on one MQTT session per device) against the local stack: every
 * reading the devices published is stored, per protocol, nothing lost — and the bad messages are
 * quarantined, not stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';
import { pipeline } from '../../infra/pipeline.js';
import { startFleet } from '../../simulator/fleet.js';

let stack: LocalStack;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-fleet-'));
  stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0 });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('simulated fleet → local stack', () => {
  it('stores exactly the readings the fleet published, per protocol', async () => {
    const fleet = await startFleet({
      url: `mqtt://127.0.0.1:${stack.mqttPort}`,
      devices: 8,
      rate: 4,
      seed: 3,
      readingsPerSend: 10,
      lwm2mRate: 1,
      sparkplugQos: 1,
      badRatio: 0.05,
      // LwM2M uplinks by Basic Ingest, as `dualpath simulate` does locally (ADR 0024): Register,
      // Update and Send reach the server and its replies reach the device, with no echo.
      lwm2mIngestRule: pipeline.rules.find((r) => r.stream === 'lwm2m')!.name,
    });
    expect(await fleet.ready(20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 4000));
    await fleet.stop();
    expect(await stack.drain(60_000)).toBe(true);

    const published = fleet.stats();
    const status = stack.status();
    const bad = published.bad.sparkplug + published.bad.lwm2m;
    expect(published.readings.sparkplug).toBeGreaterThan(100);
    expect(published.readings.lwm2m).toBeGreaterThan(50);
    expect(status.readingsStored).toBe(published.readings.sparkplug + published.readings.lwm2m);
    expect(status.quarantined).toBe(bad);
    expect(status.dlqRecords).toBe(0);
  }, 90_000);
});
