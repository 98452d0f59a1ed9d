import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { lambdaEntry } from '../../functions/shared/lambda-entry.js';

const context = {
  functionName: 'f',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:f',
  memoryLimitInMB: '128',
  awsRequestId: 'req-1',
  getRemainingTimeInMillis: () => 1000,
} as unknown as Context;

describe('lambdaEntry', () => {
  it('adds the request id to every line, and logs a failed invocation with its error before rethrowing', async () => {
    // Prepare
    const logger = new Logger({ serviceName: 't' });
    const errors = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const ok = lambdaEntry(logger, async (event: { n: number }) => {
      logger.info('working');
      return event.n + 1;
    });
    const boom = new Error('boom');
    const failing = lambdaEntry(logger, async () => {
      throw boom;
    });
    // Act
    const result = await ok({ n: 1 }, context);
    write.mockRestore();
    const thrown = await failing({}, context).catch((e: unknown) => e);
    // Assess
    expect(result).toBe(2);
    const line = JSON.parse(lines.find((l) => l.includes('working')) ?? '{}');
    expect(line).toMatchObject({ message: 'working', service: 't', function_request_id: 'req-1' });
    expect(thrown).toBe(boom);
    expect(errors).toHaveBeenCalledWith('invocation failed', boom);
  });

  it('does not log a thrown answer as a failure when told so (the authorizer\'s "Unauthorized")', async () => {
    const logger = new Logger({ serviceName: 't' });
    const errors = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const authorizer = lambdaEntry(
      logger,
      async () => {
        throw new Error('Unauthorized');
      },
      { logFailures: false },
    );
    await expect(authorizer({}, context)).rejects.toThrow('Unauthorized');
    expect(errors).not.toHaveBeenCalled();
  });
});
