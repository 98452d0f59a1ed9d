/**
 * Admission of device targets into an operation: bounded concurrency (targets in flight at once) and
 * a start rate (a token bucket of `ratePerSecond`, burst `burst`). Pure: the worker passes the bucket
 * it stored and stores the one returned.
 *
 * Guarantees (property-tested): in flight + admitted never exceeds `concurrency`; over any time window
 * [t0, t1] the targets admitted never exceed `burst + ratePerSecond * (t1 - t0) / 1000`; nothing is
 * admitted when nothing is pending; a positive admission is made whenever a token, a slot and a pending
 * target all exist (no starvation).
 */

export interface Limits {
  /** Targets in flight at once (1-1000). */
  concurrency: number;
  /** Targets started per second (0.1-1000). */
  ratePerSecond: number;
  /** Tokens the bucket holds at most (default max(1, ceil(ratePerSecond))). */
  burst?: number;
}

export interface Bucket {
  tokens: number;
  /** Epoch ms the tokens were counted at. */
  at: number;
}

export function burstOf(l: Limits): number {
  return l.burst ?? Math.max(1, Math.ceil(l.ratePerSecond));
}

/** A full bucket at `now`: a new operation may start `burst` targets at once. */
export function fullBucket(l: Limits, now: number): Bucket {
  return { tokens: burstOf(l), at: now };
}

/** How many pending targets may start now, and the bucket after starting them. */
export function admit(
  l: Limits,
  bucket: Bucket,
  inFlight: number,
  pending: number,
  now: number,
): { count: number; bucket: Bucket } {
  const elapsed = Math.max(0, now - bucket.at);
  const tokens = Math.min(burstOf(l), bucket.tokens + (elapsed * l.ratePerSecond) / 1000);
  const at = Math.max(bucket.at, now);
  const count = Math.max(0, Math.min(Math.floor(tokens), l.concurrency - inFlight, pending));
  return { count, bucket: { tokens: tokens - count, at } };
}

/** Milliseconds until the bucket holds one token (0 if it already does). */
export function msUntilToken(l: Limits, bucket: Bucket, now: number): number {
  const tokens = Math.min(
    burstOf(l),
    bucket.tokens + (Math.max(0, now - bucket.at) * l.ratePerSecond) / 1000,
  );
  return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / l.ratePerSecond);
}
