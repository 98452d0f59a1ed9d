/**
 * A DynamoDB document client whose HTTP layer answers in-process, for benchmarks of the AWS adapters'
 * own cost: everything the SDK does for a request (marshalling, serialization, endpoint, SigV4 signing,
 * retries middleware, response parsing) runs as deployed; only the network and the service are not
 * there. The stub's own CPU time (parsing the request, building the answer) is counted in `stubMs`, to
 * be subtracted from a measurement.
 *
 * What it answers is what a fresh table with one writer would: every write succeeds, GetItem and
 * Query find nothing, except that the items written (PutItem, BatchWriteItem, TransactWriteItems,
 * BatchExecuteStatement) into `keepTables` are kept and served to BatchGetItem (whole or projected).
 * Enough for the ingest path's writes and the rule engine's cross-batch version checks; not a
 * DynamoDB emulator (dynalite is, in the tests).
 */
import { Readable } from 'node:stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readPartiqlWrite } from '../verify-deploy/partiql-writes.js';

type Wire = Record<string, unknown>;
type WireItem = Record<string, Record<string, unknown>>;

export interface StubbedDynamo {
  doc: DynamoDBDocumentClient;
  /** Main-thread CPU ms the stub itself has used (NaN where the runtime cannot tell: Node < 22.19). */
  stubMs: () => number;
  /** Requests answered, per operation and table ("PutItem state"). */
  requests: Map<string, number>;
}

const threadCpuUs = (): number => {
  const f = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage;
  if (!f) return Number.NaN;
  const u = f();
  return u.user + u.system;
};

const decoder = new TextDecoder();

export function stubbedDynamo(keepTables: string[]): StubbedDynamo {
  const kept = new Map<string, Map<string, WireItem>>(keepTables.map((t) => [t, new Map()]));
  const requests = new Map<string, number>();
  let stubUs = 0;
  const keyOf = (item: WireItem) => `${item.pk?.S}\u0000${item.sk?.S}`;

  const answer = (op: string, input: Wire): Wire => {
    switch (op) {
      case 'PutItem': {
        const table = kept.get(input.TableName as string);
        if (table) table.set(keyOf(input.Item as WireItem), input.Item as WireItem);
        return {};
      }
      case 'UpdateItem':
        return {};
      case 'GetItem':
        return {};
      case 'Query':
        return { Items: [], Count: 0, ScannedCount: 0 };
      case 'BatchWriteItem': {
        for (const [name, reqs] of Object.entries(input.RequestItems as Record<string, Wire[]>)) {
          const table = kept.get(name);
          for (const r of reqs) {
            const put = (r.PutRequest as { Item: WireItem } | undefined)?.Item;
            if (table && put) table.set(keyOf(put), put);
          }
        }
        return { UnprocessedItems: {} };
      }
      case 'BatchGetItem': {
        const responses: Record<string, WireItem[]> = {};
        for (const [name, req] of Object.entries(input.RequestItems as Record<string, Wire>)) {
          const table = kept.get(name);
          // A projection of plain names or #placeholders (ExpressionAttributeNames).
          const names = req.ExpressionAttributeNames as Record<string, string> | undefined;
          const projection =
            typeof req.ProjectionExpression === 'string'
              ? req.ProjectionExpression.split(',').map((p) => names?.[p.trim()] ?? p.trim())
              : undefined;
          const found: WireItem[] = [];
          for (const key of req.Keys as WireItem[]) {
            const item = table?.get(keyOf(key));
            if (!item) continue;
            found.push(
              projection
                ? Object.fromEntries(projection.filter((a) => a in item).map((a) => [a, item[a]!]))
                : item,
            );
          }
          responses[name] = found;
        }
        return { Responses: responses, UnprocessedKeys: {} };
      }
      case 'BatchExecuteStatement': {
        // Every statement lands (one writer): INSERTs and UPDATEs into kept tables kept.
        const statements = input.Statements as Array<{ Statement: string; Parameters?: Wire[] }>;
        for (const st of statements) {
          const w = readPartiqlWrite(st.Statement, st.Parameters);
          const table = kept.get(w.table);
          if (!table) continue;
          if (w.kind === 'insert') table.set(keyOf(w.item as WireItem), w.item as WireItem);
          else {
            const key = keyOf(w.where as WireItem);
            const item = { ...table.get(key), ...(w.where as WireItem), ...(w.set as WireItem) };
            for (const r of w.remove) delete item[r];
            table.set(key, item);
          }
        }
        return { Responses: statements.map(() => ({})) };
      }
      case 'TransactWriteItems': {
        // Every item's condition holds (one writer): its Puts land, in kept tables kept.
        for (const t of input.TransactItems as Array<{ Put?: { TableName: string; Item: WireItem } }>) {
          if (t.Put) kept.get(t.Put.TableName)?.set(keyOf(t.Put.Item), t.Put.Item);
        }
        return {};
      }
      default:
        throw new Error(`dynamo stub: ${op} is not answered`);
    }
  };

  const handler = {
    async handle(request: { headers: Record<string, string>; body?: unknown }) {
      const t0 = threadCpuUs();
      const op = String(request.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const raw = request.body;
      const text = typeof raw === 'string' ? raw : decoder.decode(raw as Uint8Array);
      const input = JSON.parse(text) as Wire;
      const tables =
        input.TableName ??
        [
          ...new Set([
            ...Object.keys((input.RequestItems ?? {}) as Wire),
            ...((input.TransactItems ?? []) as Array<Record<string, { TableName: string }>>).map(
              (t) => Object.values(t)[0]!.TableName,
            ),
            ...((input.Statements ?? []) as Array<{ Statement: string }>).map(
              (st) => /^\s*(?:INSERT INTO|UPDATE) "([^"]+)"/.exec(st.Statement)?.[1] ?? '?',
            ),
          ]),
        ].join('+');
      const counted = `${op} ${tables}`;
      requests.set(counted, (requests.get(counted) ?? 0) + 1);
      const body = Buffer.from(JSON.stringify(answer(op, input)));
      // The shape of a smithy HttpResponse (the SDK checks the shape, not the class).
      const response = {
        statusCode: 200,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'content-length': String(body.length) },
        body: Readable.from([body]),
      };
      stubUs += threadCpuUs() - t0;
      return { response };
    },
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
  };
  const client = new DynamoDBClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDBENCHSTUB', secretAccessKey: 'bench-stub-not-a-secret' },
    requestHandler: handler as never,
  });
  // As functions/shared/aws-base.ts builds it.
  const doc = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
  return { doc, stubMs: () => stubUs / 1000, requests };
}
