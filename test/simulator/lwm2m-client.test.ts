import { describe, expect, it } from 'vitest';
import { parseObjectList } from '../../functions/core/lwm2m/link-format.js';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  encodePaths,
  type Lwm2mMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { compressRecords, decodeSenml, encodeSenml } from '../../functions/core/senml/index.js';
import { DEVICE_TYPES } from '../../simulator/device-types.js';
import { FirmwareState, Lwm2mClient } from '../../simulator/lwm2m-client.js';

const T0 = 1_767_225_600_000;

function setup(typeId = 'breaker') {
  let now = T0;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const values: Record<string, number | boolean | string> = { voltage1: 231.2, temperature: 41.5 };
  const client = new Lwm2mClient({
    endpoint: 'cb-1',
    type: DEVICE_TYPES[typeId]!,
    lifetime: 120,
    clock: () => now,
    schedule: (ms, fn) => timers.push({ at: now + ms, fn }),
    read: (k) => values[k],
    info: {
      manufacturer: 'Dualpath Devices',
      model: 'DP-CB-63',
      serial: 'SN1',
      firmware: '1.4.2',
      hardware: 'rev-C',
      software: 's',
    },
  });
  let token = 1000;
  const server = (m: Lwm2mMessage) => {
    const bytes = encodeMessage({ ...m, token: ++token });
    const { replies, events } = client.receive(bytes);
    const reply = replies[0] ? decodeMessage(replies[0].bytes) : undefined;
    return { reply, events, token, out: replies[0] };
  };
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.splice(0)) {
      if (t.at <= now) t.fn();
      else timers.push(t);
    }
  };
  const records = (m: Lwm2mMessage | undefined) => decodeSenml(m!.payload!, 112, { receivedAt: now });
  return { client, server, advance, values, records, now: () => now };
}

describe('Lwm2mClient registration', () => {
  it('Register: op 6, ep, lifetime, version 1.2, binding M, link-format object list; 2.01 registers', () => {
    const { client } = setup();
    const reg = client.register();
    const m = decodeMessage(reg.bytes);
    expect(m).toMatchObject({
      operation: 6,
      ep: 'cb-1',
      lifetime: 120,
      version: '1.2',
      binding: 'M',
      contentFormat: 40,
    });
    const list = parseObjectList(new TextDecoder().decode(m.payload));
    const ids = list.objects.map((o) => o.id);
    expect(ids).toEqual(expect.arrayContaining([1, 3, 4, 5, 3303, 3316, 3317, 3328]));
    expect(list.objects.find((o) => o.id === 3316)!.instances).toEqual([0, 1, 2]);
    expect(list.rootContentFormats).toEqual([112, 110]);
    // Its own message comes back on the shared topic: dropped as an echo.
    expect(client.receive(reg.bytes).events).toEqual([{ kind: 'echo' }]);
    expect(client.registered).toBe(false);
    const ack = client.receive(encodeMessage({ result: 201, token: m.token! }));
    expect(ack.events).toEqual([{ kind: 'registered' }]);
    expect(client.registered).toBe(true);
  });

  it('Update failing with 4.04 unregisters (the device then re-registers); unknown tokens are ignored', () => {
    const { client } = setup();
    const t = decodeMessage(client.register().bytes).token!;
    client.receive(encodeMessage({ result: 201, token: t }));
    const up = decodeMessage(client.update().bytes);
    expect(up.operation).toBe(Operation.Update);
    expect(client.receive(encodeMessage({ result: 404, token: up.token! })).events).toEqual([
      { kind: 'update-failed', result: 404 },
    ]);
    expect(client.registered).toBe(false);
    expect(client.receive(encodeMessage({ result: 204, token: 999_999 })).events[0]!.kind).toBe('ignored');
  });

  it('Send: SenML CBOR with every record at its own time (bulk, including older buffered records)', () => {
    const { client, now } = setup();
    const records = Array.from({ length: 30 }, (_, i) => ({
      name: `/3316/${i % 3}/5700`,
      time: T0 - 60_000 + i * 2000,
      value: { kind: 'v' as const, value: 230 + i / 10 },
    }));
    const out = client.send(records);
    const m = decodeMessage(out.bytes);
    expect(m).toMatchObject({ operation: 24, contentFormat: 112 });
    expect(out.readings).toBe(30);
    const decoded = decodeSenml(m.payload!, 112, { receivedAt: now() });
    expect(decoded.map((r) => [r.name, r.time, r.value])).toEqual(
      records.map((r) => [r.name, r.time, r.value]),
    );
    expect(decoded.every((r) => r.timed)).toBe(true);
  });
});

describe('Lwm2mClient answers server requests', () => {
  it('Read /3/0: manufacturer, model, serial, firmware, current time, multi-instance resources', () => {
    const { server, records, now } = setup();
    const { reply } = server({ operation: Operation.Read, uri: '/3/0' });
    expect(reply).toMatchObject({ result: 205, contentFormat: 112 });
    const byName = new Map(records(reply).map((r) => [r.name, r.value]));
    expect(byName.get('/3/0/0')).toEqual({ kind: 'vs', value: 'Dualpath Devices' });
    expect(byName.get('/3/0/1')).toEqual({ kind: 'vs', value: 'DP-CB-63' });
    expect(byName.get('/3/0/2')).toEqual({ kind: 'vs', value: 'SN1' });
    expect(byName.get('/3/0/3')).toEqual({ kind: 'vs', value: '1.4.2' });
    expect(byName.get('/3/0/13')).toEqual({ kind: 'v', value: Math.floor(now() / 1000) });
    expect(byName.get('/3/0/16')).toEqual({ kind: 'vs', value: 'M' });
    expect(byName.has('/3/0/6/0')).toBe(true);
    expect(byName.has('/3/0/4')).toBe(false); // executable, not readable
  });

  it('Read of a sensor value, 4.04 for unknown paths, 4.05 for reading an executable resource', () => {
    const { server, records } = setup();
    const ok = server({ operation: Operation.Read, uri: '/3316/0/5700' });
    expect(records(ok.reply)).toEqual([
      expect.objectContaining({ name: '/3316/0/5700', value: { kind: 'v', value: 231.2 } }),
    ]);
    expect(ok.out!.readings).toBe(1);
    expect(server({ operation: Operation.Read, uri: '/3316/7/5700' }).reply).toMatchObject({ result: 404 });
    expect(server({ operation: Operation.Read, uri: '/9999' }).reply).toMatchObject({ result: 404 });
    expect(server({ operation: Operation.Read, uri: '/3/0/4' }).reply).toMatchObject({ result: 405 });
    expect(server({ operation: Operation.Create, uri: '/3303' }).reply).toMatchObject({ result: 405 });
  });

  it('Write: lifetime (SenML and text), 4.05 on read-only, 4.04 on unknown; Write-Partial on an instance', () => {
    const { client, server } = setup();
    const senml = (name: string, v: number | string) =>
      encodeSenml(
        compressRecords([
          { name, value: typeof v === 'number' ? { kind: 'v', value: v } : { kind: 'vs', value: v } },
        ]),
        112,
      );
    expect(
      server({
        operation: Operation.WriteReplace,
        uri: '/1/0/1',
        contentFormat: 112,
        payload: senml('/1/0/1', 600),
      }).reply,
    ).toMatchObject({ result: 204 });
    expect(client.lifetime).toBe(600);
    expect(
      server({
        operation: Operation.WriteReplace,
        uri: '/1/0/1',
        contentFormat: 0,
        payload: new TextEncoder().encode('900'),
      }).reply,
    ).toMatchObject({ result: 204 });
    expect(client.lifetime).toBe(900);
    expect(
      server({
        operation: Operation.WriteReplace,
        uri: '/3/0/0',
        contentFormat: 112,
        payload: senml('/3/0/0', 'x'),
      }).reply,
    ).toMatchObject({ result: 405 });
    expect(
      server({
        operation: Operation.WriteReplace,
        uri: '/3/0/99',
        contentFormat: 112,
        payload: senml('/3/0/99', 1),
      }).reply,
    ).toMatchObject({ result: 404 });
    const partial = encodeSenml(
      compressRecords([
        { name: '/1/0/2', value: { kind: 'v', value: 5 } },
        { name: '/1/0/3', value: { kind: 'v', value: 30 } },
      ]),
      112,
    );
    expect(
      server({ operation: Operation.WritePartial, uri: '/1/0', contentFormat: 112, payload: partial }).reply,
    ).toMatchObject({ result: 204 });
    expect(server({ operation: Operation.Read, uri: '/1/0/3' }).reply).toMatchObject({ result: 205 });
  });

  it('Execute: reboot reported as an event, 4.05 on a non-executable resource, Update trigger', () => {
    const { server } = setup();
    const reboot = server({ operation: Operation.Execute, uri: '/3/0/4' });
    expect(reboot.reply).toMatchObject({ result: 204 });
    expect(reboot.events).toEqual([{ kind: 'reboot' }]);
    expect(server({ operation: Operation.Execute, uri: '/3/0/0' }).reply).toMatchObject({ result: 405 });
    expect(server({ operation: Operation.Execute, uri: '/1/0/8' }).events).toEqual([
      { kind: 'update-trigger' },
    ]);
  });

  it('Firmware update: Write URI → Downloading → Downloaded; Execute → Updating → Idle, result 1, new version', () => {
    const { client, server, advance, records } = setup();
    let updated: string | undefined;
    client.onFirmware = (v) => {
      updated = v;
    };
    const state = () =>
      (records(server({ operation: Operation.Read, uri: '/5/0/3' }).reply)[0]!.value as { value: number })
        .value;
    expect(server({ operation: Operation.Execute, uri: '/5/0/2' }).reply).toMatchObject({ result: 405 }); // nothing downloaded
    const uri = new TextEncoder().encode('https://fw.example.com/dp-cb-63-2.0.1.bin');
    expect(
      server({ operation: Operation.WriteReplace, uri: '/5/0/1', contentFormat: 0, payload: uri }).reply,
    ).toMatchObject({ result: 204 });
    expect(state()).toBe(FirmwareState.Downloading);
    advance(2500);
    expect(state()).toBe(FirmwareState.Downloaded);
    expect(server({ operation: Operation.Execute, uri: '/5/0/2' }).reply).toMatchObject({ result: 204 });
    expect(state()).toBe(FirmwareState.Updating);
    advance(3500);
    expect(state()).toBe(FirmwareState.Idle);
    const result = records(server({ operation: Operation.Read, uri: '/5/0/5' }).reply)[0]!.value;
    expect(result).toEqual({ kind: 'v', value: 1 });
    expect(updated).toBe('2.0.1');
    expect(records(server({ operation: Operation.Read, uri: '/3/0/3' }).reply)[0]!.value).toEqual({
      kind: 'vs',
      value: '2.0.1',
    });
    const bad = new TextEncoder().encode('not a uri');
    expect(
      server({ operation: Operation.WriteReplace, uri: '/5/0/1', contentFormat: 0, payload: bad }).reply,
    ).toMatchObject({ result: 400 });
  });

  it('Observe → 2.05 then Notify with the Observe token at pmin/pmax; Cancel-Observe stops it', () => {
    const { client, server, advance, values, records, now } = setup();
    const obs = server({ operation: Operation.Observe, uri: '/3316/0/5700' });
    expect(obs.reply).toMatchObject({ result: 205, token: obs.token });
    expect(client.notifications(now())).toEqual([]); // before pmin
    advance(11_000);
    expect(client.notifications(now())).toEqual([]); // unchanged and before pmax (60 s)
    values.voltage1 = 229.9;
    const [n] = client.notifications(now());
    const nm = decodeMessage(n!.bytes);
    expect(nm).toMatchObject({ operation: 23, token: obs.token, contentFormat: 112 });
    expect(records(nm)).toEqual([
      expect.objectContaining({ name: '/3316/0/5700', value: { kind: 'v', value: 229.9 }, time: now() }),
    ]);
    advance(61_000);
    expect(client.notifications(now())).toHaveLength(1); // pmax reached, unchanged value
    expect(server({ operation: Operation.CancelObserve, uri: '/3316/0/5700' }).reply).toMatchObject({
      result: 205,
    });
    advance(61_000);
    expect(client.notifications(now())).toEqual([]);
  });

  it('Observe-Composite: one Notify carrying every listed path; Write-Attributes sets pmin', () => {
    const { client, server, advance, values, records, now } = setup();
    expect(
      server({ operation: Operation.WriteAttributes, uri: '/3316/0/5700', pmin: 1, pmax: 5 }).reply,
    ).toMatchObject({ result: 204 });
    const obs = server({
      operation: Operation.ObserveComposite,
      paths: encodePaths(['/3316/0/5700', '/3/0/3']),
    });
    expect(obs.reply).toMatchObject({ result: 205 });
    expect(records(obs.reply).map((r) => r.name)).toEqual(['/3316/0/5700', '/3/0/3']);
    advance(2000);
    values.voltage1 = 228;
    const [n] = client.notifications(now());
    expect(decodeMessage(n!.bytes).token).toBe(obs.token);
    expect(records(decodeMessage(n!.bytes)).map((r) => r.name)).toEqual(['/3316/0/5700', '/3/0/3']);
  });

  it('own responses echoed back are dropped, not answered again', () => {
    const { client, server } = setup();
    const { out } = server({ operation: Operation.Read, uri: '/3/0/0' });
    expect(client.receive(out!.bytes).events).toEqual([{ kind: 'echo' }]);
    expect(client.receive(Uint8Array.from([0xff])).events[0]!.kind).toBe('ignored');
  });
});

describe('content formats used', () => {
  it('Discover answers link format', () => {
    const { server } = setup('env-sensor');
    const { reply } = server({ operation: Operation.Discover, uri: '/3303/0' });
    expect(reply).toMatchObject({ result: 205, contentFormat: ContentFormat.LinkFormat });
    expect(new TextDecoder().decode(reply!.payload)).toContain('</3303/0/5700>');
  });
});
