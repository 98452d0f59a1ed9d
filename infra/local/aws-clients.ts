/**
 * AWS SDK client factories for the local targets: the embedded emulators (kinesalite, dynalite) or an
 * external endpoint such as LocalStack (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS,
 * AWS_ENDPOINT_URL_DYNAMODB). Clients get an HTTP/1.1 NodeHttpHandler — the Kinesis client would talk
 * HTTP/2 to a plain http:// endpoint otherwise — and dummy credentials and region unless real ones
 * are wanted.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ValidationError } from '../../functions/core/errors.js';

export const LOCAL_REGION = 'us-east-1';
/** Emulators accept any key; these make it obvious in logs that nothing real is used. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'dualpath-local', secretAccessKey: 'dualpath-local' };

export interface LocalClientOptions {
  /** http://host:port of the emulator or LocalStack. */
  endpoint: string;
  /** Default: AWS_REGION, else us-east-1. */
  region?: string;
  /** Use the default AWS credential chain instead of the dummy local credentials. */
  useAwsCredentials?: boolean;
  /** SDK attempts (default 5) and socket timeouts. */
  maxAttempts?: number;
  requestTimeoutMs?: number;
  /** Counts the client's calls by operation. */
  calls?: CallCounts;
  /**
   * The embedded emulators (kinesalite, dynalite) check that a SigV4 Authorization header is there and
   * well formed, never its signature: skip the HMAC chain and the SHA-256 of every request body
   * (PutRecords bodies are large) and send a fixed, well-formed header. Never with real credentials.
   */
  unsigned?: boolean;
}

/** Dummy SigV4 headers for an emulator that parses but does not verify them (see `unsigned`). */
export const unsignedSigner = {
  async sign<R extends { headers: Record<string, string> }>(
    request: R,
    options?: { signingDate?: Date; signingRegion?: string; signingService?: string },
  ): Promise<R> {
    const date = (options?.signingDate ?? new Date()).toISOString().replace(/[-:]|\.\d{3}/g, '');
    const scope = `${date.slice(0, 8)}/${options?.signingRegion ?? LOCAL_REGION}/${options?.signingService ?? 'unknown'}`;
    request.headers['x-amz-date'] = date;
    request.headers.authorization =
      `AWS4-HMAC-SHA256 Credential=${LOCAL_CREDENTIALS.accessKeyId}/${scope}/aws4_request, ` +
      `SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
    return request;
  },
};

function common(o: LocalClientOptions) {
  return {
    endpoint: o.endpoint,
    region: o.region ?? process.env.AWS_REGION ?? LOCAL_REGION,
    ...(o.useAwsCredentials ? {} : { credentials: LOCAL_CREDENTIALS }),
    maxAttempts: o.maxAttempts ?? 5,
    ...(o.unsigned && !o.useAwsCredentials ? { signer: unsignedSigner } : {}),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 2000,
      requestTimeout: o.requestTimeoutMs ?? 10_000,
      // Keep-alive sockets: one PutRecords/GetRecords stream per shard reuses its connection.
      httpAgent: { keepAlive: true, maxSockets: 64 },
    }),
  };
}

/** AWS calls by operation (GetItem, PutRecords, ...): the efficiency counters of a local run. */
export type CallCounts = Record<string, number>;

/** Counts every call a client makes, by operation, into `calls`. */
function countCalls(client: DynamoDBClient | KinesisClient, calls: CallCounts): void {
  (client.middlewareStack as DynamoDBClient['middlewareStack']).add(
    (next, context) => (args) => {
      const op = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      calls[op] = (calls[op] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'dualpathCallCounter' },
  );
}

export function createKinesisClient(o: LocalClientOptions): KinesisClient {
  const client = new KinesisClient(common(o));
  if (o.calls) countCalls(client, o.calls);
  return client;
}

export function createDynamoClient(o: LocalClientOptions): DynamoDBClient {
  const client = new DynamoDBClient(common(o));
  if (o.calls) countCalls(client, o.calls);
  return client;
}

/** How every adapter's items are marshalled: undefined attributes dropped, class instances as maps. */
export const DOCUMENT_MARSHALL_OPTIONS = {
  removeUndefinedValues: true,
  convertClassInstanceToMap: true,
} as const;

/** The document client every adapter uses. */
export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { ...DOCUMENT_MARSHALL_OPTIONS } });
}

export function createDynamoClients(o: LocalClientOptions): {
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
} {
  const client = createDynamoClient(o);
  return { client, doc: documentClient(client) };
}

/** Endpoint-only shorthands (the signatures of infra/local/clients.ts, so it can re-export these). */
export const kinesisClient = (endpoint: string): KinesisClient => createKinesisClient({ endpoint });
export const dynamoClients = (endpoint: string) => createDynamoClients({ endpoint });

export interface ExternalEndpoints {
  kinesis?: string;
  dynamodb?: string;
}

/**
 * External endpoints from the environment, as the AWS SDKs read them: the service-specific variable
 * wins over AWS_ENDPOINT_URL. Empty when nothing is set (then the emulators are started).
 */
export function endpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ExternalEndpoints {
  const any = env.AWS_ENDPOINT_URL || undefined;
  const kinesis = env.AWS_ENDPOINT_URL_KINESIS || any;
  const dynamodb = env.AWS_ENDPOINT_URL_DYNAMODB || any;
  for (const [name, url] of Object.entries({ kinesis, dynamodb })) {
    if (url !== undefined && !/^https?:\/\/[^/\s]+/.test(url))
      throw new ValidationError(`the ${name} endpoint "${url}" must be an http(s):// URL`, {
        field: name === 'kinesis' ? 'AWS_ENDPOINT_URL_KINESIS' : 'AWS_ENDPOINT_URL_DYNAMODB',
      });
  }
  return { ...(kinesis ? { kinesis } : {}), ...(dynamodb ? { dynamodb } : {}) };
}
