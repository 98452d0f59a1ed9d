/**
 * Deterministic transition ids: the same (rule, series, kind, time, ...) always gives the same id, so a
 * replayed batch or a second timer run reproduces ids instead of inventing new ones. Two independent
 * 32-bit FNV-1a hashes with a final avalanche → 64 bits, 16 hex digits.
 */
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

export function transitionId(...parts: Array<string | number>): string {
  const s = parts.join('\u0000');
  return `${fnv(s, 2166136261).toString(16).padStart(8, '0')}${fnv(s, 0x811c9dc5 ^ 0x5bd1e995)
    .toString(16)
    .padStart(8, '0')}`;
}
