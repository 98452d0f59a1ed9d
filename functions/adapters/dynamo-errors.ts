/** Maps AWS SDK errors onto our error classes: throttling/5xx → TransientError, condition → ConflictError. */
import { ConflictError, TransientError } from '../core/errors.js';

const TRANSIENT_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionConflictException',
  'TimeoutError',
  // Socket error codes (on `code`; the SDK renames some TimeoutError).
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

export function mapAwsError(error: unknown, what: string): unknown {
  if (!(error instanceof Error)) return error;
  const meta = (error as { $metadata?: { httpStatusCode?: number }; $retryable?: unknown }).$metadata;
  const status = meta?.httpStatusCode ?? 0;
  if (error.name === 'ConditionalCheckFailedException') {
    return new ConflictError(`${what}: condition failed`, { cause: error });
  }
  if (
    TRANSIENT_NAMES.has(error.name) ||
    status >= 500 ||
    status === 429 ||
    TRANSIENT_NAMES.has((error as { code?: string }).code ?? '')
  ) {
    return new TransientError('AWS_TRANSIENT', `${what}: ${error.name}: ${error.message}`, { cause: error });
  }
  return error;
}
