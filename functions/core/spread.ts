/**
 * A stable, well-spread fraction in [0, 1) per key. Periodic per-key writes use it to pick their own
 * period, so a fleet that connected in the same few seconds does not write all its keys in the same
 * batch every period: such bursts of a thousand writes were the latency spikes of the local stack.
 */
export function keyFraction(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  // FNV-1a alone leaves keys that differ only at the end ("edge-1", "edge-2") close in the high bits:
  // a final avalanche (MurmurHash3's fmix32) spreads them.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}
