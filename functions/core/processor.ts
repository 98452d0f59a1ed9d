import type { MessageOutcome } from './reading.js';

/** One MQTT message as the IoT rule forwards it (payload already base64-decoded). */
export interface InboundMessage {
  topic: string;
  payload: Uint8Array;
  /** Broker receipt time, epoch ms (the rule's timestamp()). */
  receivedAt: number;
  /** MQTT client id (the rule's clientid()), when known. */
  clientId?: string;
}

/**
 * A protocol's cloud side (Sparkplug host, LwM2M server): turns one inbound message into readings,
 * lifecycle events and actions, updating protocol state through its ports. Throws a DualpathError
 * (DecodeError/ProtocolError: quarantine; TransientError: retry) for a message it cannot take.
 */
export interface MessageProcessor {
  handle(message: InboundMessage): Promise<MessageOutcome>;
  /**
   * Optional: called once per batch, before `handle`, with every message of the batch, so protocol
   * state can be read in bulk (one BatchGetItem per 100 keys instead of one GetItem per key).
   */
  prepare?(messages: InboundMessage[]): Promise<void>;
}

/** Injected clock: core code never calls Date.now() itself. */
export type Clock = () => number;
