/** Paging shared by the DynamoDB adapters. */
import { type DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

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
