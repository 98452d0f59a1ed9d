/** Paging and batch writes shared by the DynamoDB adapters. */
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../core/errors.js';

type Item = Record<string, unknown>;

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
      await o.sleep(Math.min(20 * 2 ** (attempt - 1), 1000));
    }
  }
}
