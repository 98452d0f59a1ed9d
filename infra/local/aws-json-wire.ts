/**
 * One AWS JSON-protocol call over node:http, for the emulators the local stack starts itself
 * (kinesalite: JSON 1.1, dynalite: JSON 1.0). They check that a SigV4 header is there and well formed,
 * never its signature, so requests carry the fixed header of `unsignedSigner` (aws-clients.ts). One
 * attempt per call: callers retry as their code does around the SDK. Never used towards AWS.
 */
import http from 'node:http';
import { type CallCounts, unsignedSigner } from './aws-clients.js';

/** A failed call, shaped as the SDK's service exceptions: `name` is the service's error type. */
export class AwsWireError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { httpStatusCode: number };
  constructor(
    override readonly name: string,
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.$fault = statusCode >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: statusCode };
  }
}

export interface JsonWireOptions {
  /** http://host:port of the emulator. */
  endpoint: string;
  region: string;
  /** SigV4 service name and the protocol's target prefix and content type. */
  service: string;
  targetPrefix: string;
  contentType: string;
  /** Counts calls by operation, like the SDK clients' counters. */
  calls?: CallCounts;
  /** Socket idle time before a call fails with TimeoutError (default 10 s). */
  requestTimeoutMs?: number;
  /** Parses a 2xx answer's body (default JSON.parse). */
  parse?: (text: string) => Record<string, unknown>;
}

export interface JsonWire {
  /** POSTs `body` as `operation`; resolves the parsed answer, rejects an AwsWireError. */
  post(operation: string, body: string, signal?: AbortSignal): Promise<Record<string, unknown>>;
  destroy(): void;
}

export function jsonWire(o: JsonWireOptions): JsonWire {
  const url = new URL(o.endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const timeout = o.requestTimeoutMs ?? 10_000;

  return {
    async post(operation, body, signal) {
      if (o.calls) o.calls[operation] = (o.calls[operation] ?? 0) + 1;
      const headers: Record<string, string> = {
        'content-type': o.contentType,
        'x-amz-target': `${o.targetPrefix}.${operation}`,
        'content-length': String(Buffer.byteLength(body)),
        host: url.host,
      };
      await unsignedSigner.sign({ headers }, { signingRegion: o.region, signingService: o.service });
      return new Promise((resolve, reject) => {
        const req = http.request(
          { host: url.hostname, port: url.port, path: '/', method: 'POST', headers, agent, signal, timeout },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', reject);
            res.on('end', () => {
              const status = res.statusCode ?? 0;
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: Record<string, unknown>;
              try {
                parsed = !text
                  ? {}
                  : status < 300 && o.parse
                    ? o.parse(text)
                    : (JSON.parse(text) as Record<string, unknown>);
              } catch {
                // Not the service's JSON (a crashed emulator, a proxy page): a server fault, never a
                // refusal — callers dead-letter or give up only on errors that name what they carry.
                const s = status >= 500 ? status : 500;
                reject(
                  new AwsWireError('InternalFailure', `${operation}: unreadable answer (HTTP ${status})`, s),
                );
                return;
              }
              if (status >= 300) {
                const body = typeof parsed === 'object' && parsed !== null ? parsed : {};
                const { __type, message, Message, ...rest } = body;
                // "prefix#Name" or "Name:detail", as the SDK reads the type.
                const type = String(__type ?? 'UnknownError');
                const name = type.slice(type.lastIndexOf('#') + 1).split(/[:,]/)[0]!;
                const error = new AwsWireError(name, String(message ?? Message ?? `HTTP ${status}`), status);
                // The exception's own members (a ConditionalCheckFailedException's Item, ...), as the SDK's.
                reject(Object.assign(error, rest));
              } else resolve(parsed);
            });
          },
        );
        req.on('timeout', () =>
          req.destroy(new AwsWireError('TimeoutError', `${operation}: no answer in ${timeout} ms`, 0)),
        );
        req.on('error', reject);
        req.end(body);
      });
    },
    destroy: () => agent.destroy(),
  };
}
