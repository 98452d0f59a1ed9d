import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { mockClient } from 'aws-sdk-client-mock';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../../functions/core/errors.js';
import {
  createBroker,
  type DeadLetter,
  KinesisForwarder,
  type LocalBroker,
} from '../../../infra/local/broker.js';
import { type LocalEmulators, startEmulators } from '../../../infra/local/emulators.js';
import { pipeline, type StreamKey } from '../../../infra/pipeline.js';

const T0 = 1_750_000_000_000;
let emu: LocalEmulators;
let broker: LocalBroker;
const refusals: string[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  emu = await startEmulators({ env: {} });
  broker = await createBroker({
    port: 0,
    rules: pipeline.rules,
    kinesis: emu.kinesis,
    streamNames: emu.streamNames,
    clock: () => T0,
    onRefused: (id, what) => refusals.push(`${id}: ${what}`),
  });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
});
afterAll(async () => {
  await broker.close();
  await emu.stop();
});

async function connect(clientId: string, url = broker.url): Promise<MqttClient> {
  const c = mqtt.connect(url, { clientId, reconnectPeriod: 0, connectTimeout: 3000 });
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** The SUBACK return code (mqtt.js rejects failure SUBACKs; the code is on the error's packet). */
async function suback(c: MqttClient, filter: string): Promise<number | undefined> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 }))[0]?.qos;
  } catch (error) {
    return (error as { packet?: { granted?: number[] } }).packet?.granted?.[0];
  }
}

/** Every record in the stream, from the start. */
async function readStream(stream: StreamKey) {
  const name = emu.streamNames[stream];
  const shard = (await emu.kinesis.send(new ListShardsCommand({ StreamName: name }))).Shards![0]!.ShardId!;
  let it = (
    await emu.kinesis.send(
      new GetShardIteratorCommand({ StreamName: name, ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }),
    )
  ).ShardIterator;
  const out: Array<{ partitionKey: string; envelope: Record<string, unknown> }> = [];
  for (let i = 0; i < 50 && it; i++) {
    const res = await emu.kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
    for (const r of res.Records ?? [])
      out.push({ partitionKey: r.PartitionKey!, envelope: JSON.parse(Buffer.from(r.Data!).toString()) });
    if ((res.Records ?? []).length === 0) break;
    it = res.NextShardIterator;
  }
  return out;
}

describe('local broker: device ACL and forwarding to Kinesis', () => {
  it('forwards an allowed device publish to its stream with the rule envelope and partition key', async () => {
    // Prepare
    const a = await connect('edge-a');
    const payload = Buffer.from([0x08, 0x01, 0xff]);

    // Act: QoS 1 is acknowledged only once the record is in Kinesis.
    await a.publishAsync('spBv1.0/plant/NBIRTH/edge-a', payload, { qos: 1 });
    await a.publishAsync('lwm2m/rd/edge-a', Buffer.from([0xa1, 0x00, 0x01]), { qos: 1 });

    // Assess
    const sp = (await readStream('sparkplug')).filter((r) => r.envelope.clientId === 'edge-a');
    expect(sp).toContainEqual({
      partitionKey: 'plant/edge-a',
      envelope: {
        payload: payload.toString('base64'),
        topic: 'spBv1.0/plant/NBIRTH/edge-a',
        receivedAt: T0,
        clientId: 'edge-a',
      },
    });
    const lw = await readStream('lwm2m');
    expect(lw).toContainEqual({
      partitionKey: 'edge-a',
      envelope: { payload: 'oQAB', topic: 'lwm2m/rd/edge-a', receivedAt: T0, clientId: 'edge-a' },
    });
    expect(broker.counters.messagesIn.sparkplug).toBeGreaterThanOrEqual(1);
    expect(broker.counters.recordsForwarded).toBe(broker.counters.recordsIn);
  });

  it("refuses a publish on another device's topic: the connection is closed and nothing reaches Kinesis", async () => {
    // Prepare
    const a = await connect('edge-c');
    const before = broker.counters.refusedPublishes;
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));

    // Act
    a.publish('spBv1.0/plant/NDATA/edge-b', Buffer.from('x'), { qos: 1 });
    await closed;

    // Assess
    expect(broker.counters.refusedPublishes).toBe(before + 1);
    expect(refusals).toContain('edge-c: publish to spBv1.0/plant/NDATA/edge-b');
    await broker.flush();
    expect(
      (await readStream('sparkplug')).some((r) => r.envelope.topic === 'spBv1.0/plant/NDATA/edge-b'),
    ).toBe(false);
  });

  it("gives a failure SUBACK for another device's commands and delivers the device's own commands", async () => {
    // Prepare
    const a = await connect('edge-d');

    // Act
    const theirs = await suback(a, 'spBv1.0/plant/NCMD/edge-b');
    const wildcard = await suback(a, 'spBv1.0/#');
    const mine = await suback(a, 'spBv1.0/plant/NCMD/edge-d');
    const received = new Promise<string>((resolve) => a.once('message', (topic) => resolve(topic)));
    await broker.publish({
      kind: 'publish',
      topic: 'spBv1.0/plant/NCMD/edge-b',
      payload: new Uint8Array([1]),
      qos: 1,
      reason: 't',
    });
    await broker.publish({
      kind: 'publish',
      topic: 'spBv1.0/plant/NCMD/edge-d',
      payload: new Uint8Array([2]),
      qos: 1,
      reason: 't',
    });

    // Assess
    expect(theirs).toBe(128);
    expect(wildcard).toBe(128);
    expect(mine).toBe(1);
    expect(await received).toBe('spBv1.0/plant/NCMD/edge-d');
    expect(a.connected).toBe(true);
  });

  it('refuses a client id that is not a valid thing name', async () => {
    const before = broker.counters.refusedConnects;
    const c = mqtt.connect(broker.url, { clientId: 'bad id#1', reconnectPeriod: 0 });
    clients.push(c);
    const error = await new Promise<Error & { code?: number }>((resolve) => c.once('error', resolve));
    expect(error.code).toBe(2);
    expect(broker.counters.refusedConnects).toBe(before + 1);
  });

  it("runs the server's own publishes through the rules with clientid() n/a, as IoT does for data-plane publishes", async () => {
    // Act
    await broker.publish({
      kind: 'publish',
      topic: 'spBv1.0/grp/NCMD/edge-z',
      payload: new Uint8Array([7]),
      qos: 0,
      reason: 't',
    });
    await broker.publish({
      kind: 'publish',
      topic: 'lwm2m/rd/ep-z',
      payload: new Uint8Array([7]),
      qos: 0,
      reason: 't',
    });
    await broker.flush();

    await broker.publish({
      kind: 'publish',
      topic: 'spBv1.0/grp/NDATA/edge-z',
      payload: new Uint8Array([8]),
      qos: 0,
      reason: 't',
    });
    await broker.flush();

    // Assess: the Sparkplug rule skips the pipeline's own NCMD (no echo into Kinesis) but forwards
    // other topics with clientid() n/a; the LwM2M rule drops the echo (clientid() <> endpoint).
    const sp = await readStream('sparkplug');
    expect(sp.some((r) => r.envelope.topic === 'spBv1.0/grp/NCMD/edge-z')).toBe(false);
    expect(sp).toContainEqual(
      expect.objectContaining({
        partitionKey: 'grp/edge-z',
        envelope: expect.objectContaining({ topic: 'spBv1.0/grp/NDATA/edge-z', clientId: 'n/a' }),
      }),
    );
    expect((await readStream('lwm2m')).some((r) => r.envelope.topic === 'lwm2m/rd/ep-z')).toBe(false);
  });

  it('Basic Ingest (ADR 0024): an LwM2M uplink reaches the rule and Kinesis but never comes back to its sender', async () => {
    // Prepare: the device subscribes to its binding topic (the server's requests arrive there).
    const rule = pipeline.rules.find((r) => r.stream === 'lwm2m')!.name;
    const dev = await connect('ep-echo');
    expect(await suback(dev, 'lwm2m/rd/ep-echo')).toBe(1);
    const received: string[] = [];
    dev.on('message', (topic, payload) => received.push(`${topic} ${payload.toString('hex')}`));

    // Act: one uplink by Basic Ingest, then one on the binding topic (the control: echoed).
    await dev.publishAsync(`$aws/rules/${rule}/lwm2m/rd/ep-echo`, Buffer.from([0xa1, 0x01, 0x18]), {
      qos: 1,
    });
    await dev.publishAsync('lwm2m/rd/ep-echo', Buffer.from([0xa1, 0x01, 0x19]), { qos: 1 });
    await broker.publish({
      kind: 'publish',
      topic: 'lwm2m/rd/ep-echo',
      payload: new Uint8Array([0xa1, 0x01, 0x09]),
      qos: 1,
      reason: 't',
    });
    await expect.poll(() => received.length).toBeGreaterThanOrEqual(2);
    await broker.flush();

    // Assess: the device got the binding-topic echo and the server's request, not the ingested uplink;
    // the ingested uplink is in Kinesis with the rule's view of the topic (no $aws/rules prefix).
    expect(received.sort()).toEqual(['lwm2m/rd/ep-echo a10109', 'lwm2m/rd/ep-echo a10119']);
    const lw = (await readStream('lwm2m')).filter((r) => r.partitionKey === 'ep-echo');
    expect(lw.map((r) => r.envelope.payload)).toEqual(['oQEY', 'oQEZ']);
    expect(
      lw.every((r) => r.envelope.topic === 'lwm2m/rd/ep-echo' && r.envelope.clientId === 'ep-echo'),
    ).toBe(true);
  });

  it("refuses Basic Ingest into another rule or onto another endpoint's topic", async () => {
    for (const topic of [
      '$aws/rules/dualpath_sparkplug/lwm2m/rd/ep-bi',
      '$aws/rules/dualpath_lwm2m/lwm2m/rd/ep-other',
      '$aws/rules/dualpath_lwm2m/spBv1.0/g/NDATA/ep-bi',
    ]) {
      const c = await connect('ep-bi');
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
      c.publish(topic, Buffer.from('x'), { qos: 1 });
      await closed;
      expect(refusals, topic).toContain(`ep-bi: publish to ${topic}`);
    }
  });

  it('allows anything with allowAll', async () => {
    const open = await createBroker({
      port: 0,
      rules: pipeline.rules,
      kinesis: emu.kinesis,
      streamNames: emu.streamNames,
      allowAll: true,
    });
    try {
      const c = await connect('any client', open.url);
      const sub = await suback(c, '#');
      await c.publishAsync('spBv1.0/plant/NDATA/someone-else', Buffer.from('x'), { qos: 1 });
      expect(sub).toBe(1);
      expect(open.counters.refused).toBe(0);
      expect(open.counters.recordsForwarded).toBe(1);
    } finally {
      for (const c of clients.splice(0)) c.end(true);
      await open.close();
    }
  });
});

describe("local broker: one device's oversized or refused message never blocks the others (issue 15)", () => {
  it('refuses a 200 KB publish like IoT Core (connection closed, counted, reported) while good devices flow', async () => {
    // Prepare
    const big = await connect('edge-big');
    const good = await connect('edge-good');
    const { refused, refusedPublishes, refusedTooLarge, deadLettered } = broker.counters;
    const before = { refused, refusedPublishes, refusedTooLarge, deadLettered };
    const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));

    // Act: the oversized publish, then good messages from another device.
    big.publish('spBv1.0/plant/NDATA/edge-big', Buffer.alloc(200 * 1024, 7), { qos: 1 });
    await closed;
    for (let i = 0; i < 3; i++)
      await good.publishAsync('lwm2m/rd/edge-good', Buffer.from([0xa1, 0x00, i]), { qos: 1 });
    // A payload of exactly 128 KB is still accepted.
    await good.publishAsync('spBv1.0/plant/NDATA/edge-good', Buffer.alloc(128 * 1024, 1), { qos: 1 });

    // Assess
    expect(broker.counters.refusedPublishes).toBe(before.refusedPublishes + 1);
    expect(broker.counters.refusedTooLarge).toBe(before.refusedTooLarge + 1);
    expect(broker.counters.refused).toBe(before.refused + 1);
    expect(refusals).toContain(
      'edge-big: publish to spBv1.0/plant/NDATA/edge-big: payload of 204800 bytes is above the 131072-byte limit',
    );
    const lw = (await readStream('lwm2m')).filter((r) => r.envelope.clientId === 'edge-good');
    expect(lw).toHaveLength(3);
    const sp = await readStream('sparkplug');
    expect(sp.some((r) => r.envelope.clientId === 'edge-big')).toBe(false);
    expect(sp.filter((r) => r.envelope.clientId === 'edge-good')).toHaveLength(1);
    expect(broker.counters.deadLettered).toBe(before.deadLettered);
  });

  it('speaks MQTT 3.1.1 only: an MQTT 5 CONNECT is refused, so oversized publishes always meet the 3.1.1 refusal', async () => {
    // Aedes 1.x refuses protocol version 5 (CONNACK "unacceptable protocol version"); no session can
    // exist in which a PUBACK would carry an MQTT 5 reason code.
    const c = mqtt.connect(broker.url, {
      clientId: 'edge-v5',
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });
    clients.push(c);
    const outcome = await new Promise<string>((resolve) => {
      c.once('connect', () => resolve('connected'));
      c.once('error', (e) => resolve(`error: ${(e as Error).message}`));
      c.once('close', () => resolve('closed'));
    });
    expect(outcome).not.toBe('connected');
  });

  it('refuses a server publish above 128 KB, as the IoT data plane does', async () => {
    await expect(
      broker.publish({
        kind: 'publish',
        topic: 'lwm2m/rd/edge-good',
        payload: new Uint8Array(128 * 1024 + 1),
        qos: 1,
        reason: 'test',
      }),
    ).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', field: 'payload' });
  });

  it('dead-letters a record the emulator refuses, once, and stores the records around it', async () => {
    // Prepare: a partition key Kinesis refuses (> 256 characters) between good records, and a record
    // above 1 MiB; all in one batch.
    const dead: DeadLetter[] = [];
    const errors: unknown[] = [];
    const f = new KinesisForwarder({
      kinesis: emu.kinesis,
      streamNames: emu.streamNames,
      retryBaseMs: 1,
      onDeadLetter: (d) => dead.push(d),
      onForwardError: (e) => errors.push(e),
    });
    const marker = (i: number) => Buffer.from(JSON.stringify({ probe: 'refused-test', i }));

    // Act
    await Promise.all([
      f.enqueue({ stream: 'lwm2m', partitionKey: 'k1', data: marker(1) }),
      f.enqueue({ stream: 'lwm2m', partitionKey: 'x'.repeat(300), data: marker(2) }),
      f.enqueue({ stream: 'lwm2m', partitionKey: 'k3', data: marker(3) }),
      f.enqueue({ stream: 'lwm2m', partitionKey: 'k4', data: Buffer.alloc(1024 * 1024 + 1) }),
      f.enqueue({ stream: 'lwm2m', partitionKey: 'k5', data: marker(5) }),
    ]);
    // A later record is not held up either.
    await f.enqueue({ stream: 'lwm2m', partitionKey: 'k6', data: marker(6) });

    // Assess
    const stored = (await readStream('lwm2m'))
      .filter((r) => r.envelope.probe === 'refused-test')
      .map((r) => r.envelope.i);
    expect(stored).toEqual([1, 3, 5, 6]);
    expect(dead.map((d) => [d.code, d.partitionKey.slice(0, 2)])).toEqual([
      ['RECORD_TOO_LARGE', 'k4'],
      ['KINESIS_REFUSED', 'xx'],
    ]);
    expect(dead[1]!.message).toMatch(/^ValidationException: /);
    expect(f.counters).toMatchObject({
      recordsIn: 6,
      recordsForwarded: 4,
      deadLettered: 2,
      pendingRecords: 0,
    });
    expect(errors).toEqual([]); // a refused record is not a transient forwarding error
  });

  it('returns from close() within its bound when Kinesis is unreachable, dead-lettering what is left', async () => {
    // Prepare: a broker whose Kinesis endpoint refuses connections.
    const unreachable = new KinesisClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    const dead: DeadLetter[] = [];
    const stuck = await createBroker({
      port: 0,
      rules: pipeline.rules,
      kinesis: unreachable,
      streamNames: emu.streamNames,
      retryBaseMs: 5,
      closeTimeoutMs: 200,
      onDeadLetter: (d) => dead.push(d),
    });
    const c = await connect('edge-stuck', stuck.url);
    c.publish('lwm2m/rd/edge-stuck', Buffer.from([0xa1, 0x00, 0x01]), { qos: 0 });
    while (stuck.counters.recordsIn === 0) await new Promise((r) => setTimeout(r, 5));

    // Act: never returns if the flush is unbounded (the test would time out).
    await stuck.close();

    // Assess
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ stream: 'lwm2m', partitionKey: 'edge-stuck', code: 'SHUTDOWN' });
    expect(dead[0]!.message).toContain('within 200 ms');
    const { pendingRecords, deadLettered, recordsForwarded } = stuck.counters;
    expect({ pendingRecords, deadLettered, recordsForwarded }).toEqual({
      pendingRecords: 0,
      deadLettered: 1,
      recordsForwarded: 0,
    });
    unreachable.destroy();
  });
});

describe('Kinesis forwarder (mocked Kinesis)', () => {
  // Mock one instance only: the emulator tests above use real clients.
  const kinesis = new KinesisClient({ region: 'us-east-1' });
  const kinesisMock = mockClient(kinesis);
  afterEach(() => kinesisMock.reset());
  const streamNames = { sparkplug: 'sp', lwm2m: 'lw' };
  const rec = (i: number, size = 10) => ({
    stream: 'sparkplug' as const,
    partitionKey: `k${i % 7}`,
    data: Buffer.alloc(size, i % 256),
  });

  it('sends at most 500 records per PutRecords, in order, and retries only the failed records', async () => {
    // Prepare: the first call fails its records 1 and 3.
    let call = 0;
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: unknown[] }) => {
      call++;
      return {
        FailedRecordCount: call === 1 ? 2 : 0,
        Records: input.Records.map((_, i) =>
          call === 1 && (i === 1 || i === 3)
            ? { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'slow down' }
            : { SequenceNumber: String(i), ShardId: 'shardId-000000000000' },
        ),
      };
    });
    const f = new KinesisForwarder({
      kinesis,
      streamNames,
      retryBaseMs: 1,
    });

    // Act
    await Promise.all(Array.from({ length: 1200 }, (_, i) => f.enqueue(rec(i))));

    // Assess
    const calls = kinesisMock.commandCalls(PutRecordsCommand).map((c) => c.args[0].input);
    expect(calls.every((c) => c.Records!.length <= 500 && c.StreamName === 'sp')).toBe(true);
    expect(calls.map((c) => c.Records!.length)).toEqual([500, 2, 500, 200]);
    expect(calls[1]!.Records!.map((r) => r.Data![0])).toEqual([1, 3]);
    expect(f.counters).toMatchObject({
      recordsIn: 1200,
      recordsForwarded: 1200,
      forwardRetries: 2,
      pendingRecords: 0,
    });
  });

  it('after a call, holds a partial batch for the linger so records arriving meanwhile share a call', async () => {
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: unknown[] }) => ({
      Records: input.Records.map(() => ({ SequenceNumber: '1' })),
    }));
    const f = new KinesisForwarder({ kinesis, streamNames, lingerMs: 200 });
    const first = f.enqueue(rec(1));
    const calls = () => kinesisMock.commandCalls(PutRecordsCommand).length;
    while (calls() === 0) await new Promise((r) => setTimeout(r, 5));
    const second = f.enqueue(rec(2)); // arrives while the first call is in flight
    await first;
    await new Promise((r) => setTimeout(r, 20)); // well inside the linger
    const third = f.enqueue(rec(3));
    await Promise.all([second, third]);
    const sizes = kinesisMock.commandCalls(PutRecordsCommand).map((c) => c.args[0].input.Records!.length);
    expect(sizes).toEqual([1, 2]);
  });

  it('keeps each call within 5 MiB', async () => {
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: unknown[] }) => ({
      Records: input.Records.map(() => ({ SequenceNumber: '1' })),
    }));
    const f = new KinesisForwarder({ kinesis, streamNames });
    await Promise.all(Array.from({ length: 12 }, (_, i) => f.enqueue(rec(i, 1024 * 1024))));
    const sizes = kinesisMock
      .commandCalls(PutRecordsCommand)
      .map((c) => c.args[0].input.Records!.reduce((n, r) => n + r.Data!.length + r.PartitionKey!.length, 0));
    expect(sizes.every((s) => s <= 5 * 1024 * 1024)).toBe(true);
    expect(sizes.length).toBe(3);
  });

  it('never drops: retries failed calls until Kinesis is back, and applies backpressure meanwhile', async () => {
    // Prepare: Kinesis is down for the first 4 calls.
    let calls = 0;
    let maxPending = 0;
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: unknown[] }) => {
      calls++;
      if (calls <= 4) throw Object.assign(new Error('down'), { name: 'ServiceUnavailable' });
      return { Records: input.Records.map(() => ({ SequenceNumber: '1' })) };
    });
    const errors: unknown[] = [];
    const f = new KinesisForwarder({
      kinesis,
      streamNames,
      retryBaseMs: 1,
      maxPendingRecords: 10,
      onForwardError: (e) => errors.push(e),
    });

    // Act
    const all = Array.from({ length: 35 }, (_, i) => {
      const p = f.enqueue(rec(i));
      maxPending = Math.max(maxPending, f.counters.pendingRecords);
      return p;
    });
    await Promise.all(all);

    // Assess
    expect(maxPending).toBeLessThanOrEqual(10);
    expect(f.counters.recordsForwarded).toBe(35);
    expect(errors).toHaveLength(4);
  });

  it('dead-letters a record with a per-record error code other than throttling or InternalFailure, once', async () => {
    // Prepare: record 2 is refused for itself, record 4 is throttled once.
    let call = 0;
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: Array<{ Data: Uint8Array }> }) => {
      call++;
      return {
        Records: input.Records.map((r) =>
          r.Data[0] === 2
            ? { ErrorCode: 'KMSAccessDeniedException', ErrorMessage: 'no key access' }
            : r.Data[0] === 4 && call === 1
              ? { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }
              : { SequenceNumber: '1', ShardId: 'shardId-000000000000' },
        ),
      };
    });
    const dead: DeadLetter[] = [];
    const f = new KinesisForwarder({
      kinesis,
      streamNames,
      retryBaseMs: 1,
      onDeadLetter: (d) => dead.push(d),
    });

    // Act
    await Promise.all([1, 2, 3, 4, 5].map((i) => f.enqueue(rec(i))));

    // Assess: the refused record was sent once and never again; the throttled one was retried alone.
    const sent = kinesisMock
      .commandCalls(PutRecordsCommand)
      .map((c) => c.args[0].input.Records!.map((r) => r.Data![0]));
    expect(sent).toEqual([[1, 2, 3, 4, 5], [4]]);
    expect(dead).toEqual([
      {
        stream: 'sparkplug',
        partitionKey: 'k2',
        data: rec(2).data,
        code: 'KINESIS_REFUSED',
        message: 'KMSAccessDeniedException: no key access',
      },
    ]);
    expect(f.counters).toMatchObject({
      recordsForwarded: 4,
      deadLettered: 1,
      forwardRetries: 1,
      pendingRecords: 0,
    });
  });

  it('bisects a call refused with ValidationException down to the one record, keeping the order of the rest', async () => {
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: Array<{ Data: Uint8Array }> }) => {
      if (input.Records.some((r) => r.Data[0] === 6))
        throw Object.assign(new Error('1 validation error detected'), { name: 'ValidationException' });
      return { Records: input.Records.map(() => ({ SequenceNumber: '1' })) };
    });
    const dead: DeadLetter[] = [];
    const stored: number[] = [];
    const f = new KinesisForwarder({
      kinesis,
      streamNames,
      onDeadLetter: (d) => dead.push(d),
      onForwarded: (_s, data) => stored.push(data[0]!),
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => f.enqueue(rec(i))));
    expect(stored).toEqual([0, 1, 2, 3, 4, 5, 7, 8, 9]);
    expect(dead.map((d) => [d.data[0], d.code, d.message])).toEqual([
      [6, 'KINESIS_REFUSED', 'ValidationException: 1 validation error detected'],
    ]);
  });

  it('close() with a call that never returns: dead-letters within the bound, and refuses records after it', async () => {
    // Prepare: Kinesis accepts the connection and never answers.
    kinesisMock.on(PutRecordsCommand).callsFake(() => new Promise(() => {}));
    const dead: DeadLetter[] = [];
    const f = new KinesisForwarder({ kinesis, streamNames, lingerMs: 1, onDeadLetter: (d) => dead.push(d) });
    const first = f.enqueue(rec(1));
    const second = f.enqueue(rec(2));
    while (kinesisMock.commandCalls(PutRecordsCommand).length === 0)
      await new Promise((r) => setTimeout(r, 2));

    // Act
    const left = await f.close(50);
    await Promise.all([first, second]); // settled: their publishers are not left waiting
    await f.enqueue(rec(3));

    // Assess
    expect(left).toBe(2);
    expect(dead.map((d) => [d.data[0], d.code])).toEqual([
      [1, 'SHUTDOWN'],
      [2, 'SHUTDOWN'],
      [3, 'SHUTDOWN'],
    ]);
    expect(dead[0]!.message).toMatch(/^shutdown: Kinesis did not take the record within 50 ms/);
    expect(f.counters).toMatchObject({ pendingRecords: 0, deadLettered: 3, recordsForwarded: 0 });
  });

  it('reports how long records have waited with none stored (the health check reads it)', async () => {
    let now = 1_000;
    let down = true;
    kinesisMock.on(PutRecordsCommand).callsFake((input: { Records: unknown[] }) => {
      if (down) throw Object.assign(new Error('down'), { name: 'ServiceUnavailable' });
      return { Records: input.Records.map(() => ({ SequenceNumber: '1' })) };
    });
    const f = new KinesisForwarder({ kinesis, streamNames, retryBaseMs: 1, retryMaxMs: 5, now: () => now });
    expect(f.stalledMs()).toBe(0);
    const p = f.enqueue(rec(1));
    now += 45_000;
    expect(f.stalledMs()).toBe(45_000);
    down = false;
    await p;
    expect(f.stalledMs()).toBe(0);
  });

  it('flush waits for pending records and reports, not drops, what it could not deliver in time', async () => {
    kinesisMock
      .on(PutRecordsCommand)
      .rejects(Object.assign(new Error('down'), { name: 'ServiceUnavailable' }));
    const f = new KinesisForwarder({
      kinesis,
      streamNames,
      lingerMs: 60_000,
      retryBaseMs: 5,
    });
    void f.enqueue(rec(1)).catch(() => {});
    await expect(f.flush(100)).rejects.toThrow(TransientError);
    expect(f.counters.pendingRecords).toBe(1);
    kinesisMock.reset();
    kinesisMock.on(PutRecordsCommand).resolves({ Records: [{ SequenceNumber: '1' }] });
    await f.flush();
    expect(f.counters).toMatchObject({ pendingRecords: 0, recordsForwarded: 1 });
  });
});
