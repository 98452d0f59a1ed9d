import { describe, expect, it } from 'vitest';
import { numberText } from '../../functions/core/reading.js';

describe('numberText', () => {
  it('writes a float32 value as its shortest float32 decimal, anything else as is', () => {
    expect(numberText(Math.fround(29.02))).toBe('29.02');
    expect(numberText(Math.fround(16.86))).toBe('16.86');
    expect(numberText(0.1)).toBe('0.1'); // a double, not float32-representable
    expect(numberText(29.020000000000003)).toBe('29.020000000000003');
    expect(numberText(80)).toBe('80');
    expect(numberText(-0.5)).toBe('-0.5');
    expect(numberText(Number.NaN)).toBe('NaN');
    expect(numberText(Number.POSITIVE_INFINITY)).toBe('Infinity');
  });

  it('round-trips: the text reads back as the same float32', () => {
    for (let i = 0; i < 2000; i++) {
      const v = Math.fround((Math.random() - 0.5) * 10 ** ((i % 12) - 4));
      expect(Math.fround(Number(numberText(v)))).toBe(v);
    }
  });
});
