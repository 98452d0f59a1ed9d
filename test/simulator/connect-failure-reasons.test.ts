/**
 * Connect failures are counted by reason (the socket error's code, or the MQTT refusal), so a storm
 * report says whether the broker reset connections or refused them, not only how many failed.
 */
import { type AddressInfo, createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from '../../simulator/fleet.js';
import { waitFor } from './harness.js';

let fleet: Fleet | undefined;
let server: Server | undefined;
let aedes: Aedes | undefined;

afterEach(async () => {
  await fleet?.stop();
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  if (aedes) await new Promise<void>((r) => aedes!.close(() => r()));
  fleet = server = aedes = undefined;
});

async function listening(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `mqtt://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const opts = { devices: 2, types: ['pressure'], rate: 1, lwm2mRate: 0, backoff: { baseMs: 20, maxMs: 50 } };

describe('simulated fleet, connect failure reasons', () => {
  it('counts connections the server resets as ECONNRESET', async () => {
    server = createServer((socket) => socket.resetAndDestroy());
    fleet = await startFleet({ url: await listening(server), ...opts });
    await waitFor(() => fleet!.stats().connectFailures >= 4, 5000, 'failed connects');
    const s = fleet.stats();
    expect(s.connected).toBe(0);
    expect(Object.keys(s.connectFailureReasons)).toEqual(['ECONNRESET']);
    expect(s.connectFailureReasons.ECONNRESET).toBe(s.connectFailures);
  });

  it('counts a refused CONNECT by the broker’s answer', async () => {
    aedes = await Aedes.createBroker({
      authenticate: (_client, _u, _p, done) =>
        done(Object.assign(new Error('not authorized'), { returnCode: 5 }) as never, false),
    });
    server = createServer(aedes.handle);
    fleet = await startFleet({ url: await listening(server), ...opts });
    await waitFor(() => fleet!.stats().connectFailures >= 2, 5000, 'refused connects');
    const reasons = Object.keys(fleet.stats().connectFailureReasons);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/not authorized/i);
  });
});
