// Closes dynalite's LevelDB iterators (used by infra/local/emulator-process.mjs before dynalite starts).
//
// dynalite 4 reads Query and Scan results through streams over abstract-level iterators
// (`db.values(...)`); the stream's destroy() — called when the stream ends, and when a Limit or the
// 1 MB page size stops it early — closes the iterator through `iterator.return()`. abstract-level 3
// iterators have no return(): their method is close(). So every Query and Scan left its iterator open,
// and an open iterator is never released: the database keeps it (attachResource) until the database
// closes, and on LevelDB (classic-level) it pins the memtable and table files it started on, so each
// memtable that a Query or Scan saw stayed in memory after its flush — the emulator's RSS grew ~5 MB/min
// under the soak's write load (docs/benchmarks.md, Soak). memory-level iterators likewise kept the tree
// version they read.
//
// This gives abstract-level's iterator classes the return() that dynalite expects: close(), which waits
// for a read in progress. It patches every copy of abstract-level that dynalite's backends resolve, and
// changes nothing where return() already exists (a dynalite or abstract-level that fixed it).
import { createRequire } from 'node:module';

const ITERATOR_CLASSES = ['AbstractIterator', 'AbstractKeyIterator', 'AbstractValueIterator'];

/** The abstract-level modules behind dynalite's two backends (LevelDB through `level`, and memory-level). */
export function abstractLevelCopies() {
  const fromHere = createRequire(import.meta.url);
  const fromDynalite = createRequire(fromHere.resolve('dynalite'));
  const classicLevel = createRequire(fromDynalite.resolve('level')).resolve('classic-level');
  const memoryLevel = fromDynalite.resolve('memory-level');
  const paths = new Set(
    [classicLevel, memoryLevel].map((backend) => createRequire(backend).resolve('abstract-level')),
  );
  return [...paths].map((path) => fromHere(path));
}

/**
 * Adds `return()` (= `close()`) to abstract-level's iterator classes where it is missing. Idempotent.
 * Returns the number of classes patched by this call.
 */
export function closeLevelIteratorsOnReturn() {
  let patched = 0;
  for (const abstractLevel of abstractLevelCopies()) {
    for (const name of ITERATOR_CLASSES) {
      const proto = abstractLevel[name]?.prototype;
      if (!proto || typeof proto.return === 'function') continue;
      Object.defineProperty(proto, 'return', {
        value: function close() {
          return this.close();
        },
        writable: true,
        configurable: true,
      });
      patched++;
    }
  }
  return patched;
}
