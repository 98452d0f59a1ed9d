/**
 * The document client of the embedded dynalite: the DynamoDB JSON 1.0 wire calls made with node:http
 * for the eight item operations every adapter uses (GetItem, PutItem, UpdateItem, DeleteItem, Query,
 * Scan, BatchGetItem, BatchWriteItem), marshalled with the same `@aws-sdk/util-dynamodb` options as the
 * SDK's document client; anything else (TransactWriteItems, legacy parameters) goes to that SDK client.
 *
 * Why: through the SDK a conditional PutItem cost the stack 228-320 µs of CPU and a GetItem 216-227 µs;
 * these calls cost 91-103 and 58-66 µs (`npm run bench -- dynamo-client`). A 10,000-device connect
 * storm makes ~55,000 such calls, and its profile put 46 % of the stack's busy time in the SDK
 * clients and Node's HTTP client. Like the Kinesis wire calls (kinesis-records.ts), none of this ships to AWS:
 * the Lambda functions build their clients in functions/shared.
 *
 * Parity with the SDK client, which the adapters rely on: outputs unmarshalled the same way (and
 * `$metadata.httpStatusCode`); errors named by the service's `__type` with `$fault` and
 * `$metadata.httpStatusCode` (socket resets renamed TimeoutError, as the SDK's HTTP handler does), so
 * `mapAwsError` classifies them as before; throttling, 5xx and network errors retried as the SDK's
 * strategy retries them (5 attempts, jittered exponential backoff); calls counted by operation; hooks
 * (fault injection) around every call, SDK-routed ones included.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall, type marshallOptions, unmarshall } from '@aws-sdk/util-dynamodb';
import {
  type CallCounts,
  createDynamoClients,
  DOCUMENT_MARSHALL_OPTIONS,
  LOCAL_REGION,
  type LocalClientOptions,
} from './aws-clients.js';
import { jsonWire } from './aws-json-wire.js';

/** Runs one DynamoDB call (`call`), e.g. to fail it before or after it reaches the emulator. */
export type DynamoCallHook = <T>(call: () => Promise<T>) => Promise<T>;

export interface WireDocumentOptions {
  /** http://host:port of the embedded dynalite. */
  endpoint: string;
  /** The SDK document client (same endpoint) for the operations this client does not speak. */
  sdk: DynamoDBDocumentClient;
  /** The marshalling options of the SDK document client (default: the adapters'). */
  marshallOptions?: marshallOptions;
  region: string;
  calls?: CallCounts;
  /** Attempts per call, as the SDK's maxAttempts (default 5). */
  maxAttempts?: number;
  /** Socket idle timeout per request (default 10 s). */
  requestTimeoutMs?: number;
}

export interface WireDocumentClient {
  /** Typed as the SDK's document client so every adapter takes it unchanged. */
  doc: DynamoDBDocumentClient;
  /** Adds a hook around every call (this client's and the SDK's). */
  hook(h: DynamoCallHook): void;
  destroy(): void;
}

type Item = Record<string, unknown>;
type Wire = Record<string, unknown>;

/** How one document operation maps onto its wire operation. */
interface Operation {
  target: string;
  input(i: Item, m: (v: unknown) => Wire): Wire;
  output(o: Wire, u: (v: Wire) => Item): Wire;
}

const withValues = (i: Item, m: (v: unknown) => Wire) =>
  i.ExpressionAttributeValues === undefined
    ? {}
    : { ExpressionAttributeValues: m(i.ExpressionAttributeValues) };
const attributes = (o: Wire, u: (v: Wire) => Item) =>
  o.Attributes === undefined ? o : { ...o, Attributes: u(o.Attributes as Wire) };

const OPERATIONS = new Map<unknown, Operation>([
  [
    PutCommand,
    {
      target: 'PutItem',
      input: (i, m) => ({ ...i, Item: m(i.Item), ...withValues(i, m) }),
      output: attributes,
    },
  ],
  [
    GetCommand,
    {
      target: 'GetItem',
      input: (i, m) => ({ ...i, Key: m(i.Key) }),
      output: (o, u) => (o.Item === undefined ? o : { ...o, Item: u(o.Item as Wire) }),
    },
  ],
  [
    UpdateCommand,
    {
      target: 'UpdateItem',
      input: (i, m) => ({ ...i, Key: m(i.Key), ...withValues(i, m) }),
      output: attributes,
    },
  ],
  [
    DeleteCommand,
    {
      target: 'DeleteItem',
      input: (i, m) => ({ ...i, Key: m(i.Key), ...withValues(i, m) }),
      output: attributes,
    },
  ],
  ...(['Query', 'Scan'] as const).map(
    (target) =>
      [
        target === 'Query' ? QueryCommand : ScanCommand,
        {
          target,
          input: (i: Item, m: (v: unknown) => Wire) => ({
            ...i,
            ...withValues(i, m),
            ...(i.ExclusiveStartKey === undefined ? {} : { ExclusiveStartKey: m(i.ExclusiveStartKey) }),
          }),
          output: (o: Wire, u: (v: Wire) => Item) => ({
            ...o,
            ...(o.Items === undefined ? {} : { Items: (o.Items as Wire[]).map(u) }),
            ...(o.LastEvaluatedKey === undefined ? {} : { LastEvaluatedKey: u(o.LastEvaluatedKey as Wire) }),
          }),
        },
      ] as const,
  ),
  [
    BatchGetCommand,
    {
      target: 'BatchGetItem',
      input: (i, m) => ({
        ...i,
        RequestItems: perTable(i.RequestItems, (r) => ({ ...r, Keys: r.Keys.map(m) })),
      }),
      output: (o, u) => ({
        ...o,
        ...(o.Responses === undefined ? {} : { Responses: perTable(o.Responses, (items) => items.map(u)) }),
        ...(o.UnprocessedKeys === undefined
          ? {}
          : { UnprocessedKeys: perTable(o.UnprocessedKeys, (r) => ({ ...r, Keys: r.Keys.map(u) })) }),
      }),
    },
  ],
  [
    BatchWriteCommand,
    {
      target: 'BatchWriteItem',
      input: (i, m) => ({
        ...i,
        RequestItems: perTable(i.RequestItems, (rs: unknown[]) => rs.map((r) => writeRequest(r, m))),
      }),
      output: (o, u) => ({
        ...o,
        ...(o.UnprocessedItems === undefined
          ? {}
          : {
              UnprocessedItems: perTable(o.UnprocessedItems, (rs: unknown[]) =>
                rs.map((r) => writeRequest(r, u)),
              ),
            }),
      }),
    },
  ],
]);

/** Pre-expression parameters the adapters never use: such calls go to the SDK, which knows them. */
const LEGACY = [
  'Expected',
  'AttributeUpdates',
  'KeyConditions',
  'QueryFilter',
  'ScanFilter',
  'AttributesToGet',
];

// biome-ignore lint/suspicious/noExplicitAny: request maps are per table, of several shapes
function perTable(map: unknown, f: (v: any) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [table, v] of Object.entries(map as Record<string, unknown>)) out[table] = f(v);
  return out;
}

// biome-ignore lint/suspicious/noExplicitAny: a PutRequest or DeleteRequest, marshalled either way
function writeRequest(r: any, f: (v: any) => unknown) {
  if (r.PutRequest) return { ...r, PutRequest: { ...r.PutRequest, Item: f(r.PutRequest.Item) } };
  if (r.DeleteRequest) return { ...r, DeleteRequest: { ...r.DeleteRequest, Key: f(r.DeleteRequest.Key) } };
  return r;
}

/** Binary attributes (B, BS) travel as base64 in the JSON protocol. */
function toJson(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return ArrayBuffer.isView(raw)
    ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
    : value;
}
function fromJson(key: string, value: unknown): unknown {
  if (key === 'B' && typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  if (key === 'BS' && Array.isArray(value) && value.every((v) => typeof v === 'string'))
    return value.map((v) => new Uint8Array(Buffer.from(v, 'base64')));
  return value;
}

/**
 * What the SDK client's retry strategy retries (@smithy/core/retry: `isThrottlingError`,
 * `isTransientError`, `isServerError` as the installed version applies them), and with which base
 * delay: the DynamoDB client's 25 ms for transient and server errors, 1 s for throttling.
 */
const THROTTLING_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'BandwidthLimitExceeded',
]);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
/** Socket errors the SDK's HTTP handler renames TimeoutError (so mapAwsError sees them as transient). */
const SOCKET_TIMEOUT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

type CallError = Error & { code?: string; $metadata?: { httpStatusCode?: number } };

/** The base delay of a retry of `e` (ms), or undefined when the SDK would not retry it. */
function retryDelayBase(e: CallError): number | undefined {
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (THROTTLING_NAMES.has(e.name) || status === 429) return 1000;
  if (TRANSIENT_NAMES.has(e.name) || TRANSIENT_STATUS.has(status) || NETWORK_CODES.has(e.code ?? ''))
    return 25;
  return undefined;
}

export function wireDocumentClient(o: WireDocumentOptions): WireDocumentClient {
  const wire = jsonWire({
    endpoint: o.endpoint,
    region: o.region,
    service: 'dynamodb',
    targetPrefix: 'DynamoDB_20120810',
    contentType: 'application/x-amz-json-1.0',
    // Calls are counted per send below (retries included in one), as the SDK clients count them.
    ...(o.requestTimeoutMs ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
    // A reviver slows every parse: only where the answer holds a binary attribute (quotes inside
    // string values are escaped, so these never match within one).
    parse: (text) =>
      JSON.parse(text, text.includes('"B":"') || text.includes('"BS":[') ? fromJson : undefined) as Wire,
  });
  const maxAttempts = o.maxAttempts ?? 5;
  const hooks: DynamoCallHook[] = [];
  // Whole items and maps are marshalled here (the SDK marshals them value by value): never wrapped.
  const options = { ...(o.marshallOptions ?? DOCUMENT_MARSHALL_OPTIONS), convertTopLevelContainer: false };
  const m = (v: unknown) => marshall(v, options) as Wire;
  const u = (v: Wire) => unmarshall(v as Parameters<typeof unmarshall>[0]) as Item;
  const sdkSend = o.sdk.send.bind(o.sdk) as (...args: unknown[]) => Promise<unknown>;
  let destroyed = false;

  async function call(op: Operation, input: Item): Promise<unknown> {
    const body = JSON.stringify(op.input(input, m), toJson);
    for (let attempt = 1; ; attempt++) {
      if (destroyed) throw new Error(`${op.target}: the DynamoDB client was destroyed`);
      try {
        const out = op.output(await wire.post(op.target, body), u);
        return { ...out, $metadata: { httpStatusCode: 200, attempts: attempt } };
      } catch (error) {
        const e = error as CallError;
        if (SOCKET_TIMEOUT_CODES.has(e.code ?? '')) e.name = 'TimeoutError';
        const base = retryDelayBase(e);
        if (attempt >= maxAttempts || base === undefined) throw e;
        // Full jitter over base × 2^(retry - 1), at most 20 s, as the SDK's strategy (without its
        // shared retry budget: dynalite neither throttles nor sheds load).
        await new Promise((r) =>
          setTimeout(r, Math.random() * Math.min(20_000, base * 2 ** (attempt - 1))).unref(),
        );
      }
    }
  }

  function withHooks<T>(run: () => Promise<T>): Promise<T> {
    let next = run;
    // The first hook added runs outermost, as the first middleware added to the SDK's stack does.
    for (let i = hooks.length - 1; i >= 0; i--) {
      const h = hooks[i]!;
      const inner = next;
      next = () => h(inner);
    }
    return next();
  }

  const doc = {
    send(command: { input: Item }, ...more: unknown[]): Promise<unknown> {
      const op = OPERATIONS.get(command.constructor);
      // Options (an abort signal, ...) and callbacks are the SDK's business.
      if (op === undefined || more.length > 0 || LEGACY.some((k) => command.input[k] !== undefined))
        return sdkSend(command, ...more);
      if (o.calls) o.calls[op.target] = (o.calls[op.target] ?? 0) + 1;
      return withHooks(() => call(op, command.input));
    },
  };
  return {
    // The adapters call `send` and nothing else; the SDK routes the rest through its own client.
    doc: doc as unknown as DynamoDBDocumentClient,
    hook(h) {
      hooks.push(h);
      addSdkHook(o.sdk, h);
    },
    destroy() {
      destroyed = true;
      wire.destroy();
    },
  };
}

/** Installs a call hook in an SDK client's middleware (before serialisation, so it wraps retries too). */
export function addSdkHook(client: DynamoDBClient | DynamoDBDocumentClient, h: DynamoCallHook): void {
  (client.middlewareStack as DynamoDBClient['middlewareStack']).add((next) => (args) => h(() => next(args)), {
    step: 'initialize',
    name: `dualpathHook${++hookIds}`,
  });
}
let hookIds = 0;

export interface LocalDynamoClients {
  client: DynamoDBClient;
  /** The adapters' client: wire calls for the embedded dynalite, else the SDK's document client. */
  doc: DynamoDBDocumentClient;
  /** Adds a hook around every DynamoDB call, whichever path it takes. */
  hook(h: DynamoCallHook): void;
  destroy(): void;
}

/**
 * The stack's DynamoDB clients. `embedded`: the endpoint is the dynalite the stack started itself, so
 * the hot operations take the wire path and requests go unsigned; an external endpoint (LocalStack)
 * gets the SDK clients only, signed as configured.
 */
export function localDynamoClients(o: LocalClientOptions & { embedded: boolean }): LocalDynamoClients {
  const { embedded, ...clientOptions } = o;
  const sdk = createDynamoClients({
    ...clientOptions,
    unsigned: embedded || clientOptions.unsigned === true,
  });
  const wire = embedded
    ? wireDocumentClient({
        endpoint: o.endpoint,
        sdk: sdk.doc,
        region: o.region ?? process.env.AWS_REGION ?? LOCAL_REGION,
        ...(o.calls ? { calls: o.calls } : {}),
        ...(o.maxAttempts ? { maxAttempts: o.maxAttempts } : {}),
        ...(o.requestTimeoutMs ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
      })
    : undefined;
  return {
    client: sdk.client,
    doc: wire?.doc ?? sdk.doc,
    hook: (h) => (wire ? wire.hook(h) : addSdkHook(sdk.client, h)),
    destroy() {
      wire?.destroy();
      sdk.client.destroy();
    },
  };
}
