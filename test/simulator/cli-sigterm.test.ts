/**
 * `dualpath simulate` as a process (as the Fargate image runs it) against an in-process Aedes broker:
 * SIGTERM stops it cleanly — every connected device sends its DDEATHs, De-registers and sends NDEATH
 * before DISCONNECT (so the broker never fires the Will: exactly one NDEATH per node), and the process
 * exits 0 — also when the signal arrives in the middle of the connect ramp.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { type Captured, type Harness, sleep, startHarness, waitFor } from './harness.js';

const BIN = fileURLToPath(new URL('../../bin/dualpath.mjs', import.meta.url));

let h: Harness;
let child: ChildProcess | undefined;

beforeEach(async () => {
  h = await startHarness();
});

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await h.close();
});

function simulate(args: string[]) {
  // A plain Aedes broker (not the Dualpath broker, which emulates Basic Ingest): LwM2M on the binding topic.
  const base = [BIN, 'simulate', '--url', h.url, '--json', '--lwm2m-ingest-rule', 'none'];
  const p = spawn(process.execPath, [...base, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = p;
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b) => {
    stdout += b;
  });
  p.stderr.on('data', (b) => {
    stderr += b;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    p.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { p, exited, out: () => stdout, err: () => stderr };
}

const nodeOf = (topic: string) => topic.split('/')[3]!;
const topicsOf = (type: string) =>
  h.messages.filter((m) => m.topic.startsWith(`spBv1.0/sim/${type}/`)).map((m) => m.topic);
const ops = (op: number) => h.lwm2m().filter((m) => m.operation === op);

describe('dualpath simulate on SIGTERM', () => {
  it('sends DDEATHs, De-register and NDEATH for every device, disconnects and exits 0', async () => {
    // Prepare: three devices (one per type with one child, one with two children), all registered
    const sim = simulate([
      '--devices',
      '3',
      '--types',
      'env-sensor,flow-meter,pressure',
      '--rate',
      '2',
      '--connects-per-second',
      '50',
    ]);
    await waitFor(() => ops(Operation.Register).length === 3, 20_000, 'three Registers');
    await waitFor(() => topicsOf('DDATA').length >= 3, 10_000, 'DDATA');
    // Act
    sim.p.kill('SIGTERM');
    const { code, signal } = await sim.exited;
    // Assess
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const nodes = [...new Set(topicsOf('NBIRTH').map(nodeOf))].sort();
    expect(nodes).toHaveLength(3);
    await waitFor(() => topicsOf('NDEATH').length >= 3, 2000, 'NDEATHs');
    // One NDEATH per node: the device's own, before DISCONNECT (a Will would be a second one).
    expect(topicsOf('NDEATH').map(nodeOf).sort()).toEqual(nodes);
    // A DDEATH per child device: 1 + 2 + 1.
    expect(topicsOf('DDEATH')).toHaveLength(4);
    expect(
      ops(Operation.Deregister)
        .map((m) => m.topic.slice('lwm2m/rd/'.length))
        .sort(),
    ).toEqual(nodes);
    // De-register before NDEATH on each session (the deaths last, then DISCONNECT).
    const isDeregister = (m: Captured) => {
      try {
        return decodeMessage(m.payload).operation === Operation.Deregister;
      } catch {
        return false;
      }
    };
    for (const node of nodes) {
      const death = h.messages.findIndex((m) => m.topic === `spBv1.0/sim/NDEATH/${node}`);
      const dereg = h.messages.findIndex((m) => m.topic === `lwm2m/rd/${node}` && isDeregister(m));
      expect(dereg).toBeGreaterThanOrEqual(0);
      expect(dereg).toBeLessThan(death);
    }
    const summary = JSON.parse(sim.out().trim().split('\n').at(-1)!);
    expect(summary).toMatchObject({ devices: 3, connected: 0, publishErrors: 0 });
    expect(sim.err()).toMatch(/stopping \(SIGTERM\): 3 sessions connected, 3 registered/);
    expect(sim.err()).toMatch(/stopped cleanly/);
  }, 60_000);

  it('a SIGTERM during the connect ramp stops the devices started so far cleanly; the rest never connect', async () => {
    // Prepare: 20 devices at 2 connects/s: the ramp takes 10 s; signal once the first has registered
    const sim = simulate(['--devices', '20', '--types', 'pressure', '--connects-per-second', '2']);
    await waitFor(() => h.lwm2m().some((m) => m.result === 201), 20_000, 'a registration');
    const first = h
      .lwm2m()
      .find((m) => m.result === 201)!
      .topic.slice('lwm2m/rd/'.length);
    await sleep(300); // the 2.01 reaches the device
    // Act
    sim.p.kill('SIGTERM');
    const { code, signal } = await sim.exited;
    // Assess
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const born = new Set(topicsOf('NBIRTH').map(nodeOf));
    expect(born.size).toBeGreaterThanOrEqual(1);
    expect(born.size).toBeLessThan(20);
    await waitFor(() => topicsOf('NDEATH').length >= born.size, 2000, 'NDEATHs');
    expect(new Set(topicsOf('NDEATH').map(nodeOf))).toEqual(born);
    // The registered device de-registered; every De-register is from a device that was born (devices
    // whose 2.01 had not arrived yet have nothing to de-register).
    const deregistered = ops(Operation.Deregister).map((m) => m.topic.slice('lwm2m/rd/'.length));
    expect(deregistered).toContain(first);
    for (const ep of deregistered) expect(born.has(ep)).toBe(true);
    const summary = JSON.parse(sim.out().trim().split('\n').at(-1)!);
    expect(summary.devices).toBe(20);
    expect(summary.connected).toBe(0);
  }, 60_000);

  it('a broker that never acknowledges: the clean stop is bounded by --stop-timeout, then exit 1', async () => {
    // Prepare: a TCP server that accepts the session and the subscriptions but never PUBACKs (the QoS 1
    // NDEATH of the clean stop stays unacknowledged)
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      parser.on('packet', (p: mqttPacket.Packet) => {
        if (p.cmd === 'connect')
          socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }));
        if (p.cmd === 'subscribe')
          socket.write(
            mqttPacket.generate({
              cmd: 'suback',
              messageId: p.messageId,
              granted: p.subscriptions.map(() => 1),
            }),
          );
      });
      socket.on('data', (b) => parser.parse(b));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const sim = simulate([
        '--url',
        url,
        '--devices',
        '2',
        '--stop-timeout',
        '1',
        '--connects-per-second',
        '50',
      ]);
      await waitFor(() => sockets.size === 2, 20_000, 'two sessions');
      await sleep(300);
      // Act
      sim.p.kill('SIGTERM');
      const { code, signal } = await sim.exited;
      // Assess
      expect({ code, signal }).toEqual({ code: 1, signal: null });
      expect(sim.err()).toMatch(/clean stop not finished after 1 s/);
      expect(JSON.parse(sim.out().trim().split('\n').at(-1)!).devices).toBe(2);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 60_000);
});
