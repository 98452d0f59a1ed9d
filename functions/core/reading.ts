/**
 * The normalized output of both protocol paths. Decoders and state machines produce these; enrichment,
 * the telemetry store, the API and `dualpath decode` consume them. Pure data, no behaviour.
 */
export type Protocol = 'sparkplug' | 'lwm2m';

/**
 * A reading's value. Integers outside ±(2^53−1) are bigint (never a lossy number); arrays stay arrays;
 * Bytes/File/Opaque are Uint8Array; `null` when the value is absent (Sparkplug is_null).
 */
export type ReadingValue = number | bigint | string | boolean | null | Uint8Array | ReadingValue[];

/** Sparkplug Quality property values (0 BAD, 192 GOOD, 500 STALE) in words. */
export type Quality = 'GOOD' | 'BAD' | 'STALE' | 'UNCERTAIN';

export interface Reading {
  protocol: Protocol;
  /** The thing name: Sparkplug edge node id == LwM2M endpoint. */
  deviceId: string;
  /** Sparkplug group id. */
  group?: string;
  /** Sparkplug device id under the edge node (absent for node-level metrics). */
  subDevice?: string;
  /** Sparkplug metric name (templates flattened to instance/member) or LwM2M path (/3303/0/5700). */
  metric: string;
  /** Friendly name (LwM2M object registry) when it differs from `metric`. */
  name?: string;
  unit?: string;
  /** Datatype name: Sparkplug DataType names (Int16, Double, ...) or LwM2M types (Float, Integer, ...). */
  type: string;
  value: ReadingValue;
  /** Epoch milliseconds. */
  time: number;
  historical: boolean;
  transient: boolean;
  quality: Quality;
  /** DataSet row index, for readings named {metric}/{column}. */
  row?: number;
  /** Array element index, when an array is unpacked. */
  index?: number;
}

export type LifecycleEventType =
  | 'birth'
  | 'death'
  | 'stale'
  | 'rebirth-requested'
  | 'seq-gap'
  | 'duplicate'
  | 'ignored'
  | 'register'
  | 'update'
  | 'deregister'
  | 'expired'
  | 'response'
  | 'quarantined'
  | 'publish-refused'
  | 'state'
  /** An alert opened or resolved (rules, ADR 0016): `data` is the transition. */
  | 'alert';

export interface LifecycleEvent {
  type: LifecycleEventType;
  protocol: Protocol;
  deviceId: string;
  subDevice?: string;
  /** Epoch milliseconds. */
  time: number;
  /** Short human-readable reason or detail. */
  detail?: string;
  data?: Record<string, unknown>;
}

/** Something the cloud side must publish to a device (rebirth NCMD, LwM2M response or request). */
export interface PublishAction {
  kind: 'publish';
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1;
  /** Why, for logs and `dualpath decode` output. */
  reason: string;
  /** A decoded view of the payload for humans (never used on the wire). */
  describe?: unknown;
}

export type Action = PublishAction;

/** What processing one inbound MQTT message produced. */
export interface MessageOutcome {
  protocol: Protocol;
  /** NBIRTH, DDATA, ... for Sparkplug; register, update, deregister, send, notify, response for LwM2M. */
  kind: string;
  deviceId: string;
  group?: string;
  subDevice?: string;
  readings: Reading[];
  events: LifecycleEvent[];
  actions: Action[];
}

/** Registry facts attached to every reading before it is stored (the seeds' enrichment). */
export interface Enrichment {
  /** Device type id from the registry (or the auto-registration default). */
  deviceType: string;
  typeName?: string;
  category?: string;
  capabilities?: string[];
  /** Site / group from the registry (falls back to the Sparkplug group). */
  site?: string;
  /** Ids of the applications registered for the device type (routing and access). */
  applications: string[];
}

export interface EnrichedReading extends Reading {
  enrichment: Enrichment;
}

/**
 * A number for human-readable text (alert reasons): a value exactly representable as a 32-bit float is
 * written as the shortest decimal that reads back as that float32 (29.02, not 29.020000457763672 — a
 * Sparkplug Float widened to a double), any other number as JavaScript writes it.
 */
export function numberText(value: number): string {
  if (Number.isFinite(value) && !Number.isInteger(value) && Math.fround(value) === value) {
    for (let p = 1; p <= 9; p++) {
      const s = Number(value.toPrecision(p));
      if (Math.fround(s) === value) return String(s);
    }
  }
  return String(value);
}
