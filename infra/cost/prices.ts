/**
 * AWS list prices used by the cost model (`dualpath cost`), us-east-1, as collected in
 * shared/reference/aws-facts.md (AWS pricing pages and consistent third-party transcriptions, 2026).
 * This is the ONE place prices live; update it here when AWS changes them.
 */
export const PRICES = {
  region: 'us-east-1',
  asOf: '2026-11',
  iot: {
    /** Messaging, per million 5 KB units, tiered by monthly volume. */
    messagingTiers: [
      { upToMessages: 1e9, perMillion: 1.0 },
      { upToMessages: 5e9, perMillion: 0.8 },
      { upToMessages: Number.POSITIVE_INFINITY, perMillion: 0.7 },
    ],
    messageUnitBytes: 5 * 1024,
    connectivityPerMillionMinutes: 0.08,
    rulesTriggeredPerMillion: 0.15,
    actionsPerMillion: 0.15,
  },
  kinesis: {
    onDemandStreamHour: 0.04,
    onDemandIngestPerGB: 0.08,
    onDemandRecordRoundingBytes: 1024,
    onDemandRetrievalPerGB: 0.04,
    provisionedShardHour: 0.015,
    provisionedPutUnitsPerMillion: 0.014,
    putUnitBytes: 25 * 1024,
    recordsPerShardSecond: 1000,
    bytesPerShardSecond: 1024 * 1024,
  },
  lambda: {
    armPerGBSecond: 0.0000133334,
    requestsPerMillion: 0.2,
  },
  dynamodb: {
    onDemandWritePerMillion: 0.625,
    onDemandReadPerMillion: 0.125,
  },
  timestream: {
    writesPerMillionKiB: 0.5,
    memoryStorePerGBHour: 0.036,
    magneticStorePerGBMonth: 0.03,
  },
} as const;

export type Prices = typeof PRICES;
