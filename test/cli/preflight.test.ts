import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeEndpointsCommand, TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { checkTimestream, configuredTelemetry, preflightReport } from '../../infra/cli/preflight.js';

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
    expect(outcome.message).toContain('NOT available');
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

describe('preflight: which telemetry store the account can use', () => {
  const ok = { status: 'ok', message: 'available' } as const;
  const closed = { status: 'closed', message: 'Timestream for LiveAnalytics is NOT available' } as const;

  it('always offers DynamoDB; offers Timestream only when the account already has it', () => {
    const newAccount = preflightReport(closed, 'dynamodb');
    expect(newAccount.lines[0]).toMatch(/^DynamoDB telemetry store: AVAILABLE/);
    expect(newAccount.lines.join('\n')).toContain('NOT available');
    expect(newAccount.exitCode).toBe(0);
    const customer = preflightReport(ok, 'dynamodb');
    expect(customer.lines.join('\n')).toMatch(/Timestream for LiveAnalytics: AVAILABLE/);
    expect(customer.exitCode).toBe(0);
  });

  it('fails when the configured store is Timestream and the account cannot create it', () => {
    const r = preflightReport(closed, 'timestream');
    expect(r.exitCode).toBe(1);
    expect(r.lines.at(-1)).toMatch(/^FAIL: .*"telemetry": "dynamodb"/);
    expect(preflightReport(ok, 'timestream').exitCode).toBe(0);
  });

  it('fails without credentials (cdk deploy needs them) but says DynamoDB needs no check', () => {
    const r = preflightReport({ status: 'no-credentials', message: 'none' }, 'dynamodb');
    expect(r.exitCode).toBe(1);
    expect(r.lines.join('\n')).toContain('DynamoDB telemetry store: AVAILABLE');
  });

  it('reads the configured store from cdk.json and deploy.config.json (the file wins)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'preflight-'));
    fs.copyFileSync(path.resolve('cdk.json'), path.join(dir, 'cdk.json'));
    expect(configuredTelemetry(dir)).toBe('dynamodb');
    fs.writeFileSync(path.join(dir, 'deploy.config.json'), JSON.stringify({ telemetry: 'timestream' }));
    expect(configuredTelemetry(dir)).toBe('timestream');
    fs.rmSync(dir, { recursive: true });
  });
});
