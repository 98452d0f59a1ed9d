import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../functions/core/errors.js';
import {
  basicIngestTopic,
  deviceMayPublish,
  deviceMaySubscribe,
  lwm2mTopic,
  lwm2mUplinkTopic,
  parseLwm2mTopic,
  parseSparkplugTopic,
  parseTopic,
  sparkplugTopic,
  splitBasicIngest,
} from '../../functions/core/topics.js';

describe('Sparkplug topics', () => {
  it('parses node and device messages', () => {
    expect(parseSparkplugTopic('spBv1.0/plant1/NBIRTH/edge-1')).toEqual({
      kind: 'message',
      group: 'plant1',
      type: 'NBIRTH',
      node: 'edge-1',
    });
    expect(parseSparkplugTopic('spBv1.0/plant1/DDATA/edge-1/pump')).toEqual({
      kind: 'message',
      group: 'plant1',
      type: 'DDATA',
      node: 'edge-1',
      device: 'pump',
    });
  });

  it('recognises STATE as its own kind', () => {
    expect(parseSparkplugTopic('spBv1.0/STATE/scada-host')).toEqual({ kind: 'state', hostId: 'scada-host' });
  });

  it.each([
    ['spBv1.0/g/NDATA/n/d', 'TOPIC_LEVELS'],
    ['spBv1.0/g/DDATA/n', 'TOPIC_LEVELS'],
    ['spBv1.0/g/XDATA/n', 'TOPIC_MESSAGE_TYPE'],
    ['spBv1.0/g/NDATA', 'TOPIC_LEVELS'],
    ['spBv1.0//NDATA/n', 'TOPIC_GROUP'],
    ['spAv1.0/g/NDATA/n', 'TOPIC_NAMESPACE'],
  ])('rejects %s with %s', (topic, code) => {
    expect(() => parseSparkplugTopic(topic)).toThrow(ProtocolError);
    try {
      parseSparkplugTopic(topic);
    } catch (error) {
      expect((error as ProtocolError).code).toBe(code);
      expect((error as ProtocolError).field).toBe('topic');
    }
  });

  it('builds topics that parse back', () => {
    const topic = sparkplugTopic('g', 'DCMD', 'n', 'd');
    expect(topic).toBe('spBv1.0/g/DCMD/n/d');
    expect(parseSparkplugTopic(topic)).toMatchObject({ type: 'DCMD', device: 'd' });
    expect(() => sparkplugTopic('g', 'DDATA', 'n')).toThrow(ProtocolError);
    expect(() => sparkplugTopic('g/x', 'NDATA', 'n')).toThrow(ProtocolError);
  });
});

describe('LwM2M topics', () => {
  it('parses rd and bs with an optional prefix', () => {
    expect(parseLwm2mTopic('lwm2m/rd/sensor-1')).toEqual({ iface: 'rd', endpoint: 'sensor-1' });
    expect(parseLwm2mTopic('tenant-a/lwm2m/bs/urn:dev:1')).toEqual({
      prefix: 'tenant-a',
      iface: 'bs',
      endpoint: 'urn:dev:1',
    });
  });

  it.each(['lwm2m/xx/ep', 'lwm2m/rd', 'lwm2m/rd/ep/extra', 'lwm2m/rd/bad ep', `lwm2m/rd/${'x'.repeat(129)}`])(
    'rejects %s',
    (topic) => {
      expect(() => parseLwm2mTopic(topic)).toThrow(ProtocolError);
    },
  );

  it('builds topics', () => {
    expect(lwm2mTopic('ep-1')).toBe('lwm2m/rd/ep-1');
    expect(lwm2mTopic('ep-1', 'bs', 't')).toBe('t/lwm2m/bs/ep-1');
    expect(() => lwm2mTopic('a/b')).toThrow(ProtocolError);
  });

  it('dispatches by protocol and rejects others', () => {
    expect(parseTopic('lwm2m/rd/x').protocol).toBe('lwm2m');
    expect(parseTopic('spBv1.0/g/NDATA/x').protocol).toBe('sparkplug');
    expect(() => parseTopic('devices/x/telemetry')).toThrow(ProtocolError);
  });
});

describe('per-device authorization (same rule as the IoT policy)', () => {
  it('lets a device publish only on its own node and endpoint topics', () => {
    expect(deviceMayPublish('dev-1', 'spBv1.0/g/NBIRTH/dev-1')).toBe(true);
    expect(deviceMayPublish('dev-1', 'spBv1.0/g/DDATA/dev-1/child')).toBe(true);
    expect(deviceMayPublish('dev-1', 'lwm2m/rd/dev-1')).toBe(true);
    expect(deviceMayPublish('dev-1', 'spBv1.0/g/NDATA/dev-2')).toBe(false);
    expect(deviceMayPublish('dev-1', 'lwm2m/rd/dev-2')).toBe(false);
    expect(deviceMayPublish('dev-1', 'spBv1.0/g/NCMD/dev-1')).toBe(false);
    expect(deviceMayPublish('dev-1', 'spBv1.0/STATE/dev-1')).toBe(false);
    expect(deviceMayPublish('dev-1', 'other/topic')).toBe(false);
  });

  it('lets a device subscribe only to its own commands and endpoint', () => {
    expect(deviceMaySubscribe('dev-1', 'spBv1.0/g/NCMD/dev-1')).toBe(true);
    expect(deviceMaySubscribe('dev-1', 'spBv1.0/g/DCMD/dev-1/+')).toBe(true);
    expect(deviceMaySubscribe('dev-1', 'lwm2m/rd/dev-1')).toBe(true);
    expect(deviceMaySubscribe('dev-1', 'spBv1.0/g/NCMD/dev-2')).toBe(false);
    expect(deviceMaySubscribe('dev-1', 'spBv1.0/#')).toBe(false);
    expect(deviceMaySubscribe('dev-1', 'lwm2m/rd/+')).toBe(false);
    expect(deviceMaySubscribe('dev-1', '#')).toBe(false);
  });
});

describe('Basic Ingest topics (ADR 0024)', () => {
  it('builds and splits $aws/rules/{rule}/{topic}', () => {
    expect(basicIngestTopic('dualpath_lwm2m', 'lwm2m/rd/ep-1')).toBe(
      '$aws/rules/dualpath_lwm2m/lwm2m/rd/ep-1',
    );
    expect(splitBasicIngest('$aws/rules/r_1/lwm2m/rd/ep-1')).toEqual({ rule: 'r_1', topic: 'lwm2m/rd/ep-1' });
    expect(splitBasicIngest('lwm2m/rd/ep-1')).toEqual({ topic: 'lwm2m/rd/ep-1' });
    expect(() => basicIngestTopic('bad-name', 'lwm2m/rd/ep-1')).toThrow(ProtocolError);
    expect(lwm2mUplinkTopic('ep-1')).toBe('lwm2m/rd/ep-1');
    expect(lwm2mUplinkTopic('ep-1', 'r')).toBe('$aws/rules/r/lwm2m/rd/ep-1');
  });
  it('parses an ingested LwM2M topic as the binding topic (the prefix is routing, not the binding PREFIX)', () => {
    expect(parseLwm2mTopic('$aws/rules/r/lwm2m/rd/ep-1')).toEqual({ iface: 'rd', endpoint: 'ep-1' });
    expect(parseTopic('$aws/rules/r/tenant/lwm2m/rd/ep-1')).toEqual({
      protocol: 'lwm2m',
      topic: { prefix: 'tenant', iface: 'rd', endpoint: 'ep-1' },
    });
  });
  it('lets a device ingest only its own LwM2M uplinks, only into the LwM2M rule', () => {
    expect(deviceMayPublish('ep-1', '$aws/rules/r/lwm2m/rd/ep-1', 'r')).toBe(true);
    expect(deviceMayPublish('ep-1', '$aws/rules/r/lwm2m/rd/ep-1')).toBe(false);
    expect(deviceMayPublish('ep-1', '$aws/rules/x/lwm2m/rd/ep-1', 'r')).toBe(false);
    expect(deviceMayPublish('ep-1', '$aws/rules/r/lwm2m/rd/ep-2', 'r')).toBe(false);
    expect(deviceMayPublish('ep-1', '$aws/rules/r/spBv1.0/g/NDATA/ep-1', 'r')).toBe(false);
    expect(deviceMayPublish('ep-1', '$aws/things/ep-1/shadow/update', 'r')).toBe(false);
    expect(deviceMaySubscribe('ep-1', '$aws/rules/r/lwm2m/rd/ep-1')).toBe(false);
  });
});
