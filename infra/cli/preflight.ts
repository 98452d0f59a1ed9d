/**
 * `dualpath preflight` (= `npm run preflight`): says, before `cdk deploy`, which telemetry store this AWS
 * account can use. DynamoDB (the default) works in every account. Timestream for LiveAnalytics only in
 * accounts that were already customers: AWS closed it to new accounts on 2025-06-20, and there CREATE
 * of the database fails and the stack rolls back. Also checks the store the next plain `cdk deploy`
 * would use (cdk.json defaults + deploy.config.json) against what the account can create.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DescribeEndpointsCommand, TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { DEPLOY_CONFIG_FILE, parseDeployConfig, resolveDeployment } from '../aws/settings.js';
import type { Command } from './main.js';

export type PreflightOutcome =
  | { status: 'ok'; message: string }
  | { status: 'closed'; message: string }
  | { status: 'no-credentials'; message: string }
  | { status: 'error'; message: string };

/** Whether the account can use Timestream for LiveAnalytics (endpoint discovery is the cheapest call). */
export async function checkTimestream(
  client: Pick<TimestreamWriteClient, 'send'>,
): Promise<PreflightOutcome> {
  try {
    await client.send(new DescribeEndpointsCommand({}));
    return {
      status: 'ok',
      message:
        'Timestream for LiveAnalytics is available in this account (an existing customer): ' +
        '-c telemetry=timestream, or "telemetry": "timestream" in deploy.config.json, keeps telemetry there.',
    };
  } catch (error) {
    const e = error as Error;
    if (e.name === 'AccessDeniedException' && /existing .*customers/i.test(e.message)) {
      return {
        status: 'closed',
        message:
          'Timestream for LiveAnalytics is NOT available: this account is not an existing customer (the service ' +
          'closed to new accounts on 2025-06-20). Use the default, -c telemetry=dynamodb (same API queries); ' +
          'do not deploy with telemetry=timestream.',
      };
    }
    if (e.name === 'CredentialsProviderError' || /credential/i.test(e.message)) {
      return { status: 'no-credentials', message: `No AWS credentials were found: ${e.message}` };
    }
    return { status: 'error', message: `Timestream check failed: ${e.name}: ${e.message}` };
  }
}

export interface PreflightReport {
  /** Lines to print. */
  lines: string[];
  exitCode: number;
}

/**
 * The verdict: which stores the account can use, and whether the configured one (what a plain
 * `cdk deploy` would use) is one of them.
 */
export function preflightReport(timestream: PreflightOutcome, configured: string): PreflightReport {
  const lines = ['DynamoDB telemetry store: AVAILABLE (every account; the default, -c telemetry=dynamodb).'];
  if (timestream.status === 'ok')
    lines.push(`Timestream for LiveAnalytics: AVAILABLE. ${timestream.message}`);
  else if (timestream.status === 'closed') lines.push(timestream.message);
  else lines.push(`Timestream for LiveAnalytics: UNKNOWN. ${timestream.message}`);
  lines.push(`Configured store (cdk.json + ${DEPLOY_CONFIG_FILE}): ${configured}.`);
  if (configured === 'timestream' && timestream.status !== 'ok') {
    lines.push(
      `FAIL: a plain cdk deploy would create a Timestream database${timestream.status === 'closed' ? ', which this account cannot' : ' that could not be checked'}; set "telemetry": "dynamodb" in ${DEPLOY_CONFIG_FILE}.`,
    );
    return { lines, exitCode: 1 };
  }
  if (timestream.status === 'no-credentials' || timestream.status === 'error') {
    lines.push(
      'The Timestream check did not run; the DynamoDB store needs none, but cdk deploy needs credentials.',
    );
    return { lines, exitCode: 1 };
  }
  lines.push(`OK: deploy with telemetry=${configured}.`);
  return { lines, exitCode: 0 };
}

/** The telemetry store a plain `cdk deploy` would use (no -c flags). */
export function configuredTelemetry(root: string): string {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(root, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const defaults = cdkJson.context ?? {};
  const file = path.join(root, DEPLOY_CONFIG_FILE);
  const resolved = resolveDeployment({
    context: (k) => defaults[k],
    defaults,
    ...(fs.existsSync(file)
      ? { file: parseDeployConfig(JSON.parse(fs.readFileSync(file, 'utf8')), file) }
      : {}),
  });
  return resolved.settings.telemetry;
}

export const preflightCommand: Command = {
  summary: 'check the AWS account before cdk deploy (which telemetry store it can use)',
  async run() {
    const outcome = await checkTimestream(new TimestreamWriteClient({}));
    const report = preflightReport(outcome, configuredTelemetry(process.cwd()));
    process.stdout.write(`${report.lines.join('\n')}\n`);
    return report.exitCode;
  },
};
