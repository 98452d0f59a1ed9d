/**
 * Rules, rule state and alerts on the EXISTING DynamoDB tables (ADR 0016; no table is added).
 *
 * registry table (pk, sk; gsi1 on gsi1pk/gsi1sk; TTL expiresAt):
 *   rule        pk RULE#{id}     sk META          gsi1pk RULES        gsi1sk {deviceType|*}#{id}
 *   alert       pk ALERT#{id}    sk META          gsi1pk ALERTS       gsi1sk {openedAt:15}#{id}
 *                                                 (+ status, ruleId, deviceId, severity, deviceType
 *                                                  top-level for filters; expiresAt once resolved)
 *   transition  pk ALERT#{id}    sk TR#{tid}      gsi1pk ALERTOUTBOX  gsi1sk {recordedAt:15}#{id}#{tid}
 *                                                 (sparse: removed when its actions are dispatched)
 * state table (pk, sk; TTL expiresAt):
 *   rule state  pk RS#{ruleId}#{shard}  sk {series}   version, dueAt, data, expiresAt
 *               shard = 0..15 from a hash of the series: one rule over a large fleet spreads its
 *               writes over 16 partitions; the clock's listDue queries the 16.
 *   claim       pk CLAIM#{deviceId}     sk rules     owner (the engine that last evaluated the device's
 *               states), expiresAt — the engines' cross-batch cache check (ADR 0016 amendment 11)
 *
 * DynamoDB actions, per adapter (for the IAM policies):
 *   DynamoRuleStore        GetItem, PutItem (conditional), DeleteItem, Query (gsi1)
 *   DynamoRuleStateStore   BatchGetItem (consistent: states, claims, versions), BatchExecuteStatement
 *                          (putAll: PartiQLInsert / PartiQLUpdate, conditional), PutItem (put, and
 *                          putAll where the endpoint has no PartiQL), BatchWriteItem (claims), Query
 *   DynamoAlertStore       GetItem, PutItem (conditional), UpdateItem (conditional) — an alert write
 *                          and its transition record together in TransactWriteItems, which IAM
 *                          authorizes as those actions —, BatchWriteItem, Query (table, gsi1)
 * Errors: throttling / 5xx → TransientError, failed conditions → ConflictError (or NotFoundError when
 * the item is missing), as in the other adapters (dynamo-errors.ts).
 */
import {
  BatchExecuteStatementCommand,
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, TransientError } from '../core/errors.js';
import { decodeKeyToken, encodePageToken, type Page } from '../core/registry.js';
import type { Alert, AlertFilter, AlertTransition, Rule } from '../core/rules/model.js';
import {
  type AlertStore,
  alertFromOpen,
  alertLimit,
  alertSortKey,
  fromStoredState,
  type RuleState,
  type RuleStateKey,
  type RuleStateStore,
  type RuleStateWrite,
  type RuleStore,
  type StoredRuleState,
  type TransitionRecord,
  toStoredState,
} from '../core/rules/store.js';
import { keyFraction } from '../core/spread.js';
import { mapAwsError, TRANSIENT_ITEM_CODES } from './dynamo-errors.js';
import {
  BATCH_WRITE_MAX,
  backoffMs,
  batchWriteAll,
  queryAllPages,
  TRANSACT_WRITE_MAX,
  type TransactItem,
  type TransactionSupport,
  transactWrite,
} from './dynamo-query.js';

type Item = Record<string, unknown>;

export interface DynamoRulesOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * An alert write and its transition record in one TransactWriteItems. `undefined` (default): tried,
   * and single writes from the first answer that the endpoint has no such operation (dynalite); false:
   * single writes only.
   */
  transactions?: boolean;
}

const META = 'META';
const pad = (n: number) => String(Math.max(0, Math.floor(n))).padStart(15, '0');

abstract class Base {
  protected readonly t: string;
  protected readonly c: DynamoDBDocumentClient;
  protected readonly clock: () => number;
  protected readonly sleep: (ms: number) => Promise<void>;
  private readonly support: TransactionSupport;

  constructor(o: DynamoRulesOptions) {
    this.t = o.tableName;
    this.c = o.client;
    this.clock = o.clock ?? Date.now;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.support = { transactions: o.transactions };
  }

  /** One TransactWriteItems (see transactWrite); false where the endpoint has none. */
  protected transact(what: string, items: TransactItem[]): Promise<boolean> {
    return transactWrite(this.c, items, this.support, what);
  }

  /** BatchWriteItem of `requests` (25 per call, unprocessed ones retried; see batchWriteAll). */
  protected batchWrite(what: string, requests: Item[], maxAttempts: number): Promise<void> {
    return batchWriteAll(this.c, this.t, requests, {
      what,
      code: 'AWS_UNPROCESSED',
      maxAttempts,
      sleep: this.sleep,
      call: (fn) => this.call(what, fn),
    });
  }

  protected async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapAwsError(error, what);
    }
  }

  protected async getItem(
    what: string,
    pk: string,
    sk: string,
    consistent = false,
  ): Promise<Item | undefined> {
    return this.call(
      what,
      async () =>
        (
          await this.c.send(
            new GetCommand({ TableName: this.t, Key: { pk, sk }, ConsistentRead: consistent }),
          )
        ).Item,
    );
  }

  protected queryAll(what: string, input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    return queryAllPages(this.c, this.t, input, (fn) => this.call(what, fn));
  }
}

// ---- rules ---------------------------------------------------------------------------------------

export class DynamoRuleStore extends Base implements RuleStore {
  async get(id: string): Promise<Rule | undefined> {
    return (await this.getItem('rules.get', `RULE#${id}`, META))?.rule as Rule | undefined;
  }

  async put(rule: Rule, mode: 'create' | 'update'): Promise<void> {
    const item = {
      pk: `RULE#${rule.id}`,
      sk: META,
      gsi1pk: 'RULES',
      gsi1sk: `${rule.select.deviceType ?? '*'}#${rule.id}`,
      revision: rule.revision,
      rule,
    };
    try {
      await this.call('rules.put', () =>
        this.c.send(
          new PutCommand({
            TableName: this.t,
            Item: item,
            ...(mode === 'create'
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : {
                  ConditionExpression: 'attribute_exists(pk) AND revision = :prev',
                  ExpressionAttributeValues: { ':prev': rule.revision - 1 },
                }),
          }),
        ),
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if (mode === 'create')
        throw new ConflictError(`rule ${rule.id} already exists`, { field: 'id', cause: error });
      if (!(await this.get(rule.id)))
        throw new NotFoundError(`rule ${rule.id} not found`, { field: 'id', cause: error });
      throw new ConflictError(`rule ${rule.id} changed since it was read`, {
        field: 'revision',
        cause: error,
      });
    }
  }

  async delete(id: string): Promise<boolean> {
    const out = await this.call('rules.delete', () =>
      this.c.send(
        new DeleteCommand({
          TableName: this.t,
          Key: { pk: `RULE#${id}`, sk: META },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return out.Attributes !== undefined;
  }

  async list(filter: { deviceType?: string } = {}): Promise<Rule[]> {
    const query = (prefix?: string) =>
      this.queryAll('rules.list', {
        IndexName: 'gsi1',
        KeyConditionExpression:
          prefix === undefined ? 'gsi1pk = :p' : 'gsi1pk = :p AND begins_with(gsi1sk, :prefix)',
        ExpressionAttributeValues:
          prefix === undefined ? { ':p': 'RULES' } : { ':p': 'RULES', ':prefix': prefix },
      });
    const items =
      filter.deviceType === undefined
        ? await query()
        : [...(await query(`${filter.deviceType}#`)), ...(await query('*#'))];
    return items.map((i) => i.rule as Rule).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

// ---- rule state ----------------------------------------------------------------------------------

export const RULE_STATE_SHARDS = 16;
const BATCH_GET_MAX = 100;

export interface DynamoRuleStateOptions extends DynamoRulesOptions {
  /** State of a series that stopped reporting expires after this many days (TTL; default 30). */
  ttlDays?: number;
  /** BatchGetItem attempts for unprocessed keys before a TransientError (default 8). */
  maxBatchAttempts?: number;
  /**
   * A stored window could not be decoded: the state is used without it (default: one JSON warning on
   * stderr, which Lambda sends to CloudWatch Logs).
   */
  onDamagedWindow?: (key: RuleStateKey, error: unknown) => void;
  /**
   * putAll in BatchExecuteStatement (PartiQL). `undefined` (default): tried, and PutItems from the first
   * answer that the endpoint has no such operation (dynalite); false: PutItems only.
   */
  partiql?: boolean;
}

/** PutItems in flight at once where putAll cannot batch (no PartiQL). */
const PUT_CONCURRENCY = 16;

export function ruleStateKey(ruleId: string, series: string): { pk: string; sk: string } {
  return { pk: `RS#${ruleId}#${Math.floor(keyFraction(series) * RULE_STATE_SHARDS)}`, sk: series };
}

const CLAIM = 'CLAIM#';
const claimKey = (deviceId: string) => ({ pk: `${CLAIM}${deviceId}`, sk: 'rules' });

export class DynamoRuleStateStore extends Base implements RuleStateStore {
  private readonly ttlSeconds: number;
  private readonly maxAttempts: number;
  private readonly onDamagedWindow: (key: RuleStateKey, error: unknown) => void;
  private partiql: boolean | undefined;

  constructor(o: DynamoRuleStateOptions) {
    super(o);
    this.ttlSeconds = (o.ttlDays ?? 30) * 86_400;
    this.maxAttempts = o.maxBatchAttempts ?? 8;
    this.partiql = o.partiql;
    this.onDamagedWindow =
      o.onDamagedWindow ??
      ((key, error) =>
        console.warn(
          JSON.stringify({
            level: 'WARN',
            message: 'rule state window damaged: the series window starts over',
            ruleId: key.ruleId,
            series: key.series,
            error: error instanceof Error ? error.message : String(error),
          }),
        ));
  }

  async getMany(keys: RuleStateKey[]): Promise<RuleState[]> {
    const out: RuleState[] = [];
    const unique = [...new Map(keys.map((k) => [`${k.ruleId}\u0000${k.series}`, k])).values()];
    for (const item of await this.batchGet(
      'ruleState.getMany',
      unique.map((k) => ruleStateKey(k.ruleId, k.series)),
    )) {
      out.push(this.loaded(item));
    }
    return out;
  }

  /** A stored item's state (its window decoded; the version is the item's). */
  private loaded(item: Item): RuleState {
    const data = item.data as StoredRuleState;
    const s = fromStoredState(data, (error) =>
      this.onDamagedWindow({ ruleId: data.ruleId, series: data.series }, error),
    );
    s.version = item.version as number;
    return s;
  }

  /** The engines' cross-batch cache check: who last claimed each device (one key per device). */
  async getClaims(deviceIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const keys = [...new Set(deviceIds)].map(claimKey);
    for (const item of await this.batchGet('ruleState.getClaims', keys, {
      ProjectionExpression: 'pk, #o',
      ExpressionAttributeNames: { '#o': 'owner' },
    })) {
      if (typeof item.owner === 'string') out.set((item.pk as string).slice(CLAIM.length), item.owner);
    }
    return out;
  }

  async claim(deviceIds: string[], owner: string): Promise<void> {
    const expiresAt = Math.floor(this.clock() / 1000) + this.ttlSeconds;
    await this.batchWrite(
      'ruleState.claim',
      [...new Set(deviceIds)].map((d) => ({ PutRequest: { Item: { ...claimKey(d), owner, expiresAt } } })),
      this.maxAttempts,
    );
  }

  /** Versions only: the states the rules clock may have written since the engine cached them. */
  async getVersions(keys: RuleStateKey[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const unique = [...new Map(keys.map((k) => [`${k.ruleId}\u0000${k.series}`, k])).values()];
    for (const item of await this.batchGet(
      'ruleState.getVersions',
      unique.map((k) => ruleStateKey(k.ruleId, k.series)),
      { ProjectionExpression: 'pk, sk, version' },
    )) {
      const pk = item.pk as string; // RS#{ruleId}#{shard}; rule ids have no '#'
      out.set(`${pk.slice(3, pk.lastIndexOf('#'))}\u0000${item.sk as string}`, item.version as number);
    }
    return out;
  }

  /** Consistent BatchGetItem, 100 keys per call, unprocessed keys retried with backoff. */
  private async batchGet(
    what: string,
    keys: Item[],
    projection?: { ProjectionExpression: string; ExpressionAttributeNames?: Record<string, string> },
  ): Promise<Item[]> {
    const out: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
      let pending: Item[] = keys.slice(i, i + BATCH_GET_MAX);
      for (let attempt = 1; pending.length > 0; attempt++) {
        const res = await this.call(what, () =>
          this.c.send(
            new BatchGetCommand({
              RequestItems: {
                [this.t]: {
                  Keys: pending,
                  ConsistentRead: true,
                  ...projection,
                },
              },
            }),
          ),
        );
        out.push(...(res.Responses?.[this.t] ?? []));
        pending = (res.UnprocessedKeys?.[this.t]?.Keys ?? []) as Item[];
        if (pending.length > 0) {
          if (attempt >= this.maxAttempts) {
            throw new TransientError(
              'AWS_UNPROCESSED',
              `${what}: ${pending.length} keys still unprocessed after ${attempt} attempts`,
            );
          }
          await this.sleep(backoffMs(attempt));
        }
      }
    }
    return out;
  }

  async put(state: RuleState, expected: number | undefined): Promise<void> {
    await this.call('ruleState.put', () => this.c.send(new PutCommand(this.stateWrite({ state, expected }))));
  }

  /**
   * Several states at once: BatchExecuteStatement, 25 conditional PartiQL writes per request (INSERT
   * for a new state, which fails where one exists; UPDATE ... WHERE version = expected), where a PutItem
   * each cost the ingest most of the rules' requests (ADR 0016 amendment 12). Each statement lands or
   * fails on its own and costs what a PutItem costs (a TransactWriteItems would cost twice). Throttled
   * statements are retried. Where the endpoint has no PartiQL (dynalite), PutItems.
   */
  async putAll(writes: readonly RuleStateWrite[]): Promise<unknown[]> {
    const results: unknown[] = writes.map(() => undefined);
    if (writes.length === 0) return results;
    if (this.partiql !== false) {
      const chunks: RuleStateWrite[][] = [];
      for (let i = 0; i < writes.length; i += BATCH_WRITE_MAX)
        chunks.push(writes.slice(i, i + BATCH_WRITE_MAX));
      const answers = await Promise.all(chunks.map((chunk) => this.execute(chunk)));
      if (answers.every((a) => a !== undefined)) return answers.flat();
    }
    await this.putEach(writes, results);
    return results;
  }

  /**
   * One BatchExecuteStatement of `writes` (statements retried while throttled): per write, undefined or
   * its error — never thrown: a request that fails is the error of the statements it carried only, so
   * what landed before (another chunk, an earlier attempt) stays reported written, and a retried commit
   * writes only the rest. Undefined where the endpoint has no PartiQL (remembered: PutItems from then on).
   */
  private async execute(writes: readonly RuleStateWrite[]): Promise<unknown[] | undefined> {
    const out: unknown[] = writes.map(() => undefined);
    let pending = writes.map((_, i) => i);
    for (let attempt = 1; pending.length > 0; attempt++) {
      let responses: Array<{ Error?: { Code?: string; Message?: string } }>;
      try {
        responses =
          (
            await this.c.send(
              new BatchExecuteStatementCommand({
                Statements: pending.map((i) => this.stateStatement(writes[i]!)),
              }),
            )
          ).Responses ?? [];
        this.partiql = true;
      } catch (error) {
        // (`!== true`: the chunks run at once; each may get this answer.)
        if (this.partiql !== true && (error as Error).name === 'UnknownOperationException') {
          this.partiql = false;
          return undefined;
        }
        const mapped = mapAwsError(error, 'ruleState.putAll');
        for (const i of pending) out[i] = mapped;
        return out;
      }
      const retry: number[] = [];
      pending.forEach((i, k) => {
        const answer = responses[k];
        const e = answer?.Error;
        const code = e?.Code;
        if (answer === undefined) out[i] = new Error('ruleState.putAll: no answer for the statement');
        else if (code === undefined) out[i] = undefined;
        else if (code === 'ConditionalCheckFailed' || code === 'DuplicateItem') {
          out[i] = new ConflictError(`ruleState.putAll: condition failed (${code})`);
        } else if (TRANSIENT_ITEM_CODES.has(code) && attempt < this.maxAttempts) retry.push(i);
        else if (TRANSIENT_ITEM_CODES.has(code)) {
          out[i] = new TransientError('AWS_TRANSIENT', `ruleState.putAll: ${code} after ${attempt} attempts`);
        } else {
          out[i] = Object.assign(new Error(`ruleState.putAll: ${code}: ${e?.Message ?? ''}`), { name: code });
        }
      });
      pending = retry;
      if (pending.length > 0) await this.sleep(backoffMs(attempt));
    }
    return out;
  }

  private async putEach(writes: readonly RuleStateWrite[], results: unknown[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < writes.length) {
        const i = next++;
        try {
          await this.put(writes[i]!.state, writes[i]!.expected);
        } catch (error) {
          results[i] = error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUT_CONCURRENCY, writes.length) }, worker));
  }

  /** A state's write as a PartiQL statement: the same item and condition as `stateWrite`. */
  private stateStatement(w: RuleStateWrite): { Statement: string; Parameters: unknown[] } {
    const { Item: item } = this.stateWrite(w);
    const table = `"${this.t}"`;
    if (w.expected === undefined) {
      const names = Object.keys(item);
      return {
        Statement: `INSERT INTO ${table} VALUE {${names.map((n) => `'${n}': ?`).join(', ')}}`,
        Parameters: names.map((n) => item[n]),
      };
    }
    const { pk, sk, ...rest } = item;
    const names = Object.keys(rest);
    const clauses = names.map((n) => `SET "${n}" = ?`);
    if (item.dueAt === undefined) clauses.push('REMOVE "dueAt"');
    return {
      Statement: `UPDATE ${table} ${clauses.join(' ')} WHERE "pk" = ? AND "sk" = ? AND "version" = ?`,
      Parameters: [...names.map((n) => rest[n]), pk, sk, w.expected],
    };
  }

  /** The conditional put of a state: version expected+1 if `expected` is stored (undefined: absent). */
  private stateWrite({ state, expected }: RuleStateWrite): PutCommandInput & { Item: Item } {
    const version = (expected ?? 0) + 1;
    const item: Item = {
      ...ruleStateKey(state.ruleId, state.series),
      version,
      data: { ...toStoredState(state), version },
      expiresAt: Math.floor(this.clock() / 1000) + this.ttlSeconds,
    };
    if (state.dueAt !== undefined) item.dueAt = state.dueAt;
    return {
      TableName: this.t,
      Item: item,
      ConditionExpression: expected === undefined ? 'attribute_not_exists(pk)' : 'version = :v',
      ...(expected === undefined ? {} : { ExpressionAttributeValues: { ':v': expected } }),
    };
  }

  async listDue(ruleId: string, now: number): Promise<RuleState[]> {
    const out: RuleState[] = [];
    for (let shard = 0; shard < RULE_STATE_SHARDS; shard++) {
      const items = await this.queryAll('ruleState.listDue', {
        KeyConditionExpression: 'pk = :pk',
        FilterExpression: 'dueAt <= :now',
        ExpressionAttributeValues: { ':pk': `RS#${ruleId}#${shard}`, ':now': now },
        ConsistentRead: true,
      });
      for (const item of items) out.push(this.loaded(item));
    }
    return out;
  }
}

// ---- alerts --------------------------------------------------------------------------------------

export interface DynamoAlertOptions extends DynamoRulesOptions {
  /** Resolved alerts and their transitions expire this many days after resolution (TTL; default 90). */
  retentionDays?: number;
  /** Attempts for BatchWriteItem unprocessed items before a TransientError (default 8). */
  maxBatchAttempts?: number;
}

const ALERT_FILTERS: Array<[keyof AlertFilter, string]> = [
  ['status', 'status'],
  ['ruleId', 'ruleId'],
  ['deviceId', 'deviceId'],
  ['severity', 'severity'],
  ['deviceType', 'deviceType'],
];

/** Transition items this store knows the stored form of, for marking them with one BatchWriteItem. */
const MAX_KNOWN_TRANSITIONS = 10_000;

export class DynamoAlertStore extends Base implements AlertStore {
  private readonly retentionS: number;
  private readonly maxAttempts: number;
  /**
   * The undispatched transition items this store wrote or read (by transition id), as stored: marked
   * dispatched by a put of the same item without its outbox keys, 25 per request, instead of an update
   * each. Bounded (oldest dropped: those are marked by an update).
   */
  private readonly known = new Map<string, Item>();

  constructor(o: DynamoAlertOptions) {
    super(o);
    this.retentionS = (o.retentionDays ?? 90) * 86_400;
    this.maxAttempts = o.maxBatchAttempts ?? 8;
  }

  private remember(item: Item): void {
    const { gsi1pk: _pk, gsi1sk: _sk, ...rest } = item;
    const id = (item.transition as AlertTransition).id;
    this.known.delete(id); // re-inserted last: the oldest is dropped first
    this.known.set(id, rest);
    if (this.known.size > MAX_KNOWN_TRANSITIONS) this.known.delete(this.known.keys().next().value!);
  }

  private alertItem(a: Alert): Item {
    const item: Item = {
      pk: `ALERT#${a.id}`,
      sk: META,
      gsi1pk: 'ALERTS',
      gsi1sk: alertSortKey(a),
      status: a.status,
      ruleId: a.ruleId,
      deviceId: a.deviceId,
      severity: a.severity,
      alert: a,
    };
    if (a.deviceType !== undefined) item.deviceType = a.deviceType;
    return item;
  }

  async record(t: AlertTransition, now: number): Promise<{ dispatched: boolean }> {
    return (await this.recordAll([t], now))[0]!;
  }

  /**
   * Each transition's alert write and record, an alert's in order. First as transactions (two items
   * per transition; an alert at most once per transaction, so its open and resolve of one batch go in
   * order): a transaction lands only when every alert write changes its alert and every record is new,
   * which is every first delivery. A cancelled one (a redelivery, a user's resolve) wrote nothing, and its
   * transitions are recorded one by one as before: conditionally, to learn which were delivered.
   */
  async recordAll(
    transitions: readonly AlertTransition[],
    now: number,
  ): Promise<Array<{ dispatched: boolean }>> {
    const out: Array<{ dispatched: boolean } | undefined> = transitions.map(() => undefined);
    const first = new Map<string, number>(); // transition id → its first index (a repeat gets its answer)
    // Layers: an alert's k-th transition goes into layer k, so each layer holds an alert at most once and
    // an alert's writes land in order; a layer is cut into transactions of 50 transitions.
    const layers: number[][] = [];
    const writes = new Map<string, number>(); // alert id → its transitions so far
    transitions.forEach((t, i) => {
      if (first.has(t.id)) return;
      first.set(t.id, i);
      const k = writes.get(t.alertId) ?? 0;
      writes.set(t.alertId, k + 1);
      if (k === layers.length) layers.push([]);
      layers[k]!.push(i);
    });
    const chunks = layers.flatMap((layer) => {
      const cut: number[][] = [];
      for (let i = 0; i < layer.length; i += TRANSACT_WRITE_MAX / 2)
        cut.push(layer.slice(i, i + TRANSACT_WRITE_MAX / 2));
      return cut;
    });
    for (const indexes of chunks) {
      const items = indexes.map((i) => this.transitionItem(transitions[i]!, now));
      let landed = false;
      try {
        landed = await this.transact(
          'alerts.recordAll',
          indexes.flatMap((i, k) => [
            this.alertWrite(transitions[i]!, now),
            { Put: { TableName: this.t, Item: items[k]!, ConditionExpression: 'attribute_not_exists(pk)' } },
          ]),
        );
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
      if (landed) {
        for (const i of indexes) out[i] = { dispatched: false };
        for (const item of items) this.remember(item);
      } else {
        const answers = await this.recordEach(
          indexes.map((i) => transitions[i]!),
          now,
        );
        indexes.forEach((i, k) => {
          out[i] = answers[k]!;
        });
      }
    }
    return transitions.map((t) => out[first.get(t.id)!]!);
  }

  /**
   * Transitions recorded one by one, in order: the alert write first; a record whose alert write
   * changed the alert is new (it is written only after it), so it goes into a BatchWriteItem, the
   * others are recorded conditionally.
   */
  private async recordEach(
    transitions: readonly AlertTransition[],
    now: number,
  ): Promise<Array<{ dispatched: boolean }>> {
    const out: Array<{ dispatched: boolean }> = [];
    const batch: Item[] = [];
    for (const t of transitions) {
      const item = this.transitionItem(t, now);
      if (await this.applyToAlert(t, now)) {
        batch.push(item);
        out.push({ dispatched: false });
      } else out.push(await this.recordOnce(item));
    }
    await this.batchWrite(
      'alerts.recordTransition',
      batch.map((Item) => ({ PutRequest: { Item } })),
      this.maxAttempts,
    );
    for (const item of batch) this.remember(item);
    return out;
  }

  /** The alert's own write for a transition, conditional: it changes the alert or fails. */
  private alertWrite(t: AlertTransition, now: number): TransactItem {
    // An existing alert / an alert resolved already is left as is.
    if (t.kind === 'open') {
      return {
        Put: {
          TableName: this.t,
          Item: this.alertItem(alertFromOpen(t, now)),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      };
    }
    return {
      Update: {
        TableName: this.t,
        Key: { pk: `ALERT#${t.alertId}`, sk: META },
        UpdateExpression:
          'SET #st = :r, alert.#st = :r, alert.resolvedAt = :at, alert.resolvedBy = :by, alert.resolveTransition = :tid, alert.updatedAt = :now, expiresAt = :exp',
        ConditionExpression: 'attribute_exists(pk) AND #st <> :r',
        ExpressionAttributeNames: { '#st': 'status' },
        ExpressionAttributeValues: {
          ':r': 'resolved',
          ':at': t.at,
          ':by': t.resolvedBy ?? 'rule',
          ':tid': t.id,
          ':now': now,
          ':exp': Math.floor(t.at / 1000) + this.retentionS,
        },
      },
    };
  }

  /** The alert written for one transition: false when it changed nothing (it exists / is resolved already). */
  private async applyToAlert(t: AlertTransition, now: number): Promise<boolean> {
    const write = this.alertWrite(t, now);
    try {
      const { Put: put, Update: update } = write;
      if (put) await this.call('alerts.open', () => this.c.send(new PutCommand(put)));
      else await this.call('alerts.resolve', () => this.c.send(new UpdateCommand(update!)));
    } catch (error) {
      // Opened already, resolved already (by a user), or gone (TTL): the transition is still kept.
      if (!(error instanceof ConflictError)) throw error;
      return false;
    }
    return true;
  }

  /** The transition: history + outbox entry (sparse gsi1 until dispatched). */
  private transitionItem(t: AlertTransition, now: number): Item {
    return {
      pk: `ALERT#${t.alertId}`,
      sk: `TR#${t.id}`,
      gsi1pk: 'ALERTOUTBOX',
      gsi1sk: `${pad(now)}#${t.alertId}#${t.id}`,
      recordedAt: now,
      transition: t,
      expiresAt: Math.floor(t.at / 1000) + this.retentionS,
    };
  }

  /** A record that may exist already: conditional, and an existing one tells whether it was dispatched. */
  private async recordOnce(item: Item): Promise<{ dispatched: boolean }> {
    try {
      await this.call('alerts.recordTransition', () =>
        this.c.send(
          new PutCommand({ TableName: this.t, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
        ),
      );
      this.remember(item);
      return { dispatched: false };
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      const existing = await this.getItem(
        'alerts.recordTransition',
        item.pk as string,
        item.sk as string,
        true,
      );
      const dispatched = existing?.dispatchedAt !== undefined;
      if (existing && !dispatched) this.remember(existing);
      return { dispatched };
    }
  }

  async markDispatched(
    transitions: ReadonlyArray<Pick<AlertTransition, 'alertId' | 'id'>>,
    at: number,
  ): Promise<void> {
    // Known items: the same item again, dispatched and out of the outbox (a blind put: only the
    // dispatch marks this item after it is recorded, and a second mark only moves dispatchedAt).
    const puts: Item[] = [];
    const others: Array<Pick<AlertTransition, 'alertId' | 'id'>> = [];
    for (const t of new Map(transitions.map((x) => [x.id, x])).values()) {
      const item = this.known.get(t.id);
      if (item && item.pk === `ALERT#${t.alertId}`)
        puts.push({ PutRequest: { Item: { ...item, dispatchedAt: at } } });
      else others.push(t);
    }
    await this.batchWrite('alerts.markDispatched', puts, this.maxAttempts);
    for (const t of transitions) this.known.delete(t.id);
    let missing: unknown;
    for (const t of others) {
      try {
        await this.markOne(t.alertId, t.id, at);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        missing ??= error;
      }
    }
    if (missing !== undefined) throw missing;
  }

  private async markOne(alertId: string, transitionId: string, at: number): Promise<void> {
    try {
      await this.call('alerts.markDispatched', () =>
        this.c.send(
          new UpdateCommand({
            TableName: this.t,
            Key: { pk: `ALERT#${alertId}`, sk: `TR#${transitionId}` },
            UpdateExpression: 'SET dispatchedAt = if_not_exists(dispatchedAt, :at) REMOVE gsi1pk, gsi1sk',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':at': at },
          }),
        ),
      );
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new NotFoundError(`transition ${transitionId} not found`, {
          field: 'transitionId',
          cause: error,
        });
      }
      throw error;
    }
  }

  async listUndispatched(before: number, limit = 100): Promise<TransitionRecord[]> {
    const out = await this.call('alerts.listUndispatched', () =>
      this.c.send(
        new QueryCommand({
          TableName: this.t,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :p AND gsi1sk < :before',
          ExpressionAttributeValues: { ':p': 'ALERTOUTBOX', ':before': pad(before) },
          Limit: limit,
        }),
      ),
    );
    for (const i of out.Items ?? []) this.remember(i);
    return (out.Items ?? []).map((i) => ({
      transition: i.transition as AlertTransition,
      recordedAt: i.recordedAt as number,
    }));
  }

  async history(alertId: string): Promise<TransitionRecord[]> {
    const items = await this.queryAll('alerts.history', {
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :tr)',
      ExpressionAttributeValues: { ':pk': `ALERT#${alertId}`, ':tr': 'TR#' },
    });
    return items
      .map((i) => {
        const r: TransitionRecord = {
          transition: i.transition as AlertTransition,
          recordedAt: i.recordedAt as number,
        };
        if (typeof i.dispatchedAt === 'number') r.dispatchedAt = i.dispatchedAt;
        return r;
      })
      .sort((a, b) => a.transition.at - b.transition.at || a.recordedAt - b.recordedAt);
  }

  async get(id: string): Promise<Alert | undefined> {
    return (await this.getItem('alerts.get', `ALERT#${id}`, META))?.alert as Alert | undefined;
  }

  async list(filter: AlertFilter): Promise<Page<Alert>> {
    const limit = alertLimit(filter);
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':p': 'ALERTS' };
    const conditions: string[] = [];
    for (const [key, attr] of ALERT_FILTERS) {
      const v = filter[key];
      if (v === undefined) continue;
      names[`#${attr}`] = attr;
      values[`:${attr}`] = v;
      conditions.push(`#${attr} = :${attr}`);
    }
    values[':from'] = `${pad(filter.since ?? 0)}#`;
    values[':to'] = `${pad(filter.until ?? 999_999_999_999_999)}#~`;
    let cursor: Item | undefined =
      filter.nextToken === undefined
        ? undefined
        : decodeKeyToken(filter.nextToken, ['pk', 'sk', 'gsi1pk', 'gsi1sk']);
    const only = filter.deviceIds ? new Set(filter.deviceIds) : undefined;
    const items: Alert[] = [];
    let lastKey: Item | undefined;
    let more = false;
    do {
      const page = await this.call('alerts.list', () =>
        this.c.send(
          new QueryCommand({
            TableName: this.t,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :p AND gsi1sk BETWEEN :from AND :to',
            ...(conditions.length > 0
              ? { FilterExpression: conditions.join(' AND '), ExpressionAttributeNames: names }
              : {}),
            ExpressionAttributeValues: values,
            ScanIndexForward: false,
            Limit: 100,
            ExclusiveStartKey: cursor,
          }),
        ),
      );
      const found = page.Items ?? [];
      for (let i = 0; i < found.length; i++) {
        const item = found[i]!;
        // deviceIds (up to 1000, beyond DynamoDB's 100-value IN) is matched here, on the page read.
        if (only && !only.has(item.deviceId as string)) continue;
        items.push(item.alert as Alert);
        if (items.length === limit) {
          lastKey = { pk: item.pk, sk: item.sk, gsi1pk: item.gsi1pk, gsi1sk: item.gsi1sk };
          more = i < found.length - 1 || page.LastEvaluatedKey !== undefined;
          break;
        }
      }
      cursor = page.LastEvaluatedKey;
    } while (items.length < limit && cursor);
    const out: Page<Alert> = { items };
    if (more && lastKey) out.nextToken = encodePageToken(lastKey);
    return out;
  }

  private async change(
    what: string,
    id: string,
    update: string,
    condition: string,
    values: Record<string, unknown>,
  ): Promise<Alert> {
    try {
      const out = await this.call(what, () =>
        this.c.send(
          new UpdateCommand({
            TableName: this.t,
            Key: { pk: `ALERT#${id}`, sk: META },
            UpdateExpression: update,
            ConditionExpression: `attribute_exists(pk) AND ${condition}`,
            ExpressionAttributeNames: { '#st': 'status' },
            ExpressionAttributeValues: values,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return out.Attributes?.alert as Alert;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      const current = await this.get(id);
      if (!current) throw new NotFoundError(`alert ${id} not found`, { field: 'id', cause: error });
      throw new ConflictError(`alert ${id} is ${current.status}`, { field: 'status', cause: error });
    }
  }

  acknowledge(id: string, by: string, at: number, note?: string): Promise<Alert> {
    return this.change(
      'alerts.acknowledge',
      id,
      `SET #st = :ack, alert.#st = :ack, alert.acknowledgedAt = :at, alert.acknowledgedBy = :by, alert.updatedAt = :at${
        note === undefined ? '' : ', alert.note = :note'
      }`,
      '#st = :open',
      {
        ':ack': 'acknowledged',
        ':open': 'open',
        ':at': at,
        ':by': by,
        ...(note === undefined ? {} : { ':note': note }),
      },
    );
  }

  resolve(id: string, by: string, at: number): Promise<Alert> {
    return this.change(
      'alerts.resolve',
      id,
      'SET #st = :r, alert.#st = :r, alert.resolvedAt = :at, alert.resolvedBy = :by, alert.updatedAt = :at, expiresAt = :exp',
      '#st <> :r',
      { ':r': 'resolved', ':at': at, ':by': by, ':exp': Math.floor(at / 1000) + this.retentionS },
    );
  }
}
