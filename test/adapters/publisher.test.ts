import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { mockClient } from 'aws-sdk-client-mock';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { IotDataPublisher, LocalBrokerPublisher } from '../../functions/adapters/publisher.js';
import { ProtocolError, TransientError } from '../../functions/core/errors.js';
import type { PublishAction } from '../../functions/core/reading.js';
import { createBroker } from '../../infra/local/broker.js';
import { pipeline } from '../../infra/pipeline.js';

const action = (topic: string, bytes: number[], qos: 0 | 1 = 1): PublishAction => ({
  kind: 'publish',
  topic,
  payload: new Uint8Array(bytes),
  qos,
  reason: 'test',
});
const awsError = (name: string, status: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('IotDataPublisher', () => {
  const client = new IoTDataPlaneClient({ region: 'us-east-1' });
  const iot = mockClient(client);
  const noSleep = async () => {};
  afterEach(() => iot.reset());

  it('publishes each action with its topic, qos, payload and retain false', async () => {
    iot.on(PublishCommand).resolves({});
    const p = new IotDataPublisher({ client, sleep: noSleep });

    await p.publish([action('spBv1.0/g/NCMD/n1', [1, 2]), action('lwm2m/rd/ep', [3], 0)]);

    const inputs = iot.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(inputs).toEqual([
      { topic: 'spBv1.0/g/NCMD/n1', qos: 1, retain: false, payload: new Uint8Array([1, 2]) },
      { topic: 'lwm2m/rd/ep', qos: 0, retain: false, payload: new Uint8Array([3]) },
    ]);
  });

  it('builds the client on the first publish, or at once when given the SDK module', async () => {
    iot.on(PublishCommand).resolves({});
    const made: string[] = [];
    const lazy = new IotDataPublisher({
      client: () => {
        made.push('lazy');
        return client;
      },
      sleep: noSleep,
    });
    const eager = new IotDataPublisher({
      client: () => {
        made.push('eager');
        return client;
      },
      sdk: { IoTDataPlaneClient, PublishCommand },
      sleep: noSleep,
    });
    expect(made).toEqual(['eager']);
    await lazy.publish([action('lwm2m/rd/ep', [1])]);
    await lazy.publish([action('lwm2m/rd/ep', [2])]);
    await eager.publish([action('lwm2m/rd/ep', [3])]);
    expect(made).toEqual(['eager', 'lazy']);
    expect(iot.commandCalls(PublishCommand)).toHaveLength(3);
  });

  it('retries throttling and 5xx, then succeeds', async () => {
    iot
      .on(PublishCommand)
      .rejectsOnce(awsError('ThrottlingException', 429))
      .rejectsOnce(awsError('InternalFailureException', 500))
      .resolves({});
    const delays: number[] = [];
    const p = new IotDataPublisher({ client, baseDelayMs: 10, sleep: async (ms) => void delays.push(ms) });

    await p.publish([action('lwm2m/rd/ep', [1])]);

    expect(iot.commandCalls(PublishCommand)).toHaveLength(3);
    expect(delays).toEqual([10, 20]);
  });

  it('throws a TransientError when transient failures persist', async () => {
    iot.on(PublishCommand).rejects(awsError('ServiceUnavailableException', 503));
    const p = new IotDataPublisher({ client, maxAttempts: 3, sleep: noSleep });

    const error = await p.publish([action('lwm2m/rd/ep', [1])]).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).message).toMatch(/lwm2m\/rd\/ep failed 3 times/);
    expect(iot.commandCalls(PublishCommand)).toHaveLength(3);
  });

  it('does not retry a refused request', async () => {
    iot.on(PublishCommand).rejects(awsError('UnauthorizedException', 401));
    const p = new IotDataPublisher({ client, sleep: noSleep });
    await expect(p.publish([action('lwm2m/rd/ep', [1])])).rejects.toBeInstanceOf(ProtocolError);
    expect(iot.commandCalls(PublishCommand)).toHaveLength(1);
  });
});

describe('LocalBrokerPublisher', () => {
  it("delivers to the device's subscription as the server, outside the device ACL", async () => {
    // Prepare: a broker with the real ACL; the device subscribes to its own LwM2M topic.
    const broker = await createBroker({
      port: 0,
      rules: pipeline.rules,
      kinesis: new KinesisClient({ region: 'us-east-1' }),
      streamNames: { sparkplug: 's', lwm2m: 'l' },
    });
    const device = mqtt.connect(broker.url, { clientId: 'ep-7', reconnectPeriod: 0 });
    try {
      await new Promise((r) => device.once('connect', r));
      await device.subscribeAsync('lwm2m/rd/ep-7', { qos: 1 });
      const got = new Promise<[string, Buffer]>((resolve) =>
        device.once('message', (t, p) => resolve([t, p])),
      );

      // Act
      await new LocalBrokerPublisher(broker.aedes).publish([action('lwm2m/rd/ep-7', [0xa1, 0x01, 0x02])]);

      // Assess
      const [topic, payload] = await got;
      expect(topic).toBe('lwm2m/rd/ep-7');
      expect([...payload]).toEqual([0xa1, 0x01, 0x02]);
      expect(broker.counters.serverPublishes).toBe(1);
      expect(broker.counters.refused).toBe(0);
    } finally {
      device.end(true);
      await broker.close();
    }
  });

  it('skips publishing once the broker is closing', async () => {
    const published: string[] = [];
    const p = new LocalBrokerPublisher(
      {
        publish: (packet, cb) => {
          published.push(packet.topic);
          cb();
        },
      },
      () => false,
    );
    await p.publish([action('lwm2m/rd/x', [1])]);
    expect(published).toEqual([]);
  });
});
