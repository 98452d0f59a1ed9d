/**
 * A broker that goes away while a QoS 1 publish waits for its PUBACK (found by the broker-restart
 * scenario of `npm run faults`): the publish must fail with the session — counted as a publish error —
 * the device reconnects to the broker listening again, and a clean stop does not wait for the lost
 * PUBACK forever.
 */
import { type AddressInfo, createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from '../../simulator/fleet.js';
import { sleep, waitFor } from './harness.js';

interface Broker {
  aedes: Aedes;
  server: Server;
  /** DDATA publishes held without an answer (their authorizePublish never completes). */
  held: number;
  hold: boolean;
}

async function listen(port: number): Promise<Broker> {
  const b: Broker = { held: 0, hold: false } as Broker;
  b.aedes = await Aedes.createBroker({
    authorizePublish: (_client, packet, done) => {
      if (b.hold && packet.topic.includes('/DDATA/')) {
        b.held++;
        return; // never acknowledged
      }
      done(null);
    },
  });
  b.server = createServer(b.aedes.handle);
  await new Promise<void>((r) => b.server.listen(port, '127.0.0.1', () => r()));
  return b;
}

async function close(b: Broker): Promise<void> {
  const closed = new Promise<void>((r) => b.server.close(() => r()));
  await new Promise<void>((r) => b.aedes.close(() => r()));
  await closed;
}

let fleet: Fleet | undefined;
let broker: Broker | undefined;

afterEach(async () => {
  broker && (await close(broker));
  broker = undefined;
  fleet = undefined;
});

describe('simulated device, broker closed with a QoS 1 publish unacknowledged', () => {
  it('fails the publish with the session, reconnects, and stops cleanly', async () => {
    broker = await listen(0);
    const port = (broker.server.address() as AddressInfo).port;
    fleet = await startFleet({
      url: `mqtt://127.0.0.1:${port}`,
      devices: 1,
      types: ['pressure'],
      rate: 20,
      lwm2mRate: 0.1,
      sparkplugQos: 1,
      backoff: { baseMs: 50, maxMs: 200 },
    });
    await waitFor(() => fleet!.stats().messages.sparkplug > 3, 5000, 'DDATA acknowledged');
    broker.hold = true;
    await waitFor(() => broker!.held > 0, 5000, 'a DDATA held without PUBACK');
    await close(broker);
    broker = await listen(port);
    await waitFor(() => fleet!.stats().reconnects === 1 && fleet!.stats().connected === 1, 5000, 'reconnect');
    expect(fleet.stats().publishErrors).toBeGreaterThan(0);

    const stopped = fleet.stop().then(() => 'stopped');
    expect(await Promise.race([stopped, sleep(5000).then(() => 'stuck')])).toBe('stopped');
  }, 20_000);
});
