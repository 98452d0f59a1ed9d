/**
 * Batch operations over the ports: create (resolve the filter into targets), read, list, cancel, retry,
 * and `tick` — one pass of the worker over one operation: collect the answers of the commands in flight,
 * advance each target's state machine (target.ts), start pending targets as the concurrency and rate
 * allow (schedule.ts), and store the counts. Commands go through the single-device command path
 * (CommandService), so a batch command is recorded, correlated and completed exactly like one sent
 * through POST /devices/{id}/commands.
 *
 * Exactly one worker drives an operation at a time (the local stack's loop; in AWS one invocation per
 * tick); the API only flips the operation's status (cancel) or resets finished targets (retry, allowed
 * once the operation is no longer running), and a version check makes the worker's write lose to them.
 */
import type { CommandService } from '../commands.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { Clock } from '../processor.js';
import {
  type CreateOperationInput,
  countTargets,
  type DEFAULT_SETTINGS,
  type Operation,
  type OperationOwner,
  parseCreateOperation,
  type Target,
} from './model.js';
import type { PackageStore } from './packages.js';
import { admit, fullBucket } from './schedule.js';
import type { SelectDevices } from './select.js';
import type { OperationStore } from './store.js';
import { type Step, step, type TargetEvent } from './target.js';

export interface OperationDeps {
  store: OperationStore;
  commands: Pick<CommandService, 'create' | 'get'>;
  selectDevices: SelectDevices;
  packages?: PackageStore;
  clock: Clock;
  newId: () => string;
  defaults?: typeof DEFAULT_SETTINGS;
}

export interface TickResult {
  operation: Operation;
  /** Commands sent in this pass. */
  sent: number;
  /** Targets whose state changed in this pass. */
  changed: number;
}

export class OperationService {
  constructor(private readonly d: OperationDeps) {}

  /** `owner`: an application's operation runs on its device types only and is its own (default: admin). */
  async create(body: unknown, owner: OperationOwner = { kind: 'admin' }): Promise<Operation> {
    const input: CreateOperationInput = parseCreateOperation(body, this.d.defaults);
    if (input.action.kind === 'firmware-update') {
      if (!this.d.packages)
        throw new ValidationError('firmware packages are not configured', { field: 'operation' });
      if (!(await this.d.packages.get(input.action.packageId)))
        throw new ValidationError(`no firmware package ${input.action.packageId}`, {
          field: 'operation.packageId',
        });
    }
    const ids = await this.d.selectDevices(
      input.filter,
      owner.kind === 'app' ? owner.deviceTypes : undefined,
    );
    const now = this.d.clock();
    const id = this.d.newId();
    const targets: Target[] = ids.map((deviceId) => ({
      operationId: id,
      deviceId,
      status: 'pending',
      attempts: 0,
      updatedAt: now,
    }));
    const op: Operation = {
      id,
      status: 'running',
      filter: input.filter,
      action: input.action,
      settings: input.settings,
      total: targets.length,
      counts: countTargets(targets),
      retries: 0,
      bucket: fullBucket(input.settings, now),
      createdAt: now,
      updatedAt: now,
      ...(owner.kind === 'app' ? { appId: owner.appId } : {}),
      version: 1,
    };
    await this.d.store.createOperation(op, targets);
    return op;
  }

  get(id: string): Promise<Operation | undefined> {
    return this.d.store.getOperation(id);
  }

  /** Newest first; `appId`: only that application's. */
  list(limit = 50, appId?: string): Promise<Operation[]> {
    return this.d.store.listOperations(limit, appId);
  }

  async targets(id: string, status?: string): Promise<Target[]> {
    const all = await this.d.store.listTargets(id);
    return status ? all.filter((t) => t.status === status) : all;
  }

  /** Stops starting targets: pending ones become cancelled (by the worker's next pass); those in flight finish. */
  async cancel(id: string): Promise<Operation> {
    // The worker rewrites the operation's counts on every pass: a pass landing between the read and the
    // flip bumps the version, so the flip re-reads and tries again rather than answering 409.
    for (let attempt = 1; ; attempt++) {
      const op = await this.mustGet(id);
      if (op.status !== 'running')
        throw new ConflictError(
          `operation ${id} is ${op.status}; only a running operation can be cancelled`,
          {
            field: 'status',
          },
        );
      try {
        return await this.d.store.putOperation(
          { ...op, status: 'cancelling', updatedAt: this.d.clock() },
          op.version,
        );
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= FLIP_ATTEMPTS) throw error;
      }
    }
  }

  /** Re-runs only the failed and timed-out targets of a finished operation. */
  async retry(id: string): Promise<Operation> {
    const op = await this.mustGet(id);
    if (op.status !== 'completed' && op.status !== 'cancelled')
      throw new ConflictError(`operation ${id} is ${op.status}; retry it once it has finished`, {
        field: 'status',
      });
    const now = this.d.clock();
    const targets = await this.d.store.listTargets(id);
    // Pending targets of a finished operation are left by a retry interrupted between its two writes.
    const again = targets
      .filter((t) => t.status === 'failed' || t.status === 'timed-out' || t.status === 'pending')
      .map((t): Target => ({ ...t, status: 'pending', updatedAt: now }));
    if (again.length === 0)
      throw new ConflictError(`operation ${id} has no failed or timed-out target`, { field: 'status' });
    const byId = new Map(targets.map((t) => [t.deviceId, t]));
    for (const t of again) byId.set(t.deviceId, t);
    // Targets first, then the version-checked status flip: a worker pass in between still sees the
    // operation finished and leaves it alone; flipping first let a pass complete it again before the
    // targets were reset (they then stayed pending on a completed operation). Two concurrent retries
    // reset the same targets twice (harmless); only one flip wins.
    await this.d.store.putTargets(again);
    const { finishedAt: _f, ...unfinished } = op;
    const next = await this.d.store.putOperation(
      {
        ...unfinished,
        status: 'running',
        retries: op.retries + 1,
        counts: countTargets(byId.values()),
        bucket: fullBucket(op.settings, now),
        updatedAt: now,
      },
      op.version,
    );
    return next;
  }

  /** One worker pass over every active operation. */
  async tickAll(): Promise<TickResult[]> {
    const out: TickResult[] = [];
    for (const op of await this.d.store.listActive()) {
      const r = await this.tick(op.id);
      if (r) out.push(r);
    }
    return out;
  }

  /** One worker pass over one operation (see the module comment). */
  async tick(id: string): Promise<TickResult | undefined> {
    const op = await this.d.store.getOperation(id);
    if (!op || (op.status !== 'running' && op.status !== 'cancelling'))
      return op && { operation: op, sent: 0, changed: 0 };
    const targets = await this.d.store.listTargets(id);
    const changed = new Map<string, Target>();
    let sent = 0;
    const now = this.d.clock();
    const current = (t: Target) => changed.get(t.deviceId) ?? t;

    const apply = async (t: Target, e: TargetEvent): Promise<void> => {
      const s: Step = step(op.action, op.settings, t, e, now);
      let next = s.target;
      if (s.send) {
        try {
          const c = await this.d.commands.create(t.deviceId, s.send);
          sent++;
          if (c.status === 'pending') next = { ...next, commandId: c.commandId };
          else {
            // Sparkplug commands complete when published: feed the answer at once.
            next = step(op.action, op.settings, { ...next, commandId: c.commandId }, answerOf(c), now).target;
          }
        } catch (error) {
          if (error instanceof ValidationError) {
            const { commandId: _c, nextAt: _n, ...rest } = next;
            next = {
              ...rest,
              status: 'failed',
              reason: { code: 'REJECTED', message: error.message },
              updatedAt: now,
            };
          } else if (e.kind === 'start') {
            return; // Not sent (a transient failure): the target stays pending for the next pass.
          } else {
            // Not sent: poll again later (a firmware target re-reads its state and resumes from it).
            next = { ...next, nextAt: now + op.settings.pollMs };
            delete next.commandId;
          }
        }
      }
      if (next !== t) changed.set(t.deviceId, next);
    };

    // 1. Targets in flight: answers, due polls, deadlines (several devices at a time: each is a few
    // store round trips, and a target's steps never touch another target).
    await eachLimit(
      targets.filter((t) => t.status === 'sent'),
      PARALLEL,
      async (t) => {
        if (t.commandId === undefined) return apply(t, { kind: 'due' });
        const c = await this.d.commands.get(t.deviceId, t.commandId);
        if (!c) return apply(t, { kind: 'answer', status: 'timed-out' });
        if (c.status === 'pending') return apply(t, { kind: 'due' });
        return apply(t, answerOf(c));
      },
    );

    // 2. Cancelled: pending targets never start; firmware targets in flight that have not been told to
    // Update are cancelled on the device (Execute /5/0/10, target.ts).
    if (op.status === 'cancelling') {
      for (const t of targets)
        if (t.status === 'pending') changed.set(t.deviceId, { ...t, status: 'cancelled', updatedAt: now });
      if (op.action.kind === 'firmware-update')
        await eachLimit(
          targets.map(current).filter((t) => t.status === 'sent' && !t.cancelRequested),
          PARALLEL,
          (t) => apply(t, { kind: 'cancel' }),
        );
    }

    // 3. Admission.
    let bucket = op.bucket;
    if (op.status === 'running') {
      const all = targets.map(current);
      const inFlight = all.filter((t) => t.status === 'sent').length;
      const pending = all.filter((t) => t.status === 'pending');
      const a = admit(op.settings, op.bucket, inFlight, pending.length, now);
      bucket = a.bucket;
      let uri: string | undefined;
      if (a.count > 0 && op.action.kind === 'firmware-update') {
        const pkg = await this.d.packages?.get(op.action.packageId);
        if (!pkg) {
          for (const t of pending)
            changed.set(t.deviceId, {
              ...t,
              status: 'failed',
              reason: { code: 'NO_PACKAGE', message: `firmware package ${op.action.packageId} is gone` },
              updatedAt: now,
            });
        } else {
          uri = await this.d.packages!.downloadUri(pkg, now + op.settings.targetTimeoutMs);
        }
      }
      if (op.action.kind === 'command' || uri)
        await eachLimit(pending.slice(0, a.count), PARALLEL, (t) =>
          apply(t, { kind: 'start', ...(uri ? { packageUri: uri } : {}) }),
        );
    }

    if (changed.size > 0) await this.d.store.putTargets([...changed.values()]);
    const counts = countTargets(targets.map(current));
    const next: Operation = { ...op, counts, bucket, updatedAt: changed.size > 0 ? now : op.updatedAt };
    if (op.status === 'running' && counts.pending + counts.sent === 0) next.status = 'completed';
    if (op.status === 'cancelling' && counts.pending + counts.sent === 0) next.status = 'cancelled';
    if (next.status !== op.status) next.finishedAt = now;
    try {
      return { operation: await this.d.store.putOperation(next, op.version), sent, changed: changed.size };
    } catch (error) {
      // Cancelled or retried meanwhile: the next pass recounts from the targets.
      if (error instanceof ConflictError) return { operation: next, sent, changed: changed.size };
      throw error;
    }
  }

  private async mustGet(id: string): Promise<Operation> {
    const op = await this.d.store.getOperation(id);
    if (!op) throw new NotFoundError(`operation ${id} not found`, { field: 'id' });
    return op;
  }
}

/** Reads and version-checked writes a status flip tries before it gives up on a busy worker. */
const FLIP_ATTEMPTS = 5;

/** Device steps run at once within one pass (each is a handful of store calls and one publish). */
const PARALLEL = 16;

async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

function answerOf(c: { status: string; response?: Record<string, unknown> }): TargetEvent {
  const status =
    c.status === 'succeeded' || c.status === 'failed' || c.status === 'timed-out' ? c.status : 'failed';
  return { kind: 'answer', status, ...(c.response ? { response: c.response } : {}) };
}

export { parseCreateOperation };
