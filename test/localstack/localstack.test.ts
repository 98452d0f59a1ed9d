/**
 * Opt-in checks against a running LocalStack (docs/localstack.md): DUALPATH_LOCALSTACK=1 npm test.
 * Skipped with a reason otherwise; CI machines have no Docker engine.
 */
import { DescribeStreamCommand, KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { describe, expect, it } from 'vitest';

const endpoint = process.env.LOCALSTACK_ENDPOINT ?? 'http://127.0.0.1:4566';

async function localstackUp(): Promise<string | undefined> {
  if (process.env.DUALPATH_LOCALSTACK !== '1') return 'set DUALPATH_LOCALSTACK=1 to run the LocalStack tests';
  try {
    const res = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? undefined : `LocalStack health answered HTTP ${res.status}`;
  } catch (error) {
    return `LocalStack is not reachable at ${endpoint}: ${(error as Error).message}`;
  }
}

const reason = await localstackUp();
if (reason) console.info(`[localstack] skipped: ${reason}`);

describe.skipIf(reason !== undefined)('LocalStack target (opt-in)', () => {
  it('has the two Dualpath streams after `npm run deploy:local`', async () => {
    const kinesis = new KinesisClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
    });
    const { StreamNames = [] } = await kinesis.send(new ListStreamsCommand({}));
    const ours = StreamNames.filter((n) => /Sparkplug|Lwm2m/i.test(n));
    expect(ours.length).toBeGreaterThanOrEqual(2);
    for (const name of ours) {
      const d = await kinesis.send(new DescribeStreamCommand({ StreamName: name }));
      expect(d.StreamDescription?.EncryptionType).toBe('KMS');
    }
  });
});
