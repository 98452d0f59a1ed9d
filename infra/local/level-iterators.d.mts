/** Types of level-iterators.mjs (plain JS: the emulator child process runs it without a TypeScript loader). */

/** An abstract-level module: the classes whose prototypes the fix and its test touch. */
export interface AbstractLevelModule {
  AbstractLevel: {
    prototype: { attachResource(resource: object): void; detachResource(resource: object): void };
  };
  AbstractIterator: abstract new (...args: never[]) => object;
  AbstractKeyIterator: abstract new (...args: never[]) => object;
  AbstractValueIterator: abstract new (...args: never[]) => object;
}

/** The abstract-level modules behind dynalite's two backends (LevelDB through `level`, and memory-level). */
export function abstractLevelCopies(): AbstractLevelModule[];

/** Adds `return()` (= `close()`) to abstract-level's iterator classes where it is missing. Returns the number patched. */
export function closeLevelIteratorsOnReturn(): number;
