import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { transitionId } from '../../../functions/core/rules/hash.js';

/** The definition of a transition id (ids are persisted: the fast implementation must give exactly this). */
function fnv(s: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function reference(...parts: Array<string | number>): string {
  const s = parts.join('\u0000');
  return `${fnv(s, 2166136261).toString(16).padStart(8, '0')}${fnv(s, 0x811c9dc5 ^ 0x5bd1e995)
    .toString(16)
    .padStart(8, '0')}`;
}

describe('transitionId', () => {
  it('is the hash of the parts joined with U+0000, numbers as String() writes them', () => {
    const num = fc.oneof(
      fc.integer({ min: 0, max: 2_000_000_000_000 }),
      fc.maxSafeInteger(),
      fc.constantFrom(0, -0, 1e9, 1e9 - 1, 1e9 + 1, 2 ** 31, 2 ** 53 - 1, 2 ** 53, 1e21, 1.5, -1, -1e12),
      fc.double(),
      fc.integer({ min: 999_999_000, max: 1_000_001_000 }).map((x) => x * 1_000 + 999),
    );
    const part = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), num);
    fc.assert(
      fc.property(fc.array(part, { minLength: 0, maxLength: 6 }), (parts) => {
        expect(transitionId(...parts)).toBe(reference(...parts));
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps the ids it always gave (pinned: computed by the implementation before 2026-12-05)', () => {
    expect(transitionId('r1', 'pump-7|temp', 'open', 1_700_000_000_000)).toBe('594893eda885e25b');
    expect(transitionId('r1', 'pump-7|temp', 'resolve', 1_700_000_030_500, 'abc')).toBe('8ba5f7d3f8c528ec');
  });
});
