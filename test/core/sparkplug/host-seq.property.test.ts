/**
 * Property tests of the seq / reorder algorithm (ADR 0003, decision 3) with fast-check: local
 * reordering and duplicates within the reorder timeout never cause a rebirth and lose no reading; a
 * message that never arrives causes exactly one rebirth, after the deadline, naming the lost seq.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MessageOutcome } from '../../../functions/core/reading.js';
import { DataType } from '../../../functions/core/sparkplug/types.js';
import {
  byAlias,
  data,
  GROUP,
  hostHarness,
  NODE,
  nbirth,
  rebirths,
  T0,
} from '../../fixtures/sparkplug-host/session.js';

/** Moves each element at most `k` places: sort by index + jitter[i] (jitter in [0, k]). */
function locallyShuffled<T>(items: T[], jitter: number[]): T[] {
  return items
    .map((item, i) => ({ item, key: i + (jitter[i] ?? 0) + i / 1e6 }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.item);
}

describe('host seq algorithm (property)', () => {
  it('tolerates local reordering and duplicates: no rebirth, every reading kept, duplicates counted', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 1, max: 120 }),
        fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 120, maxLength: 120 }),
        fc.array(fc.boolean(), { minLength: 120, maxLength: 120 }),
        async (birthSeq, n, jitter, dup) => {
          const { send, store } = hostHarness({ reorder: 10_000, throttle: 60_000 });
          await send('NBIRTH', nbirth(1, birthSeq), undefined, T0);
          const seqs = Array.from({ length: n }, (_, i) => (birthSeq + 1 + i) % 256);
          const order = locallyShuffled(seqs, jitter).flatMap((s, i) => (dup[i] ? [s, s] : [s]));
          const outs: MessageOutcome[] = [];
          let t = T0;
          for (const s of order)
            outs.push(await send('NDATA', data(s, [byAlias(1, DataType.Int64, s)]), undefined, ++t));
          // A final in-order message, still within the reorder timeout.
          const last = (birthSeq + 1 + n) % 256;
          outs.push(await send('NDATA', data(last, []), undefined, ++t));

          expect(outs.flatMap(rebirths)).toEqual([]);
          expect(outs.flatMap((o) => o.readings).length).toBe(order.length);
          const duplicates = outs.flatMap((o) => o.events).filter((e) => e.type === 'duplicate').length;
          expect(duplicates).toBe(order.length - n);
          const node = await store.getNode(GROUP, NODE);
          expect(node?.gap).toBeUndefined();
          expect(node?.expectedSeq).toBe((last + 1) % 256);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a lost message asks for exactly one rebirth, only once the deadline has passed, naming the seq', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 3, max: 60 }),
        fc.nat(),
        async (birthSeq, n, pick) => {
          const reorder = 1000;
          const { send } = hostHarness({ reorder, throttle: 60_000 });
          await send('NBIRTH', nbirth(1, birthSeq), undefined, T0);
          const lostIndex = pick % (n - 1); // never the last one
          const lost = (birthSeq + 1 + lostIndex) % 256;
          const outs: Array<{ at: number; out: MessageOutcome }> = [];
          let gapOpenedAt: number | undefined;
          for (let i = 0; i < n; i++) {
            if (i === lostIndex) continue;
            const at = T0 + 100 * (i + 1); // 100 ms apart: the deadline passes after 10 messages
            const out = await send('NDATA', data((birthSeq + 1 + i) % 256, []), undefined, at);
            if (i === lostIndex + 1) gapOpenedAt = at;
            outs.push({ at, out });
          }
          const asked = outs.filter(({ out }) => rebirths(out).length > 0);
          const deadline = (gapOpenedAt ?? 0) + reorder;
          const lastAt = outs.at(-1)?.at ?? 0;
          if (lastAt > deadline) {
            expect(asked).toHaveLength(1);
            expect(asked[0]!.at).toBeGreaterThan(deadline);
            expect(asked[0]!.at - 100).toBeLessThanOrEqual(deadline);
            const reason = asked[0]!.out.events.find((e) => e.type === 'rebirth-requested')?.detail;
            expect(reason).toBe(`seq gap not recovered within ${reorder} ms: missing ${lost}`);
          } else {
            expect(asked).toEqual([]);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
