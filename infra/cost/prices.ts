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
    /** Standard table class storage (aws-facts.md §10). */
    storagePerGBMonth: 0.25,
  },
  /**
   * Not in aws-facts.md; consistent third-party transcriptions of the AWS pricing pages (2026):
   * standard-resolution alarm $0.10/alarm-month, custom dashboard $3/month (c3x.dev, factualminds.com).
   */
  cloudwatch: {
    alarmPerMonth: 0.1,
    dashboardPerMonth: 3,
    /** Custom metric $0.30/metric-month (first 10,000); Logs ingestion $0.50/GB, storage $0.03/GB-month. */
    customMetricPerMonth: 0.3,
    logsIngestPerGB: 0.5,
    logsStoragePerGBMonth: 0.03,
  },
  /** REST API requests, $3.50 per million (first 333 M a month); third-party transcriptions. */
  apiGateway: {
    restPerMillion: 3.5,
  },
  /** $0.40 per secret-month (+$0.05 per 10,000 API calls, negligible here); third-party transcriptions. */
  secretsManager: {
    secretPerMonth: 0.4,
  },
  /**
   * For ADR 0013's comparison only (the S3 Tables candidate), third-party transcriptions: Firehose
   * delivery to Iceberg tables $0.075 per GB ingested (no 5 KB rounding); Athena $5 per TB scanned,
   * 10 MB minimum per query; S3 Standard storage $0.023/GB-month (S3 Tables storage is priced above it;
   * its own rate, request, monitoring and compaction fees are not in our sources).
   */
  analytics: {
    firehoseIcebergPerGB: 0.075,
    athenaPerTBScanned: 5,
    athenaMinBytesPerQuery: 10 * 1024 * 1024,
    s3StandardPerGBMonth: 0.023,
  },
  timestream: {
    writesPerMillionKiB: 0.5,
    memoryStorePerGBHour: 0.036,
    magneticStorePerGBMonth: 0.03,
  },
} as const;

export type Prices = typeof PRICES;
