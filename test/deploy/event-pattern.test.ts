import { describe, expect, it } from 'vitest';
import { patternMatches } from '../../scripts/verify-deploy/deployment.js';

describe('deploy harness: EventBridge pattern matching (the subset the stack uses)', () => {
  const pattern = {
    source: ['aws.s3'],
    'detail-type': ['Object Created'],
    detail: { bucket: { name: ['rejects'] } },
  };
  const event = (bucket: string, type = 'Object Created') => ({
    source: 'aws.s3',
    'detail-type': type,
    detail: { bucket: { name: bucket }, object: { key: 'k' } },
  });
  it('matches on every listed field, ignoring fields the pattern does not name', () => {
    expect(patternMatches(pattern, event('rejects'))).toBe(true);
  });
  it('does not match another bucket, another event type or a missing field', () => {
    expect(patternMatches(pattern, event('other'))).toBe(false);
    expect(patternMatches(pattern, event('rejects', 'Object Deleted'))).toBe(false);
    expect(patternMatches(pattern, { source: 'aws.s3', 'detail-type': 'Object Created' })).toBe(false);
  });
});
