/** Paging, batch writes and transactions shared by the DynamoDB adapters. */
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../core/errors.js';
import { mapTransactionError } from './dynamo-errors.js';

type Item = Record<string, unknown>;
export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * Whether an endpoint has TransactWriteItems: undefined until its first answer (or set by the
 * adapter's options), false once it answered that it has no such operation (dynalite).
 */
export interface TransactionSupport {
  transactions: boolean | undefined;
}

/**
 * One TransactWriteItems of `items`: true when it landed; false where the endpoint has no
 * transactions (remembered in `support`: nothing is sent from then on). A cancelled one throws
 * ConflictError (a condition failed) or TransientError (a conflicting write, throttling); nothing of it
 * was written.
 */
export async function transactWrite(
  client: DynamoDBDocumentClient,
  items: TransactItem[],
  support: TransactionSupport,
  what: string,
): Promise<boolean> {
  if (support.transactions === false) return false;
  try {
    await client.send(new TransactWriteCommand({ TransactItems: items }));
    support.transactions = true;
    return true;
  } catch (error) {
    if (support.transactions !== true && (error as Error).name === 'UnknownOperationException') {
      support.transactions = false;
      return false;
    }
    throw mapTransactionError(error, what);
  }
}

/**
 * Every page of a query, in order. `call` is the adapter's own wrapper (its error mapping), applied to
 * each page's request.
 */
export async function queryAllPages(
  client: DynamoDBDocumentClient,
  tableName: string,
  input: Omit<QueryCommandInput, 'TableName'>,
  call: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: Item | undefined;
  do {
    const page = await call(() =>
      client.send(new QueryCommand({ ...input, TableName: tableName, ExclusiveStartKey: cursor })),
    );
    items.push(...(page.Items ?? []));
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  return items;
}

/** The wait before retry `attempt` + 1 of unprocessed items or statements: 20 ms doubling, at most 1 s. */
export function backoffMs(attempt: number): number {
  return Math.min(20 * 2 ** (attempt - 1), 1000);
}

/** TransactWriteItems' limit of items per call. */
export const TRANSACT_WRITE_MAX = 100;

/** BatchWriteItem's limit of requests per call. */
export const BATCH_WRITE_MAX = 25;

/**
 * BatchWriteItem over `requests` (PutRequest / DeleteRequest) in chunks of 25, retrying the unprocessed
 * ones with exponential backoff (20 ms doubling, at most 1 s); still unprocessed after `maxAttempts`
 * calls of a chunk: a TransientError with `code`. `call` is the adapter's own wrapper (error mapping).
 */
export async function batchWriteAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  requests: Item[],
  o: {
    what: string;
    code: string;
    maxAttempts: number;
    sleep: (ms: number) => Promise<void>;
    call: <T>(fn: () => Promise<T>) => Promise<T>;
  },
): Promise<void> {
  for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
    let pending = requests.slice(i, i + BATCH_WRITE_MAX);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const out = await o.call(() =>
        client.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending as never } })),
      );
      pending = (out.UnprocessedItems?.[tableName] ?? []) as Item[];
      if (pending.length === 0) break;
      if (attempt >= o.maxAttempts) {
        throw new TransientError(
          o.code,
          `${o.what}: ${pending.length} writes still unprocessed after ${attempt} attempts`,
        );
      }
      await o.sleep(backoffMs(attempt));
    }
  }
}
