/**
 * `dualpath preflight` (= `npm run preflight`): checks, before `cdk deploy`, whether this AWS account
 * can use Timestream for LiveAnalytics. AWS closed the service to accounts that were not already
 * customers on 2025-06-20; in such an account CREATE of the database fails and the stack rolls back.
 */
import { DescribeEndpointsCommand, TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import type { Command } from './main.js';

export type PreflightOutcome =
  | { status: 'ok'; message: string }
  | { status: 'closed'; message: string }
  | { status: 'no-credentials'; message: string }
  | { status: 'error'; message: string };

export async function checkTimestream(
  client: Pick<TimestreamWriteClient, 'send'>,
): Promise<PreflightOutcome> {
  try {
    await client.send(new DescribeEndpointsCommand({}));
    return {
      status: 'ok',
      message:
        'Timestream for LiveAnalytics is available in this account: deploy with the default -c telemetry=timestream.',
    };
  } catch (error) {
    const e = error as Error;
    if (e.name === 'AccessDeniedException' && /existing .*customers/i.test(e.message)) {
      return {
        status: 'closed',
        message:
          'This account is not an existing Timestream for LiveAnalytics customer (the service closed to new ' +
          'accounts on 2025-06-20). Deploy with `-c telemetry=dynamodb` (telemetry in a DynamoDB table, the same ' +
          'API queries) or `-c telemetry=none`.',
      };
    }
    if (e.name === 'CredentialsProviderError' || /credential/i.test(e.message)) {
      return { status: 'no-credentials', message: `No AWS credentials were found: ${e.message}` };
    }
    return { status: 'error', message: `Timestream check failed: ${e.name}: ${e.message}` };
  }
}

export const preflightCommand: Command = {
  summary: 'check the AWS account before cdk deploy (Timestream availability)',
  async run() {
    const outcome = await checkTimestream(new TimestreamWriteClient({}));
    process.stdout.write(`${outcome.status.toUpperCase()}: ${outcome.message}\n`);
    return outcome.status === 'ok' ? 0 : 1;
  },
};
