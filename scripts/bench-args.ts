/** Small helpers the benchmark scripts share (outside scripts/bench: every file there is a benchmark). */

/** `--name N` or `--name=N`: a positive integer, else `fallback`; anything else is an error naming it. */
export function intOption(args: string[], name: string, fallback: number): number {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  const raw = args[i]!.includes('=') ? args[i]!.slice(args[i]!.indexOf('=') + 1) : args[i + 1];
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return n;
}

/** The median (the upper one of an even count). */
export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
