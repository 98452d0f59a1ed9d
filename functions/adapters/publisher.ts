/**
 * The Publisher port (server → device messages: Sparkplug rebirth NCMD, LwM2M responses and commands)
 * and its two adapters: the AWS IoT data plane (Publish API) and the in-process local broker, which
 * publishes as the server does in AWS — outside any device session, so the device ACL does not apply.
 */
import type { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { ProtocolError, TransientError } from '../core/errors.js';
import type { PublishAction } from '../core/reading.js';

export interface Publisher {
  publish(actions: PublishAction[]): Promise<void>;
}

const TRANSIENT = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'InternalFailureException',
  'RequestLimitExceeded',
  'TimeoutError',
  'RequestTimeout',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

export function isTransientPublishError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { $metadata?: { httpStatusCode?: number }; code?: string; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    TRANSIENT.has(e.name) ||
    TRANSIENT.has(e.code ?? '') ||
    status === 429 ||
    status >= 500 ||
    e.$retryable !== undefined
  );
}

export interface IotDataPublisherOptions {
  /**
   * A configured client (the account's data endpoint: `https://<id>-ats.iot.<region>.amazonaws.com`),
   * or how to make one at the first publish. The SDK module itself is imported at the first publish
   * too: a function that publishes nothing (most ingest batches) never loads it (ADR 0025 amendment 2).
   */
  client: IoTDataPlaneClient | ((sdk: IotPublishSdk) => IoTDataPlaneClient);
  /** The SDK module, when the caller imported it already (no import at the first publish). */
  sdk?: IotPublishSdk;
  /** Attempts per message for transient errors (default 4). */
  maxAttempts?: number;
  /** Backoff base in ms, doubled per attempt (default 50). */
  baseDelayMs?: number;
  /** Messages published at once (default 16). */
  concurrency?: number;
  sleep?: (ms: number) => Promise<void>;
}

type IotDataPlaneSdk = typeof import('@aws-sdk/client-iot-data-plane');
/** The part of the SDK module a publisher uses; given to forEndpoint, the client is built at once. */
export type IotPublishSdk = Pick<IotDataPlaneSdk, 'IoTDataPlaneClient' | 'PublishCommand'>;

/**
 * IoT data-plane Publish, one call per action (qos as asked, retain false). Transient failures are
 * retried with backoff; if they persist a TransientError is thrown (the batch is retried by the ESM).
 * A refused request (bad topic, unauthorized) is a ProtocolError: retrying cannot help.
 */
export class IotDataPublisher implements Publisher {
  private readonly sleep: (ms: number) => Promise<void>;
  private loaded: Promise<{ client: IoTDataPlaneClient; sdk: IotPublishSdk }> | undefined;

  constructor(private readonly o: IotDataPublisherOptions) {
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    const sdk = o.sdk;
    if (sdk) {
      const c = o.client;
      this.loaded = Promise.resolve({ sdk, client: typeof c === 'function' ? c(sdk) : c });
    }
  }

  /**
   * A publisher to the account's data endpoint. Without `sdk` the SDK module and the client are loaded
   * at the first publish; a function whose typical request publishes (every LwM2M request is answered)
   * passes the module it imported, and the client is built now.
   */
  static forEndpoint(endpoint?: string, region?: string, sdk?: IotPublishSdk): IotDataPublisher {
    return new IotDataPublisher({
      client: (m) =>
        new m.IoTDataPlaneClient({
          ...(endpoint
            ? { endpoint: endpoint.startsWith('https://') ? endpoint : `https://${endpoint}` }
            : {}),
          ...(region ? { region } : {}),
        }),
      ...(sdk ? { sdk } : {}),
    });
  }

  /** The SDK module and the client, loaded at the first publish (a failed load is retried next time). */
  private load() {
    this.loaded ??= import('@aws-sdk/client-iot-data-plane')
      .then((sdk) => {
        const c = this.o.client;
        return { sdk, client: typeof c === 'function' ? c(sdk) : c };
      })
      .catch((error: unknown) => {
        this.loaded = undefined;
        throw error;
      });
    return this.loaded;
  }

  async publish(actions: PublishAction[]): Promise<void> {
    const limit = Math.max(1, this.o.concurrency ?? 16);
    let next = 0;
    const worker = async () => {
      while (next < actions.length) await this.publishOne(actions[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(limit, actions.length) }, worker));
  }

  private async publishOne(a: PublishAction): Promise<void> {
    const attempts = Math.max(1, this.o.maxAttempts ?? 4);
    const { sdk, client } = await this.load();
    for (let attempt = 1; ; attempt++) {
      try {
        await client.send(
          new sdk.PublishCommand({ topic: a.topic, qos: a.qos, retain: false, payload: a.payload }),
        );
        return;
      } catch (error) {
        const name = error instanceof Error ? error.name : 'Error';
        if (!isTransientPublishError(error))
          throw new ProtocolError('PUBLISH_REFUSED', `IoT Publish to topic ${a.topic} refused: ${name}`, {
            field: 'topic',
            cause: error,
          });
        if (attempt >= attempts)
          throw new TransientError(
            'PUBLISH_UNAVAILABLE',
            `IoT Publish to topic ${a.topic} failed ${attempts} times: ${name}`,
            { field: 'topic', cause: error },
          );
        await this.sleep((this.o.baseDelayMs ?? 50) * 2 ** (attempt - 1));
      }
    }
  }
}

/** The part of an Aedes instance the local publisher needs. */
export interface BrokerLike {
  publish(
    packet: { cmd: 'publish'; topic: string; payload: Buffer; qos: 0 | 1; retain: boolean; dup: boolean },
    callback: (error?: Error) => void,
  ): void;
}

/**
 * Publishes through the in-process Aedes broker as the server (no client session, no device ACL),
 * like IoT data-plane Publish. With `isOpen` returning false (broker shutting down), actions are
 * skipped: the devices they were for are gone.
 */
export class LocalBrokerPublisher implements Publisher {
  constructor(
    private readonly broker: BrokerLike,
    private readonly isOpen: () => boolean = () => true,
  ) {}

  async publish(actions: PublishAction[]): Promise<void> {
    if (!this.isOpen()) return;
    await Promise.all(
      actions.map(
        (a) =>
          new Promise<void>((resolve, reject) =>
            this.broker.publish(
              {
                cmd: 'publish',
                topic: a.topic,
                payload: Buffer.from(a.payload.buffer, a.payload.byteOffset, a.payload.byteLength),
                qos: a.qos,
                retain: false,
                dup: false,
              },
              (error) =>
                error
                  ? reject(
                      new TransientError('LOCAL_PUBLISH', `local publish to ${a.topic}: ${error.message}`, {
                        cause: error,
                      }),
                    )
                  : resolve(),
            ),
          ),
      ),
    );
  }
}
