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

/**
 * mapAwsError plus TransactWriteItems: a cancelled transaction is a ConflictError when an item's
 * condition failed, a TransientError when it met a conflicting write or throttling (nothing written).
 */
export function mapTransactionError(error: unknown, what: string): unknown {
  if (error instanceof Error && error.name === 'TransactionCanceledException') {
    const codes = cancellationCodes(error);
    if (codes.includes('ConditionalCheckFailed')) {
      return new ConflictError(`${what}: condition failed (${codes.join(', ')})`, { cause: error });
    }
    if (codes.some((c) => TRANSIENT_ITEM_CODES.has(c))) {
      return new TransientError('AWS_TRANSIENT', `${what}: transaction cancelled (${codes.join(', ')})`, {
        cause: error,
      });
    }
  }
  return mapAwsError(error, what);
}

/**
 * Per-item error codes (a cancelled transaction's reasons, a PartiQL batch's statement errors) that a
 * retry may get past.
 */
export const TRANSIENT_ITEM_CODES: ReadonlySet<string> = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
  'InternalServerError',
]);

/** Per item of a cancelled transaction, why ('None': that item was not the cause). */
export function cancellationCodes(error: Error): string[] {
  const reasons = (error as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}
