import type { MessageOutcome } from './reading.js';

/** One MQTT message as the IoT rule forwards it (payload already base64-decoded). */
export interface InboundMessage {
  topic: string;
  payload: Uint8Array;
  /** Broker receipt time, epoch ms (the rule's timestamp()). */
  receivedAt: number;
  /** MQTT client id (the rule's clientid()), when known. */
  clientId?: string;
  /**
   * Set on a record `dualpath redrive` put back on the stream (ADR 0017): the sequence number the
   * message first had, so its event ids (and quarantine entry) are the ones a first delivery would
   * have written. Never set from a device: the topic rule's SQL selects only the four fields above.
   */
  redriveOf?: string;
}

/**
 * A protocol's cloud side (Sparkplug host, LwM2M server): turns one inbound message into readings,
 * lifecycle events and actions, updating protocol state through its ports. Throws a DualpathError
 * (DecodeError/ProtocolError: quarantine; TransientError: retry) for a message it cannot take.
 */
export interface MessageProcessor {
  handle(message: InboundMessage): Promise<MessageOutcome>;
  /**
   * Optional: told synchronously of every outcome `handle` returned to the ingest path. Decorators that
   * need each message's events take them here rather than wrap `handle` in one more promise per message.
   */
  handled?(outcome: MessageOutcome): void;
  /**
   * Optional: called once per batch, before `handle`, with every message of the batch, so protocol
   * state can be read in bulk (one BatchGetItem per 100 keys instead of one GetItem per key).
   */
  prepare?(messages: InboundMessage[]): Promise<void>;
  /**
   * Protocol state is the processor's own (a write-back cache over its state port, ADR 0012); the
   * ingest path only says when a batch starts, when its readings are stored, and when it is given up.
   *
   * `begin`: a batch starts — cached state is re-validated (or dropped) before it is trusted.
   */
  begin?(): void;
  /**
   * The batch's readings are stored: write its state changes. Retryable — a failed commit keeps only
   * what is still unwritten, so committing again writes the rest.
   */
  commit?(): Promise<void>;
  /** The batch is given up (it will be redelivered): state advanced in memory must not outlive it. */
  abort?(): void;
}

/** Injected clock: core code never calls Date.now() itself. */
export type Clock = () => number;
