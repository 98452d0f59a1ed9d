/**
 * One error hierarchy for the whole pipeline. Every error has a stable machine `code`, a message that
 * names the offending field, an optional `cause`, and `retryable`, which tells a handler whether to
 * retry the record (transient: throttling, 5xx) or quarantine it (the input itself is bad).
 */
export interface ErrorDetails {
  field?: string;
  cause?: unknown;
}

export abstract class DualpathError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  readonly field: string | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.field = details.field;
  }

  toJSON(): { code: string; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

/** The input cannot be decoded: wrong encoding, truncated, out of range. Never retried. */
export class DecodeError extends DualpathError {
  readonly retryable = false;
  constructor(
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** The input decodes but breaks a protocol rule (unknown operation, bad topic, ...). Never retried. */
export class ProtocolError extends DualpathError {
  readonly retryable = false;
  constructor(
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** Caller input (API body, CLI flag, config) is invalid. Never retried. */
export class ValidationError extends DualpathError {
  readonly code: string;
  readonly retryable = false;
  constructor(message: string, details: ErrorDetails & { code?: string } = {}) {
    super(message, details);
    this.code = details.code ?? 'VALIDATION_FAILED';
  }
}

/** A dependency failed in a way that may pass: throttling, timeouts, 5xx. Retried, then reported. */
export class TransientError extends DualpathError {
  readonly retryable = true;
  constructor(
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** A state write lost a race (conditional check failed); the caller re-reads and decides again. */
export class ConflictError extends DualpathError {
  readonly code = 'CONFLICT';
  readonly retryable = true;
}

export class NotFoundError extends DualpathError {
  readonly code = 'NOT_FOUND';
  readonly retryable = false;
}

/** The caller may not do this (an application key outside its device types). Never retried. */
export class ForbiddenError extends DualpathError {
  readonly code = 'FORBIDDEN';
  readonly retryable = false;
}

export function isRetryable(error: unknown): boolean {
  return error instanceof DualpathError ? error.retryable : false;
}

/** Turns anything thrown into the `{code, message, field?}` shape used in outputs and quarantine. */
export function describeError(error: unknown): { code: string; message: string; field?: string } {
  if (error instanceof DualpathError) return error.toJSON();
  if (error instanceof Error) return { code: 'INTERNAL', message: error.message };
  return { code: 'INTERNAL', message: String(error) };
}
