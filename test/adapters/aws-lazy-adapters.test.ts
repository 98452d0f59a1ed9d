import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import { awsRulesPorts, loadConfig, telemetryStore } from '../../functions/shared/aws.js';

// ADR 0025: the Timestream store and the AWS alert sinks load on first use; their settings are still
// checked when the function is built.
const base = { REGISTRY_TABLE: 'r', STATE_TABLE: 's', EVENTS_TABLE: 'e', IOT_DATA_ENDPOINT: 'x.invalid' };
const doc = {} as DynamoDBDocumentClient;

describe('adapters loaded on first use', () => {
  it('rejects rules without a topic or bus at build, not at the first delivery', () => {
    const config = loadConfig({ ...base, RULES_ENABLED: 'true' });
    expect(() => awsRulesPorts(config, doc)).toThrow(ValidationError);
    expect(() => awsRulesPorts(config, doc)).toThrow(/ALERTS_TOPIC_ARN nor ALERTS_EVENT_BUS/);
  });

  it('builds a Timestream store without loading it, and rejects its missing settings at build', async () => {
    const ok = loadConfig({
      ...base,
      TELEMETRY_BACKEND: 'timestream',
      TIMESTREAM_DATABASE: 'db',
      TIMESTREAM_TABLE: 't',
    });
    const store = telemetryStore(ok, doc);
    // Closing a store never used loads nothing and succeeds.
    await expect(store.close()).resolves.toBeUndefined();
    const missing = loadConfig({ ...base, TELEMETRY_BACKEND: 'timestream', TIMESTREAM_DATABASE: 'db' });
    expect(() => telemetryStore(missing, doc)).toThrow(/TIMESTREAM_DATABASE and TIMESTREAM_TABLE/);
  });

  it('delivers through the SNS sink loaded on the first delivery (its Publish reaches the endpoint)', async () => {
    const config = loadConfig({
      ...base,
      RULES_ENABLED: 'true',
      ALERTS_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:alerts',
    });
    const { sink } = awsRulesPorts(config, doc);
    // No endpoint answers here: the loaded SNS sink's Publish fails, which shows it was loaded and called.
    const env = { ...process.env };
    process.env.AWS_REGION = 'eu-west-1';
    process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    process.env.AWS_ENDPOINT_URL_SNS = 'http://127.0.0.1:9';
    process.env.AWS_MAX_ATTEMPTS = '1';
    try {
      const t = {
        id: 'a1',
        kind: 'open',
        at: 0,
        ruleId: 'r',
        ruleName: 'r',
        severity: 'warning',
        deviceId: 'd',
        reason: 'x',
        actions: [],
      } as never;
      // Not a load failure: the sink was imported and its Publish failed on the connection.
      const error = (await sink.deliver(t).then(
        () => undefined,
        (e: unknown) => e,
      )) as Error;
      expect(error).toBeInstanceOf(Error);
      expect(error.message).not.toMatch(/Cannot find|Failed to load|is not a function/);
      expect(String(error.name) + error.message).toMatch(/ECONNREFUSED|connect|Transient|SNS|refused/i);
    } finally {
      process.env = env;
    }
  });
});
