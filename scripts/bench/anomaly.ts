/**
 * `npm run bench -- anomaly [threshold] [runs]`, or `npm run bench -- anomaly --against <dir> [batches]`
 * (the rules' cost in the handler here and in another checkout, one process: `againstFigures`), or
 * `npm run bench -- anomaly --aws [batches] [records per invocation]` (against the handler with its AWS
 * stores: `awsFigures`):
 *
 * 1. The streaming anomaly detector (functions/core/rules/detector.ts) on the simulator's labelled
 *    streams (simulator/anomalies.ts): one stream family per anomaly kind (5 seeds × 20,000 readings at
 *    10 s, σ = 1, a daily cycle, anomalies every ~150 readings after a 120-reading quiet period), alarms
 *    = readings scoring above the threshold (default 5). Precision and recall per kind, event-level
 *    (scoreDetections: alarms ≤ 30 s apart form one episode), and µs per reading.
 * 2. The cost of evaluating 100 rules relative to the ingest handler: the Sparkplug batch of
 *    `npm run bench -- ingest` (10,000 NDATA of 10 metrics from 100 nodes = 100,000 readings) through the
 *    function its composition root builds (store mocked; its enriched readings are captured), then
 *    RuleEngine begin → evaluate → commit over those readings with in-memory rule state and alert stores.
 *    Times are the process's CPU time (user + system, GC threads included), median of the runs; a full
 *    collection runs before each timed engine run, so none pays for the garbage of the parts before it
 *    (the handlers' batches: see `timeBatch`). Each rule layout's first batches (WARMUP) are printed
 *    apart and left out of its median.
 * 3. The same as deployed (`awsFigures`, 9 batches): what the target is read against, printed last.
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoAlertStore, DynamoRuleStateStore } from '../../functions/adapters/dynamo-rules.js';
import { DynamoTelemetryStore } from '../../functions/adapters/dynamo-telemetry-store.js';
import { InMemoryEventLog } from '../../functions/core/events.js';
import type { IngestRecord } from '../../functions/core/ingest.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { detect, newDetectorState } from '../../functions/core/rules/detector.js';
import { telemetryHistory } from '../../functions/core/rules/history.js';
import {
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  RuleEngine,
  validateRule,
} from '../../functions/core/rules/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { InMemorySparkplugStateStore } from '../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import type { IngestRulesPorts } from '../../functions/shared/ingest-function.js';
import { composeSparkplugIngest } from '../../functions/sparkplug-ingest/compose.js';
import type { Benchmark } from '../../infra/cli/bench.js';
import { ANOMALY_KINDS, generateAnomalyStream, scoreDetections } from '../../simulator/anomalies.js';
import { median } from '../bench-args.js';
import { type StubbedDynamo, stubbedDynamo } from './dynamo-stub.js';

const T0 = 1_700_000_000_000;
const DEVICES = 100;
const RECORDS = 10_000;
const METRICS = 10;
const out = (s: string) => process.stdout.write(`${s}\n`);
/** The first and third quartiles (nearest rank): how far the per-batch figures spread. */
const quartiles = (xs: number[]): [number, number] => {
  const sorted = [...xs].sort((a, b) => a - b);
  return [sorted[Math.floor((sorted.length - 1) / 4)]!, sorted[Math.ceil((3 * (sorted.length - 1)) / 4)]!];
};
/** CPU time of the process (user + system), ms: robust on a shared, loaded machine, unlike wall time. */
const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

setFlagsFromString('--expose-gc');
/**
 * A full collection before each timed engine run: each is charged for collecting its own garbage, not for
 * the garbage of the parts before it (the ingest runs leave garbage that the rules would else pay for).
 */
const gc = runInNewContext('gc') as () => void;
/** A pause: the concurrent sweeping of the collections before is done (its CPU time would else count). */
const pause = () => new Promise((resolve) => setTimeout(resolve, 100));
/** A full collection, then the pause. */
const settle = async () => {
  gc();
  await pause();
};

function detectorFigures(threshold: number): void {
  // Warm-up (JIT) before timing.
  const warm = newDetectorState();
  for (const r of generateAnomalyStream({ seed: 99, kinds: ANOMALY_KINDS }).readings)
    detect(warm, r.time, r.value);
  out(`Anomaly detector (robust EWMA/MAD z-score + drift, stuck, gap components), threshold ${threshold}`);
  out(
    `${'kind'.padEnd(13)}${'labelled'.padStart(9)}${'detected'.padStart(9)}${'episodes'.padStart(9)}${'precision'.padStart(11)}${'recall'.padStart(8)}${'µs/reading'.padStart(12)}`,
  );
  for (const kind of ANOMALY_KINDS) {
    let labelled = 0;
    let detected = 0;
    let episodes = 0;
    let tp = 0;
    let readings = 0;
    let ms = 0;
    const streams = [1, 2, 3, 4, 5].map((seed) => generateAnomalyStream({ seed, kinds: [kind] }));
    for (const s of streams) {
      const state = newDetectorState();
      const alarms: number[] = [];
      for (const r of s.readings) if (detect(state, r.time, r.value).score > threshold) alarms.push(r.time);
      const x = scoreDetections(s.anomalies, alarms, 30_000);
      labelled += x.anomalies;
      detected += x.detected;
      episodes += x.episodes;
      tp += x.truePositives;
    }
    // Cost: 20 passes over the five streams with fresh detectors, CPU time.
    const c0 = process.cpuUsage();
    for (let pass = 0; pass < 20; pass++) {
      for (const s of streams) {
        const state = newDetectorState();
        for (const r of s.readings) detect(state, r.time, r.value);
        readings += s.readings.length;
      }
    }
    ms = cpuMs(c0);
    const precision = episodes === 0 ? 1 : tp / episodes;
    out(
      `${kind.padEnd(13)}${String(labelled).padStart(9)}${String(detected).padStart(9)}${String(episodes).padStart(9)}${precision.toFixed(3).padStart(11)}${(detected / labelled).toFixed(3).padStart(8)}${((ms * 1000) / readings).toFixed(3).padStart(12)}`,
    );
  }
  out('target: recall >= 0.9 at precision >= 0.9 for spike and level-shift');
}

const envelope = (topic: string, payload: Uint8Array, receivedAt: number, clientId: string) =>
  Buffer.from(
    JSON.stringify({ payload: Buffer.from(payload).toString('base64'), topic, receivedAt, clientId }),
  );

/**
 * The Sparkplug batch of the ingest benchmark: births, then 10,000 NDATA of 10 Double metrics. `k` > 0 is
 * the k-th next batch of the same nodes (sequence numbers, times and Kinesis sequence numbers go on).
 */
function sparkplugBatch(shiftMs: number, k = 0): { births: IngestRecord[]; batch: IngestRecord[] } {
  const perNode = RECORDS / DEVICES;
  const births: IngestRecord[] = [];
  const batch: IngestRecord[] = [];
  for (let d = 0; d < DEVICES; d++) {
    const node = `node-${d}`;
    births.push({
      sequenceNumber: String(d).padStart(12, '0'),
      partitionKey: `g/${node}`,
      data: envelope(
        `spBv1.0/g/NBIRTH/${node}`,
        encodePayload({
          timestamp: T0 + shiftMs,
          seq: 0,
          metrics: [
            { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
            ...Array.from({ length: METRICS }, (_, i) => ({
              name: `m${i}`,
              alias: i + 1,
              datatype: DataType.Double,
              value: 1,
              timestamp: T0 + shiftMs,
            })),
          ],
        }),
        T0 + shiftMs,
        node,
      ),
    });
  }
  for (let i = 0; i < RECORDS; i++) {
    const d = i % DEVICES;
    const n = k * perNode + Math.floor(i / DEVICES);
    const node = `node-${d}`;
    const t = T0 + shiftMs + (n + 1) * 1000;
    batch.push({
      sequenceNumber: String(1_000_000 + k * RECORDS + i).padStart(12, '0'),
      partitionKey: `g/${node}`,
      data: envelope(
        `spBv1.0/g/NDATA/${node}`,
        encodePayload({
          timestamp: t,
          seq: (n + 1) % 256,
          metrics: Array.from({ length: METRICS }, (_, k) => ({
            alias: k + 1,
            datatype: DataType.Double,
            value: 50 + ((n * 7 + k * 13 + d) % 40),
            omitDatatype: true,
            timestamp: t,
          })),
        }),
        t,
        node,
      ),
    });
  }
  return { births, batch };
}

/** Times the ingest handler on the batch (CPU ms); returns it and the enriched readings it stored. */
export async function ingestRun(shiftMs: number): Promise<{ ms: number; readings: EnrichedReading[] }> {
  const { births, batch } = sparkplugBatch(shiftMs);
  const registry = new InMemoryRegistry();
  await registry.putDeviceType({ id: 'bench', name: 'bench', capabilities: [], units: {} });
  const captured: EnrichedReading[] = [];
  let capture = false;
  const fn = composeSparkplugIngest(
    {
      registry,
      events: new InMemoryEventLog(1000),
      store: {
        write: async (rs: EnrichedReading[]) => {
          if (capture) for (const r of rs) captured.push(r);
          return { written: rs.length, duplicates: 0, rejected: [] };
        },
      },
      publisher: { publish: async () => {} },
      clock: () => T0 + shiftMs,
      logger: new Logger({ serviceName: 'bench', logLevel: 'ERROR' }),
      metrics: new Metrics({ namespace: 'bench' }),
      sparkplugState: new InMemorySparkplugStateStore(),
    },
    { autoRegister: true, defaultDeviceType: 'bench', concurrency: 8 },
  );
  await fn.processRecords(births);
  await settle();
  const c0 = process.cpuUsage();
  await fn.processRecords(batch);
  const ms = cpuMs(c0);
  // A second pass captures the readings (not timed: the capture itself is not the handler's cost).
  const again = sparkplugBatch(shiftMs + 500_000);
  capture = true;
  await fn.processRecords(again.batch);
  return { ms, readings: captured };
}

/**
 * Batches of each rule run timed but reported apart, before the median's: the longest window (5 min)
 * fills in the third 100-second batch, and a new engine's first batches also pay for its states and
 * windows growing (3–7× the steady state, ADR 0016 amendment 4). Before 2026-12-04 (amendment 4) they
 * were part of the median of 7.
 */
const WARMUP = 3;

const CONDITIONS = [
  'value > 85 for 30s clear < 80',
  'value > 88',
  'value < 51 for 10s',
  'rate(1m) > 2000',
  'abs(delta()) > 39',
  'mean(1m) > 85 clear mean(1m) < 80',
  'stddev(5m) > 30',
  'percentile(95, 1m) > 95',
  'anomaly() > 5',
  'absent for 5m',
];

type Layout = 'per-metric' | 'per-device' | 'elsewhere';

/**
 * 100 rules defined, ten of each condition above; every reading is checked against all 100 for selection
 * (memoised per device and metric, as always) and evaluated by those selecting it (ADR 0016 amendment 3):
 * - per-device: rule i selects node-i and metric m*: each reading is selected by exactly 1 rule — the
 *   issue's "100 rules" over a fleet, and the layout its < 10 % target is read against;
 * - per-metric: rule i selects the bench type and metric m{i % 10}: each reading is selected by 10 rules
 *   (a heavier deployment);
 * - elsewhere: as per-metric but for another device type: no reading is selected (selection cost only).
 */
function hundredRules(layout: Layout) {
  return Array.from({ length: 100 }, (_, i) => ({
    name: `rule ${i}`,
    severity: 'minor',
    condition: CONDITIONS[layout === 'per-device' ? i % 10 : Math.floor(i / 10)]!,
    select:
      layout === 'per-device'
        ? { deviceType: 'bench', devices: [`node-${i}`], metric: 'm*' }
        : { deviceType: layout === 'elsewhere' ? 'other' : 'bench', metric: `m${i % METRICS}` },
    throttle: '1m',
    actions: [{ type: 'webhook', url: 'https://example.com/hook' }],
  }));
}

export async function rulesRun(
  readings: EnrichedReading[],
  layout: Layout,
  runs: number,
  /** Timed batches before the `runs` counted ones (reported apart: windows still filling). */
  warmup = 0,
): Promise<{ ms: number[]; warmupMs: number[]; evaluations: number; transitions: number; states: number }> {
  const rules = new InMemoryRuleStore();
  for (const [i, d] of hundredRules(layout).entries()) {
    await rules.put(validateRule(d, { id: `r${i}`, now: T0 }), 'create');
  }
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  let now = T0;
  const engine = new RuleEngine({
    rules,
    state,
    alerts,
    clock: () => now,
    rulesTtlMs: Number.POSITIVE_INFINITY,
  });
  const ms: number[] = [];
  const warmupMs: number[] = [];
  let evaluations = 0;
  let transitions = 0;
  const span = readings.length === 0 ? 0 : readings[readings.length - 1]!.time - readings[0]!.time + 1000;
  // Each run is the next batch of the same fleet: same series, later times (run 0 creates the states).
  // The readings are moved in time in place, outside the timed part.
  const batch = readings.map((r) => ({ ...r }));
  for (let run = 0; run <= runs + warmup; run++) {
    now = T0 + run * span;
    if (run > 0) for (const r of batch) r.time += span;
    const before = engine.stats.evaluations;
    await settle();
    const c0 = process.cpuUsage();
    engine.begin();
    await engine.evaluate({ readings: batch });
    const delivered = await engine.commit();
    const elapsed = cpuMs(c0);
    if (run > 0 && run <= warmup) warmupMs.push(elapsed);
    else if (run > 0) {
      ms.push(elapsed);
      evaluations = engine.stats.evaluations - before;
      transitions = delivered.length;
    }
  }
  return { ms, warmupMs, evaluations, transitions, states: state.states.size };
}

/** CPU ms of this thread so far (NaN where process.threadCpuUsage is missing: Node 20). */
function threadCpu(): number {
  const f = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage;
  if (!f) return Number.NaN;
  const u = f();
  return (u.user + u.system) / 1000;
}

/** The modules a Sparkplug ingest handler with rules is composed of: this checkout's, or another's. */
interface Tree {
  composeSparkplugIngest: typeof composeSparkplugIngest;
  InMemoryRegistry: typeof InMemoryRegistry;
  InMemoryEventLog: typeof InMemoryEventLog;
  InMemorySparkplugStateStore: typeof InMemorySparkplugStateStore;
  InMemoryRuleStore: typeof InMemoryRuleStore;
  InMemoryRuleStateStore: typeof InMemoryRuleStateStore;
  InMemoryAlertStore: typeof InMemoryAlertStore;
  validateRule: typeof validateRule;
}

const THIS_TREE: Tree = {
  composeSparkplugIngest,
  InMemoryRegistry,
  InMemoryEventLog,
  InMemorySparkplugStateStore,
  InMemoryRuleStore,
  InMemoryRuleStateStore,
  InMemoryAlertStore,
  validateRule,
};

/** The same modules from another checkout (with its own node_modules), loaded through tsx as this one is. */
async function treeAt(dir: string): Promise<Tree> {
  const load = (path: string) => import(pathToFileURL(join(resolve(dir), path)).href);
  const [compose, registry, events, state, rules] = await Promise.all([
    load('functions/sparkplug-ingest/compose.ts'),
    load('functions/core/registry-memory.ts'),
    load('functions/core/events.ts'),
    load('functions/core/sparkplug/host/state.ts'),
    load('functions/core/rules/index.ts'),
  ]);
  return { ...compose, ...registry, ...events, ...state, ...rules } as Tree;
}

/**
 * A Sparkplug ingest handler of `tree` (in-memory ports; with the 100 rules of `layout`, if given). With
 * `dynamo`, the telemetry store and the rule state and alert stores are the AWS adapters over it (this
 * checkout's), as deployed; the registry, event log and Sparkplug state stay in memory.
 */
async function composeHandler(
  tree: Tree,
  layout: Layout | undefined,
  clock: () => number,
  onTransition: () => void,
  dynamo?: StubbedDynamo,
) {
  const registry = new tree.InMemoryRegistry();
  await registry.putDeviceType({ id: 'bench', name: 'bench', capabilities: [], units: {} });
  const telemetry = dynamo
    ? new DynamoTelemetryStore({ client: dynamo.doc, tableName: 'telemetry', clock })
    : undefined;
  let rules: IngestRulesPorts | undefined;
  if (layout) {
    const source = new tree.InMemoryRuleStore();
    for (const [i, d] of hundredRules(layout).entries()) {
      await source.put(tree.validateRule(d, { id: `r${i}`, now: T0 }), 'create');
    }
    rules = {
      rules: source,
      state: dynamo
        ? new DynamoRuleStateStore({ client: dynamo.doc, tableName: 'state', clock })
        : new tree.InMemoryRuleStateStore(),
      alerts: dynamo
        ? new DynamoAlertStore({ client: dynamo.doc, tableName: 'registry', clock })
        : new tree.InMemoryAlertStore(),
      sink: {
        deliver: async () => {
          onTransition();
        },
      },
      // As deployed (functions/shared/aws.ts): states written behind, read back from the store.
      ...(telemetry ? { history: telemetryHistory(telemetry, clock) } : {}),
    };
  }
  return tree.composeSparkplugIngest(
    {
      registry,
      events: new tree.InMemoryEventLog(1000),
      store: telemetry
        ? telemetry
        : {
            write: async (rs: EnrichedReading[]) => ({ written: rs.length, duplicates: 0, rejected: [] }),
          },
      publisher: { publish: async () => {} },
      clock,
      logger: new Logger({ serviceName: 'bench', logLevel: 'ERROR' }),
      metrics: new Metrics({ namespace: 'bench' }),
      sparkplugState: new tree.InMemorySparkplugStateStore(),
      ...(rules ? { rules } : {}),
    },
    {
      autoRegister: true,
      defaultDeviceType: 'bench',
      concurrency: 8,
      rulesTtlMs: Number.POSITIVE_INFINITY,
    },
  );
}

type Handler = Awaited<ReturnType<typeof composeHandler>>;

/** Batch k of `handlers` (each on its own copy of the records), in the given order: CPU ms per handler. */
async function timeBatch(
  handlers: Handler[],
  batch: IngestRecord[],
  k: number,
): Promise<Array<{ ms: number; threadMs: number }>> {
  const out: Array<{ ms: number; threadMs: number }> = [];
  for (const fn of handlers) {
    // Each handler decodes its own copy (the records' buffers are not shared between them).
    const records = batch.map((r) => ({ ...r, data: Buffer.from(r.data) }));
    // A full collection before the first batch only, not between the handlers' batches (before
    // 2026-12-06 each batch had one): a full collection with no batch in flight frees what the last
    // batch's optimized code was specialized to (its closures, the maps of its objects), and V8 throws
    // that code away — the decoder's functions were deoptimized once per batch, the rules' `collect`
    // every third, and both handlers timed partly unoptimized. The heap's own full collections come
    // mid-batch, with the batch's objects alive: without the forced ones, none of that code was dropped.
    await (k === 1 ? settle() : pause());
    const t0 = threadCpu();
    const c0 = process.cpuUsage();
    const result = await fn.processRecords(records);
    const ms = cpuMs(c0);
    const threadMs = threadCpu() - t0;
    if (result.batchItemFailures.length > 0) throw new Error(`batch ${k} failed`);
    out.push({ ms, threadMs });
  }
  return out;
}

/**
 * The rules' cost where they run: two Sparkplug ingest handlers over the same stream of batches, one
 * without rules and one with the 100 rules of `layout` (in-memory rule, state and alert stores; a sink
 * that takes every transition), each batch timed in both, the order swapped every batch. The difference
 * is what evaluation adds on the ingest path (selection and logging per stored chunk, grouping, evaluation, the
 * engine's commit, the decorators), the readings as warm as they are there.
 */
export async function handlerRulesRun(
  layout: Layout,
  runs: number,
  warmup: number,
  /** Time one handler only (the other measured in another process). */
  only?: 'plain' | 'rules',
): Promise<{
  plainMs: number[];
  rulesMs: number[];
  /** The main thread's CPU only (no GC helper threads), where the runtime can tell (Node ≥ 22.19). */
  plainThreadMs: number[];
  rulesThreadMs: number[];
  transitions: number;
}> {
  let now = T0;
  let transitions = 0;
  const clock = () => now;
  const count = () => {
    transitions++;
  };
  const plain = await composeHandler(THIS_TREE, undefined, clock, count);
  const withRules = await composeHandler(THIS_TREE, layout, clock, count);
  const { births } = sparkplugBatch(0);
  if (only !== 'rules') await plain.processRecords(births);
  if (only !== 'plain') await withRules.processRecords(births);
  const plainMs: number[] = [];
  const rulesMs: number[] = [];
  const plainThreadMs: number[] = [];
  const rulesThreadMs: number[] = [];
  for (let k = 1; k <= warmup + runs; k++) {
    const { batch } = sparkplugBatch(0, k);
    now = T0 + k * (RECORDS / DEVICES) * 1000;
    const order =
      only === 'plain'
        ? [plain]
        : only === 'rules'
          ? [withRules]
          : k % 2 === 0
            ? [plain, withRules]
            : [withRules, plain];
    const times = await timeBatch(order, batch, k);
    if (k > warmup) {
      order.forEach((fn, i) => {
        (fn === plain ? plainMs : rulesMs).push(times[i]!.ms);
        (fn === plain ? plainThreadMs : rulesThreadMs).push(times[i]!.threadMs);
      });
    }
    if (k === warmup) transitions = 0;
  }
  return { plainMs, rulesMs, plainThreadMs, rulesThreadMs, transitions };
}

/**
 * `--against <dir>`: the rules' cost in this checkout and in another one (e.g. a `git worktree` of an
 * earlier commit, node_modules linked), measured in one process: three handlers (plain, rules there,
 * rules here) over the same batches, their order rotated every batch, so both are timed under the same
 * machine conditions. Prints what the rules add in each, and the per-batch difference here − there.
 */
async function againstFigures(dir: string, runs: number): Promise<void> {
  const other = await treeAt(dir);
  let now = T0;
  const clock = () => now;
  const none = () => {};
  const handlers = {
    plain: await composeHandler(THIS_TREE, undefined, clock, none),
    there: await composeHandler(other, 'per-device', clock, none),
    here: await composeHandler(THIS_TREE, 'per-device', clock, none),
  };
  const names = Object.keys(handlers) as Array<keyof typeof handlers>;
  const { births } = sparkplugBatch(0);
  for (const n of names) await handlers[n].processRecords(births);
  const warmup = 5;
  const threadMs = { plain: [] as number[], there: [] as number[], here: [] as number[] };
  for (let k = 1; k <= warmup + runs; k++) {
    const { batch } = sparkplugBatch(0, k);
    now = T0 + k * (RECORDS / DEVICES) * 1000;
    const order = names.map((_, i) => names[(i + k) % names.length]!);
    const times = await timeBatch(
      order.map((n) => handlers[n]),
      batch,
      k,
    );
    if (k <= warmup) continue;
    order.forEach((n, i) => {
      threadMs[n].push(times[i]!.threadMs);
    });
  }
  const diff = (a: number[], b: number[]) => median(a.map((v, i) => v - b[i]!));
  out('');
  out(
    `Rules here vs in ${dir} (100 rules, one per node), one process, median of ${runs} batches after ${warmup}:`,
  );
  // The main thread only: the GC helper threads work for the one heap the three handlers share, so the
  // process's CPU cannot be told apart per handler here.
  if (!threadMs.plain.every(Number.isFinite)) {
    out('  needs process.threadCpuUsage (Node >= 22.19)');
    return undefined;
  }
  const base = median(threadMs.plain);
  const share = (n: 'there' | 'here') => {
    const added = threadMs[n].map((v, i) => v - threadMs.plain[i]!);
    const [q1, q3] = quartiles(added);
    const d = median(added);
    return `${d.toFixed(1)} ms = ${((100 * d) / base).toFixed(1)} % (middle half ${q1.toFixed(1)} to ${q3.toFixed(1)})`;
  };
  out(
    `  main thread: plain handler ${base.toFixed(1)} ms; the rules add ${share('there')} there, ${share('here')} here; here − there ${diff(threadMs.here, threadMs.there).toFixed(1)} ms per batch`,
  );
}

/**
 * `--aws`: the rules' cost against the handler as deployed. Two Sparkplug ingest handlers, without and
 * with the 100 rules (one per node), whose telemetry store, rule state and alert stores are the DynamoDB
 * adapters over the AWS SDK with the HTTP layer answered in-process (dynamo-stub.ts): each frame, state
 * and alert write costs what the SDK spends on a request (marshalling, serialization, signing,
 * middleware, response parsing). The stub's own CPU is subtracted; the network's latency is not there,
 * so this is CPU, not duration. Registry, event log and Sparkplug state in memory in both.
 */
export interface AwsHandlerRequest {
  /** The batch (sparkplugBatch(0, k)) and the invocation's slice of it. */
  k: number;
  from: number;
  to: number;
}
export interface AwsHandlerResult {
  /** This thread's CPU ms for the invocation, the stub's own subtracted. */
  ms: number;
  requests: Array<[string, number]>;
  failed: number;
}

/** A handler thread's work (aws-handler-thread.ts): the handler, its births processed, then invocations. */
export async function awsBenchHandler(
  rules: boolean,
): Promise<(m: AwsHandlerRequest) => Promise<AwsHandlerResult>> {
  let now = T0;
  const dynamo = stubbedDynamo(['state']);
  const fn = await composeHandler(
    THIS_TREE,
    rules ? 'per-device' : undefined,
    () => now,
    () => {},
    dynamo,
  );
  await fn.processRecords(sparkplugBatch(0).births);
  let batch: { k: number; records: IngestRecord[] } | undefined;
  return async ({ k, from, to }) => {
    if (batch?.k !== k) batch = { k, records: sparkplugBatch(0, k).batch };
    now = T0 + k * (RECORDS / DEVICES) * 1000;
    const before = new Map(dynamo.requests);
    const t0 = threadCpu();
    const s0 = dynamo.stubMs();
    const result = await fn.processRecords(batch.records.slice(from, to));
    const ms = threadCpu() - t0 - (dynamo.stubMs() - s0);
    const requests = [...dynamo.requests].map(
      ([op, n]) => [op, n - (before.get(op) ?? 0)] as [string, number],
    );
    return { ms, requests, failed: result.batchItemFailures.length };
  };
}

/** Prints the rules' share of the handler as deployed; returns it (median, over all batches) in %. */
async function awsFigures(
  runs: number,
  perInvocation: number,
): Promise<{ median: number; overall: number } | undefined> {
  // Each handler in a thread of its own (its own heap and collections, as in its own Lambda
  // environment); they take each invocation in turn, the first one alternating, so a burst of load on
  // this shared machine falls on both.
  const handlers = await Promise.all(
    (['plain', 'rules'] as const).map(async (name) => {
      const worker = new Worker(new URL('./aws-handler-worker.mjs', import.meta.url), {
        workerData: { rules: name === 'rules' },
      });
      await new Promise<void>((resolve, reject) => {
        worker.once('error', reject);
        worker.once('message', () => resolve());
      });
      const call = (m: AwsHandlerRequest) =>
        new Promise<AwsHandlerResult>((resolve, reject) => {
          worker.once('error', reject);
          worker.once('message', (r: AwsHandlerResult) => {
            worker.off('error', reject);
            resolve(r);
          });
          worker.postMessage(m);
        });
      return { name, worker, call };
    }),
  );
  const warmup = 3;
  const ms = { plain: [] as number[], rules: [] as number[] };
  const counted = [new Map<string, number>(), new Map<string, number>()];
  try {
    for (let k = 1; k <= warmup + runs; k++) {
      const spent = [0, 0];
      const requests = [new Map<string, number>(), new Map<string, number>()];
      // The stream's records as Lambda hands them over: `perInvocation` at a time, in order.
      for (let from = 0, i = 0; from < RECORDS; from += perInvocation, i++) {
        for (const j of (k + i) % 2 === 0 ? [0, 1] : [1, 0]) {
          const r = await handlers[j]!.call({ k, from, to: from + perInvocation });
          if (r.failed > 0) throw new Error(`batch ${k} failed (${handlers[j]!.name})`);
          spent[j]! += r.ms;
          for (const [op, n] of r.requests) requests[j]!.set(op, (requests[j]!.get(op) ?? 0) + n);
        }
      }
      if (k <= warmup) continue;
      handlers.forEach((h, j) => {
        ms[h.name].push(spent[j]!);
        for (const [op, n] of requests[j]!) counted[j]!.set(op, (counted[j]!.get(op) ?? 0) + n);
      });
    }
  } finally {
    await Promise.all(handlers.map((h) => h.worker.terminate()));
  }
  out('');
  out(
    `Rules vs the handler as deployed (DynamoDB telemetry store, rule state and alert stores through the AWS SDK, HTTP answered in-process; 100 rules, one per node; each handler in its own thread, invocations of ${perInvocation} records in turn), handler thread per ${RECORDS.toLocaleString('en-US')} records, median of ${runs} after ${warmup}:`,
  );
  if (!ms.plain.every(Number.isFinite)) {
    out('  needs process.threadCpuUsage (Node >= 22.19)');
    return undefined;
  }
  const base = median(ms.plain);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const added = ms.rules.map((v, i) => v - ms.plain[i]!);
  const [q1, q3] = quartiles(added);
  const d = median(added);
  const perBatch = (c: Map<string, number>) =>
    [...c]
      .sort((a, b) => b[1] - a[1])
      .map(([op, n]) => `${op} ${Math.round(n / runs)}`)
      .join(', ');
  out(
    `  plain handler ${base.toFixed(0)} ms; the rules add ${d.toFixed(0)} ms = ${((100 * d) / base).toFixed(1)} % (middle half ${q1.toFixed(0)} to ${q3.toFixed(0)}); over all ${runs} batches ${((100 * (sum(ms.rules) - sum(ms.plain))) / sum(ms.plain)).toFixed(1)} %`,
  );
  out(`  requests per batch, plain: ${perBatch(counted[0]!)}`);
  out(`  requests per batch, with rules: ${perBatch(counted[1]!)}`);
  return { median: (100 * d) / base, overall: (100 * (sum(ms.rules) - sum(ms.plain))) / sum(ms.plain) };
}

/** Prints the rules' cost against the in-memory handler; returns their share of its main thread in %. */
async function rulesFigures(runs: number): Promise<number> {
  out('');
  out(
    `Rules vs the ingest handler (Sparkplug, ${RECORDS.toLocaleString('en-US')} NDATA × ${METRICS} metrics, ${DEVICES} nodes; median of ${runs} runs)`,
  );
  const handlerMs: number[] = [];
  let readings: EnrichedReading[] = [];
  for (let r = 0; r < runs; r++) {
    const x = await ingestRun(r * 10_000_000);
    handlerMs.push(x.ms);
    readings = x.readings;
  }
  const handler = median(handlerMs);
  out(
    `ingest handler: ${handler.toFixed(1)} CPU-ms per batch, ${readings.length.toLocaleString('en-US')} readings (${((handler * 1000) / readings.length).toFixed(3)} µs/reading)`,
  );
  for (const [label, layout] of [
    ['100 rules, each reading selected by 10 (10 rules per metric)', 'per-metric'],
    ['100 rules, each reading selected by 1 (one rule per node)', 'per-device'],
    ['100 rules, no reading selected (selection cost only)', 'elsewhere'],
  ] as const) {
    const x = await rulesRun(readings, layout, runs, WARMUP);
    const m = median(x.ms);
    out(
      `${label}: ${m.toFixed(1)} CPU-ms per batch = ${((100 * m) / handler).toFixed(1)} % of the handler; ${x.evaluations.toLocaleString('en-US')} rule evaluations${x.evaluations > 0 ? ` (${((m * 1e6) / x.evaluations).toFixed(0)} ns each)` : ''}, ${x.states.toLocaleString('en-US')} series states, ${x.transitions} transitions in the last batch`,
    );
    out(
      `  first ${WARMUP} batches (windows filling, not in the median): ${x.warmupMs.map((v) => v.toFixed(1)).join(' / ')} CPU-ms`,
    );
  }
  // Where the rules run: the same handler with and without them, interleaved per batch.
  const h = await handlerRulesRun('per-device', Math.max(runs, 25), 5);
  const share = (withRules: number[], without: number[]) => {
    const base = median(without);
    const added = withRules.map((v, i) => v - without[i]!);
    const [q1, q3] = quartiles(added);
    return `${median(withRules).toFixed(1)} vs ${base.toFixed(1)} CPU-ms per batch, the rules add ${median(added).toFixed(1)} = ${((100 * median(added)) / base).toFixed(1)} % (middle half of the batches: ${q1.toFixed(1)} to ${q3.toFixed(1)} ms)`;
  };
  out(
    `ingest handler with the 100 rules (one per node) vs without, interleaved per batch, median of ${h.plainMs.length} after 5: process CPU ${share(h.rulesMs, h.plainMs)}`,
  );
  if (h.plainThreadMs.every(Number.isFinite)) {
    out(`  main thread only (no GC helper threads): ${share(h.rulesThreadMs, h.plainThreadMs)}`);
  }
  out(`  ${h.transitions} transitions delivered in the counted batches`);
  const thread = h.plainThreadMs.every(Number.isFinite);
  const [withRules, without] = thread ? [h.rulesThreadMs, h.plainThreadMs] : [h.rulesMs, h.plainMs];
  return (100 * median(withRules.map((v, i) => v - without[i]!))) / median(without);
}

export const benchmark: Benchmark = {
  summary:
    'anomaly detector precision/recall per kind and µs/reading; cost of 100 rules vs the ingest handler',
  async run(args) {
    const aws = args.indexOf('--aws');
    if (aws >= 0) {
      out(`node ${process.version}`);
      // 500 records per invocation: the ingest functions' BatchSize (infra/pipeline.ts).
      await awsFigures(Number(args[aws + 1] ?? 9), Number(args[aws + 2] ?? 500));
      return;
    }
    const against = args.indexOf('--against');
    if (against >= 0) {
      const dir = args[against + 1];
      if (!dir) throw new Error('--against needs the directory of another checkout');
      out(`node ${process.version}`);
      await againstFigures(dir, Number(args[against + 2] ?? 15));
      return;
    }
    const threshold = Number(args[0] ?? 5);
    const runs = Number(args[1] ?? 7);
    out(`node ${process.version}`);
    detectorFigures(threshold);
    const inMemory = await rulesFigures(runs);
    // The target is read against the handler as deployed: the in-memory one does no AWS request.
    const deployed = await awsFigures(9, 500);
    out('');
    out(
      `target: 100 rules < 10 % of the ingest handler. As deployed: ${deployed ? `${deployed.median.toFixed(1)} % (over all batches ${deployed.overall.toFixed(1)} %)` : 'not measured (Node < 22.19)'}; against the in-memory handler (mock stores, no AWS SDK): ${inMemory.toFixed(1)} %`,
    );
  },
};
