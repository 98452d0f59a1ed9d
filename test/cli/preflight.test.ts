import { DescribeEndpointsCommand, TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { checkTimestream } from '../../infra/cli/preflight.js';

const timestream = mockClient(TimestreamWriteClient);

function awsError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

describe('preflight: Timestream for LiveAnalytics availability', () => {
  afterEach(() => timestream.reset());

  it('reports ok when endpoint discovery works', async () => {
    timestream
      .on(DescribeEndpointsCommand)
      .resolves({ Endpoints: [{ Address: 'ingest-cell1', CachePeriodInMinutes: 1440 }] });
    const outcome = await checkTimestream(new TimestreamWriteClient({ region: 'us-east-1' }));
    expect(outcome.status).toBe('ok');
  });

  it('explains the closed-to-new-accounts case and the way out', async () => {
    timestream
      .on(DescribeEndpointsCommand)
      .rejects(
        awsError(
          'AccessDeniedException',
          'Only existing Timestream for LiveAnalytics customers can access the service',
        ),
      );
    const outcome = await checkTimestream(new TimestreamWriteClient({ region: 'us-east-1' }));
    expect(outcome.status).toBe('closed');
    expect(outcome.message).toContain('2025-06-20');
    expect(outcome.message).toContain('-c telemetry=dynamodb');
  });

  it('tells missing credentials apart from other failures', async () => {
    timestream
      .on(DescribeEndpointsCommand)
      .rejects(awsError('CredentialsProviderError', 'Could not load credentials'));
    expect((await checkTimestream(new TimestreamWriteClient({ region: 'us-east-1' }))).status).toBe(
      'no-credentials',
    );
    timestream.on(DescribeEndpointsCommand).rejects(awsError('InternalServerException', 'boom'));
    expect((await checkTimestream(new TimestreamWriteClient({ region: 'us-east-1' }))).status).toBe('error');
  });
});
