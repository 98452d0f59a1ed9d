/**
 * What every function's Lambda entry is wrapped in (the ingest functions build the same with metrics,
 * functions/shared/ingest-handler.ts): middy with Powertools' Logger, so every log line is one JSON
 * object carrying the service (POWERTOOLS_SERVICE_NAME, set by the stack), the request id and whether
 * the invocation was a cold start; and a failed invocation is logged with its stack before Lambda sees
 * the error (the caller, e.g. an EventBridge schedule or IoT, otherwise keeps only a message).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

/** A function's logger: its service name comes from POWERTOOLS_SERVICE_NAME. */
export function functionLogger(): Logger {
  return new Logger();
}

export interface EntryOptions {
  /**
   * Log a thrown error as "invocation failed" (default true). False where throwing is the answer, not a
   * fault (the REST authorizer answers a bad key by throwing "Unauthorized").
   */
  logFailures?: boolean;
}

export function lambdaEntry<E, R>(
  logger: Logger,
  handler: (event: E, context: Context) => Promise<R>,
  options: EntryOptions = {},
): (event: E, context: Context) => Promise<R> {
  const wrapped = middy(handler).use(injectLambdaContext(logger));
  if (options.logFailures ?? true)
    wrapped.onError(async (request) => {
      // No response is set, so middy rethrows the error after this.
      logger.error(
        'invocation failed',
        request.error instanceof Error ? request.error : String(request.error),
      );
    });
  return wrapped as unknown as (event: E, context: Context) => Promise<R>;
}
