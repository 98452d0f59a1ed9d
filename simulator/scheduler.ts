/**
 * One scheduler for the whole fleet: a binary min-heap of (due time, callback) driven by ONE timer,
 * instead of a timer per device. `runDue()` runs everything due at the injected clock's time; `start()`
 * keeps one setTimeout armed for the earliest entry (capped at `maxSleepMs`). Tests drive it by hand.
 */
export interface Scheduler {
  /** Runs `fn` at `at` (epoch ms of the injected clock). */
  at(at: number, fn: () => void): void;
  /** Runs `fn` after `delayMs`. */
  after(delayMs: number, fn: () => void): void;
  /** Runs every callback due now; returns how many ran. */
  runDue(): number;
  readonly size: number;
  start(): void;
  stop(): void;
}

export function createScheduler(
  clock: () => number,
  opts: { maxSleepMs?: number; minSleepMs?: number } = {},
) {
  const times: number[] = [];
  const fns: Array<() => void> = [];
  const order: number[] = [];
  let counter = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let armedFor = Number.POSITIVE_INFINITY;
  const maxSleep = opts.maxSleepMs ?? 1000;
  const minSleep = opts.minSleepMs ?? 5;

  const less = (i: number, j: number) =>
    times[i]! < times[j]! || (times[i] === times[j] && order[i]! < order[j]!);
  const swap = (i: number, j: number) => {
    [times[i], times[j]] = [times[j]!, times[i]!];
    [fns[i], fns[j]] = [fns[j]!, fns[i]!];
    [order[i], order[j]] = [order[j]!, order[i]!];
  };
  const push = (t: number, fn: () => void) => {
    times.push(t);
    fns.push(fn);
    order.push(counter++);
    let i = times.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(i, p)) break;
      swap(i, p);
      i = p;
    }
  };
  const pop = (): (() => void) => {
    const fn = fns[0]!;
    const last = times.length - 1;
    swap(0, last);
    times.pop();
    fns.pop();
    order.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < times.length && less(l, m)) m = l;
      if (r < times.length && less(r, m)) m = r;
      if (m === i) break;
      swap(i, m);
      i = m;
    }
    return fn;
  };

  const arm = () => {
    if (!running) return;
    const next = times.length > 0 ? times[0]! : Number.POSITIVE_INFINITY;
    const wait = Math.min(maxSleep, Math.max(minSleep, next - clock()));
    const target = clock() + wait;
    if (timer && target >= armedFor) return;
    if (timer) clearTimeout(timer);
    armedFor = target;
    timer = setTimeout(() => {
      timer = undefined;
      armedFor = Number.POSITIVE_INFINITY;
      s.runDue();
      arm();
    }, wait);
  };

  const s: Scheduler = {
    at(t, fn) {
      push(t, fn);
      if (running && t < armedFor) arm();
    },
    after(delayMs, fn) {
      s.at(clock() + Math.max(0, delayMs), fn);
    },
    runDue() {
      const now = clock();
      let n = 0;
      while (times.length > 0 && times[0]! <= now) {
        const fn = pop();
        n++;
        try {
          fn();
        } catch {
          // A device task never stops the fleet; devices count their own errors.
        }
      }
      return n;
    },
    get size() {
      return times.length;
    },
    start() {
      running = true;
      arm();
    },
    stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      armedFor = Number.POSITIVE_INFINITY;
    },
  };
  return s;
}

/** Per-connection token bucket (AWS IoT Core: ≤100 publishes/s per connection). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly ratePerS: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerS) / 1000);
      this.last = now;
    }
  }

  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until one token is available. */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.ratePerS);
  }
}
