/**
 * Simulated devices against an in-process Aedes broker; a listener on `#` decodes everything with the
 * real codecs. Time is a fake clock driving the fleet's scheduler by hand; MQTT I/O is real.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { decodeSenml } from '../../functions/core/senml/index.js';
import { decodePayload, encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type Fleet, type FleetOptions, startFleet } from '../../simulator/fleet.js';
import { createScheduler, type Scheduler } from '../../simulator/scheduler.js';
import { type Harness, sleep, startHarness, waitFor } from './harness.js';

const T0 = 1_767_225_600_000;
let h: Harness;
let now: number;
let sched: Scheduler;
let fleet: Fleet | undefined;

beforeEach(async () => {
  h = await startHarness();
  now = T0;
  sched = createScheduler(() => now);
});

afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
  await h.close();
});

async function start(o: Partial<FleetOptions>): Promise<Fleet> {
  fleet = await startFleet({
    url: h.url,
    devices: 1,
    rate: 2,
    lwm2mRate: 0.5,
    readingsPerSend: 10,
    lifetime: 20,
    ndataEveryS: 0,
    clock: () => now,
    scheduler: sched,
    ...o,
  });
  sched.runDue();
  if ((o.devices ?? 1) > 1) await advance(100, 10); // the connect ramp runs on the fake clock
  await waitFor(() => fleet!.stats().registered === (o.devices ?? 1), 5000, 'registration');
  return fleet;
}

/** Advances the fake clock in steps, letting real I/O happen between steps. */
async function advance(ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    now += step;
    sched.runDue();
    await sleep(2);
  }
  await sleep(30);
}

const sp = (type: string) => h.messages.filter((m) => m.topic.split('/')[2] === type);
const lastBirthSeq = () => decodePayload(sp('NBIRTH').at(-1)!.payload);
const bdSeqOf = (p: { metrics: Array<{ name?: string; value: unknown }> }) =>
  p.metrics.find((m) => m.name === 'bdSeq')?.value;

describe('Sparkplug over the device session', () => {
  it('NBIRTH, DBIRTH and alias-only DDATA with K metrics; seq continuous; exact counts; deaths on stop', async () => {
    // Prepare
    const f = await start({ types: ['breaker'], metricsPerData: 10 });
    const id = f.devices[0]!.id;
    // Act
    await advance(5000);
    await f.stop();
    await sleep(50);
    // Assess
    const mine = h.messages.filter((m) => m.topic.startsWith('spBv1.0/sim/') && m.topic.includes(`/${id}`));
    const types = mine.map((m) => m.topic.split('/')[2]);
    expect(types[0]).toBe('NBIRTH');
    expect(types[1]).toBe('DBIRTH');
    expect(types.at(-2)).toBe('DDEATH');
    expect(types.at(-1)).toBe('NDEATH');
    const nbirth = decodePayload(mine[0]!.payload);
    const seqs = mine.slice(0, -1).map((m) => Number(decodePayload(m.payload).seq));
    expect(seqs).toEqual(seqs.map((_, i) => i % 256));
    const data = mine.filter((m) => m.topic.includes('/DDATA/')).map((m) => decodePayload(m.payload));
    expect(data.length).toBeGreaterThanOrEqual(8);
    for (const d of data) {
      expect(d.metrics).toHaveLength(10);
      for (const m of d.metrics) {
        expect(m.name).toBeUndefined();
        expect(m.datatype).toBeUndefined();
      }
    }
    const death = decodePayload(mine.at(-1)!.payload);
    expect(bdSeqOf(death)).toBe(bdSeqOf(nbirth));
    const s = f.stats();
    expect(s.messages.sparkplug).toBe(mine.length);
    const readings = mine.reduce((n, m) => {
      const p = decodePayload(m.payload);
      return n + p.metrics.filter((x) => x.name !== 'bdSeq' && !x.name?.startsWith('Node Control/')).length;
    }, 0);
    expect(s.readings.sparkplug).toBe(readings);
  });

  it('holds the configured rates when the scheduler runs late (the next emission follows the previous due time)', async () => {
    // Prepare: 2 DDATA/s, and a sample of the 3 Send signals every second (0.5 Send/s × 6 records); the
    // clock moves in 180 ms steps, so every callback runs up to 180 ms late (a busy event loop).
    const f = await start({ types: ['env-sensor'], rate: 2, lwm2mRate: 0.5, readingsPerSend: 6 });
    const id = f.devices[0]!.id;
    await sleep(50);
    const before = f.stats();
    // Act
    await advance(30_000, 180);
    // Assess: 60 DDATA and 30 samples of 3 records in 30 s, give or take the ±10 % jitter at the ends
    // (drifting by the lateness, it was ~51 and ~27)
    await waitFor(() => f.device(id)!.stats.messages.lwm2m > 0, 1000, 'Sends');
    await sleep(100); // the last PUBACKs
    const after = f.stats();
    const ddata = after.messages.sparkplug - before.messages.sparkplug;
    expect(ddata).toBeGreaterThanOrEqual(58);
    expect(ddata).toBeLessThanOrEqual(61);
    const records = after.readings.lwm2m - before.readings.lwm2m + after.buffered - before.buffered;
    expect(records).toBeGreaterThanOrEqual(84);
    expect(records).toBeLessThanOrEqual(93);
  });

  it('abrupt disconnect: the broker publishes the Will NDEATH with the session bdSeq; reconnect uses a new bdSeq', async () => {
    const f = await start({ types: ['env-sensor'], backoff: { baseMs: 500, maxMs: 1000 } });
    const id = f.devices[0]!.id;
    const birth = lastBirthSeq();
    f.device(id)!.dropConnection();
    await waitFor(() => sp('NDEATH').length === 1, 3000, 'Will NDEATH');
    expect(bdSeqOf(decodePayload(sp('NDEATH')[0]!.payload))).toBe(bdSeqOf(birth));
    await advance(1500);
    await waitFor(() => sp('NBIRTH').length === 2, 3000, 'second NBIRTH');
    expect(bdSeqOf(lastBirthSeq())).toBe(((bdSeqOf(birth) as number) + 1) % 256);
    expect(f.stats().reconnects).toBe(1);
  });

  it('NCMD Node Control/Rebirth: NBIRTH + DBIRTHs again with the same bdSeq and seq from 0', async () => {
    const f = await start({ types: ['flow-meter'] });
    const id = f.devices[0]!.id;
    await advance(1000);
    const before = sp('NBIRTH').length;
    await h.publish(
      `spBv1.0/sim/NCMD/${id}`,
      encodePayload({
        timestamp: now,
        metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }],
      }),
      0,
    );
    await waitFor(() => sp('DBIRTH').length === 4, 3000, 'rebirth');
    expect(sp('NBIRTH').length).toBe(before + 1);
    const reborn = lastBirthSeq();
    expect(reborn.seq).toBe(0n);
    expect(bdSeqOf(reborn)).toBe(bdSeqOf(decodePayload(sp('NBIRTH')[0]!.payload)));
    expect(
      sp('DBIRTH')
        .slice(-2)
        .map((m) => m.topic.split('/')[4]),
    ).toEqual(['meter', 'pump']);
  });

  it('DCMD write: the breaker trips and reports Control/Trip=true and Status=OPEN in DDATA', async () => {
    const f = await start({ types: ['breaker'] });
    const id = f.devices[0]!.id;
    const dbirth = decodePayload(sp('DBIRTH')[0]!.payload);
    const alias = (name: string) => dbirth.metrics.find((m) => m.name === name)!.alias!;
    const count = sp('DDATA').length;
    await h.publish(
      `spBv1.0/sim/DCMD/${id}/breaker`,
      encodePayload({
        timestamp: now,
        metrics: [{ name: 'Control/Trip', datatype: DataType.Boolean, value: true }],
      }),
      0,
    );
    await waitFor(() => sp('DDATA').length > count, 3000, 'DDATA after DCMD');
    const report = decodePayload(sp('DDATA').at(-1)!.payload);
    const byAlias = new Map(report.metrics.map((m) => [m.alias, m.raw]));
    expect(byAlias.get(alias('Control/Trip'))).toEqual({ field: 'boolean', value: true });
    expect(byAlias.get(alias('Status'))).toEqual({ field: 'string', value: 'OPEN' });
    expect(byAlias.get(alias('Current/L1'))).toEqual({ field: 'float', value: 0 });
    expect(f.stats().commands.sparkplug).toBe(1);
  });
});

describe('LwM2M over the device session', () => {
  it('Register, bulk Send with each record at its sample time (the first a random share of a bulk), Update at half the lifetime', async () => {
    const f = await start({ types: ['env-sensor'] });
    const id = f.devices[0]!.id;
    const reg = h.lwm2m(id).find((m) => m.operation === Operation.Register)!;
    expect(reg).toMatchObject({ ep: id, lifetime: 20, version: '1.2', binding: 'M' });
    expect(new TextDecoder().decode(reg.payload)).toContain('</3303/0>');
    await advance(12_000);
    // Counted on PUBACK; the listener may see the last one a moment later.
    const seen = () =>
      h
        .lwm2m(id)
        .filter((m) => m.operation === Operation.Send)
        .reduce((n, m) => n + decodeSenml(m.payload!, 112, { receivedAt: now }).length, 0);
    await waitFor(() => seen() === f.stats().readings.lwm2m, 2000, 'listener to see every acknowledged Send');
    const sends = h.lwm2m(id).filter((m) => m.operation === Operation.Send);
    expect(sends.length).toBeGreaterThanOrEqual(3);
    for (const [i, s] of sends.entries()) {
      const records = decodeSenml(s.payload!, 112, { receivedAt: now });
      // The first Send starts the device at a random point of its Send period (a fleet's Sends spread).
      if (i === 0) {
        expect(records.length).toBeGreaterThanOrEqual(1);
        expect(records.length).toBeLessThanOrEqual(10);
      } else expect(records).toHaveLength(10);
      expect(records.every((r) => r.timed && r.time >= T0 && r.time <= now)).toBe(true);
      expect(new Set(records.map((r) => r.name))).toEqual(
        new Set(['/3303/0/5700', '/3304/0/5700', '/3/0/9']),
      );
      const temps = records.filter((r) => r.name === '/3303/0/5700');
      expect(new Set(temps.map((r) => r.time)).size).toBe(temps.length); // one per sample
    }
    expect(h.lwm2m(id).filter((m) => m.operation === Operation.Update).length).toBe(1);
    expect(f.stats().readings.lwm2m).toBe(seen());
  });

  it('a fleet started together does not Send in step: first Sends carry different shares of a bulk', async () => {
    const f = await start({ types: ['env-sensor'], devices: 12, connectsPerSecond: 1000 });
    await advance(8000);
    const firstSizes = f.devices.map((d) => {
      const first = h.lwm2m(d.id).find((m) => m.operation === Operation.Send);
      return first ? decodeSenml(first.payload!, 112, { receivedAt: now }).length : 0;
    });
    expect(firstSizes.every((n) => n >= 1 && n <= 10)).toBe(true);
    // With one fixed bulk size every device would Send its first bulk at the same time.
    expect(new Set(firstSizes).size).toBeGreaterThan(2);
  });

  it('an unanswered Register is retried with a doubling timer (LwM2M Communication Retry Timer)', async () => {
    h.setAutoRespond(false);
    fleet = await startFleet({
      url: h.url,
      devices: 1,
      rate: 0.01,
      lwm2mRate: 0,
      lifetime: 60,
      ndataEveryS: 0,
      registerTimeoutMs: 1000,
      clock: () => now,
      scheduler: sched,
      types: ['env-sensor'],
    });
    sched.runDue();
    const id = fleet.devices[0]!.id;
    const registers = () => h.lwm2m(id).filter((m) => m.operation === Operation.Register).length;
    await waitFor(() => registers() === 1, 3000, 'first Register');
    const times: number[] = [now];
    for (let step = 0; step < 160; step++) {
      await advance(100, 100);
      if (registers() > times.length) times.push(now);
    }
    // Retries after ~1, ~2, ~4, ~8 s (±10 %): 5 Registers in 16 s, not 16 as with a fixed 1 s timer.
    expect(times).toHaveLength(5);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(1000 * 2 ** i * 0.9 - 100);
      expect(gap).toBeLessThanOrEqual(1000 * 2 ** i * 1.1 + 200);
    }
  });

  it('records sampled while offline are sent after re-registration with their own timestamps', async () => {
    const f = await start({ types: ['pressure'], backoff: { baseMs: 20_000, maxMs: 20_000 } });
    const id = f.devices[0]!.id;
    const dev = f.device(id)!;
    dev.dropConnection();
    await waitFor(() => !dev.connected, 3000, 'offline');
    const offlineFrom = now;
    await advance(4000, 200); // still offline (the reconnect backoff is 10-20 s), sampling continues
    expect(dev.connected).toBe(false);
    expect(dev.buffered).toBeGreaterThanOrEqual(16);
    await advance(20_000, 500);
    const late = () =>
      h
        .lwm2m(id)
        .filter((m) => m.operation === Operation.Send)
        .flatMap((m) => decodeSenml(m.payload!, 112, { receivedAt: now }))
        .filter((r) => r.time > offlineFrom && r.time <= offlineFrom + 4000);
    await waitFor(() => dev.registered && late().length >= 16, 3000, 'flush after re-registration');
    expect(late().every((r) => r.timed)).toBe(true);
    expect(f.stats().reconnects).toBe(1);
  });

  it('answers Read, Write, Observe (then Notify) and Execute reboot over MQTT; ignores its own echoes', async () => {
    const f = await start({ types: ['breaker'], pmin: 1, pmax: 5, backoff: { baseMs: 200, maxMs: 400 } });
    const id = f.devices[0]!.id;
    const topic = `lwm2m/rd/${id}`;
    const replyTo = (token: number) => h.lwm2m(id).find((m) => m.result !== undefined && m.token === token);
    await h.publish(topic, encodeMessage({ operation: Operation.Read, token: 77, uri: '/3/0/0' }));
    await waitFor(() => replyTo(77) !== undefined, 3000, 'Read reply');
    const read = replyTo(77)!;
    expect(read).toMatchObject({ result: 205, contentFormat: 112 });
    expect(decodeSenml(read.payload!, 112, { receivedAt: now })[0]!.value).toEqual({
      kind: 'vs',
      value: 'Dualpath Devices',
    });
    await h.publish(topic, encodeMessage({ operation: Operation.Read, token: 78, uri: '/3316/9' }));
    await waitFor(() => replyTo(78) !== undefined, 3000, '404');
    expect(replyTo(78)!.result).toBe(404);
    await h.publish(topic, encodeMessage({ operation: Operation.Observe, token: 79, uri: '/3328/0/5700' }));
    await waitFor(() => replyTo(79) !== undefined, 3000, 'Observe reply');
    await advance(3000);
    const notifies = h.lwm2m(id).filter((m) => m.operation === Operation.Notify && m.token === 79);
    expect(notifies.length).toBeGreaterThanOrEqual(1);
    expect(decodeSenml(notifies[0]!.payload!, 112, { receivedAt: now })[0]!.name).toBe('/3328/0/5700');
    // Each request answered exactly once (the device's own replies come back to it and are dropped).
    expect(h.lwm2m(id).filter((m) => m.result !== undefined && m.token === 77)).toHaveLength(1);
    await h.publish(topic, encodeMessage({ operation: Operation.Execute, token: 80, uri: '/3/0/4' }));
    await waitFor(() => replyTo(80) !== undefined, 3000, 'Execute reply');
    expect(replyTo(80)!.result).toBe(204);
    await advance(300, 50);
    await waitFor(() => sp('NDEATH').length === 1, 3000, 'Will after reboot');
    await advance(1000, 50);
    await waitFor(
      () => h.lwm2m(id).filter((m) => m.operation === Operation.Register).length === 2,
      3000,
      're-register',
    );
    expect(f.stats().commands.lwm2m).toBe(4);
  });
});

describe('fleet', () => {
  it('bad-message share is counted separately; good counts equal what the broker delivered', async () => {
    const f = await start({ devices: 4, badRatio: 0.3, rate: 5, lwm2mRate: 1, readingsPerSend: 5 });
    await advance(4000);
    await f.stop();
    await sleep(50);
    const s = f.stats();
    let badSp = 0;
    let goodSp = 0;
    // Under load Aedes may still publish the Will when the socket closes right after the clean
    // DISCONNECT: that second NDEATH is the broker's publish, not the device's, so it is not counted.
    const ndeaths = new Set<string>();
    for (const m of h.messages.filter((x) => x.topic.startsWith('spBv1.0/'))) {
      try {
        decodePayload(m.payload);
        if (m.topic.split('/')[2] === 'NDEATH') {
          if (ndeaths.has(m.topic)) continue;
          ndeaths.add(m.topic);
        }
        goodSp++;
      } catch {
        badSp++;
      }
    }
    expect(ndeaths.size).toBe(4);
    const fromDevices = h.messages.filter((m) => {
      if (!m.topic.startsWith('lwm2m/')) return false;
      try {
        const d = decodeMessage(m.payload);
        return d.operation !== undefined; // device requests (the harness only sends responses)
      } catch {
        return false;
      }
    });
    const badLw = h.messages.filter((m) => {
      if (!m.topic.startsWith('lwm2m/')) return false;
      try {
        decodeMessage(m.payload);
        return false;
      } catch {
        return true;
      }
    }).length;
    expect(s.bad.sparkplug).toBe(badSp);
    expect(s.bad.sparkplug).toBeGreaterThan(3);
    expect(s.messages.sparkplug).toBe(goodSp);
    expect(s.bad.lwm2m).toBe(badLw);
    expect(s.messages.lwm2m).toBe(fromDevices.length);
  });
});

describe('sample times', () => {
  it('never repeats a (device, metric, time): DATA samples after a rebirth come after the births', async () => {
    // Prepare: one Sparkplug signal, 50 samples per DDATA every 200 ms → a slot every 4 ms, so a
    // rebirth at a multiple of 4 ms used to share its time with a slot of the next DDATA.
    const f = await start({ types: ['pressure'], metricsPerData: 50, rate: 5 });
    const id = f.devices[0]!.id;
    await advance(1000);
    // Act: a rebirth between two emissions, then more DATA.
    now += 100;
    await h.publish(
      `spBv1.0/sim/NCMD/${id}`,
      encodePayload({
        timestamp: now,
        metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }],
      }),
      0,
    );
    await waitFor(() => sp('DBIRTH').length === 2, 3000, 'rebirth');
    await advance(1000);
    await f.stop();
    await sleep(50);
    // Assess: every (alias, time) of the child device is sent once, births included, and no DATA
    // sample is older than the birth before it.
    const seen = new Set<string>();
    let samples = 0;
    let birthTime = -1;
    for (const m of h.messages.filter((x) => /\/(DBIRTH|DDATA)\//.test(x.topic))) {
      const p = decodePayload(m.payload);
      if (m.topic.includes('/DBIRTH/')) birthTime = Number(p.timestamp ?? -1);
      for (const metric of p.metrics) {
        const key = `${metric.alias}|${metric.timestamp}`;
        expect(seen.has(key), key).toBe(false);
        seen.add(key);
        if (m.topic.includes('/DDATA/')) expect(Number(metric.timestamp) > birthTime, key).toBe(true);
        samples++;
      }
    }
    expect(samples).toBeGreaterThan(200);
  });
});
