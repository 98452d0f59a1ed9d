/**
 * The telemetry store candidates of ADR 0013 side by side (`dualpath cost --compare-stores`): cost per
 * million readings of writes, 30-day storage and the API's queries, for the same fleet and query mix as
 * the cost model. Only the packed DynamoDB store has measured request counts (`npm run bench -- store
 * --dynamodb`); the others are computed from published prices and their documented billing rules, and
 * what our sources do not price is named instead of guessed.
 */
import { type CostInputs, DEFAULT_INPUTS, estimateCost } from './model.js';
import { PRICES, type Prices } from './prices.js';

export interface CandidateCost {
  name: string;
  writes: number | undefined;
  storage: number | undefined;
  queries: number | undefined;
  /** Sum of the known parts (undefined parts excluded), per million readings. */
  known: number;
  /** What is not priced in our sources (fixed instance-hours, fees), in words. */
  unpriced: string[];
  notes: string[];
}

const MONTH_SECONDS = 30 * 86_400;

/**
 * One reading as a JSON row for Firehose → Iceberg (the columns the API filters and returns), shaped
 * like the store benchmark's Sparkplug readings; its UTF-8 length is what Firehose bills per reading.
 */
export function icebergRowBytes(): number {
  const row = {
    deviceId: 'node-123',
    subDevice: 'dev-0',
    metric: 'Sensors/Channel-13',
    time: 1_700_000_000_000,
    v_kind: 'double',
    v_num: Math.sin(13) * 100,
    type: 'Double',
    quality: 'GOOD',
    historical: false,
    unit: 'kPa',
    name: 'Channel 13',
    protocol: 'sparkplug',
    deviceType: 'meter',
    site: 'site-3',
    sp_group: 'plant-3',
  };
  return Buffer.byteLength(JSON.stringify(row), 'utf8');
}

export function compareStores(partial: Partial<CostInputs>, prices: Prices = PRICES): CandidateCost[] {
  const i: CostInputs = { ...DEFAULT_INPUTS, ...partial, store: 'dynamodb' };
  const dynamo = estimateCost(i, prices);
  const readings = dynamo.volumes.readingsPerMonth;
  const messages = dynamo.volumes.messagesPerMonth;
  const perM = (monthly: number) => (monthly / readings) * 1e6;
  const line = (prefix: string) => dynamo.lines.find((l) => l.item.startsWith(prefix))?.monthly ?? 0;

  const dynamoWrites = perM(line('telemetry writes') + line('telemetry redeliveries'));
  const dynamoStorage = perM(line('telemetry storage'));
  const dynamoQueries = perM(line('API queries'));

  // S3 Tables (Iceberg) via Firehose + Athena, latest values in DynamoDB (one latest item per message,
  // as measured for the packed store: 1 WRU for its latest PutItem).
  const rowBytes = icebergRowBytes();
  const firehose = ((readings * rowBytes) / 1024 ** 3) * prices.analytics.firehoseIcebergPerGB;
  const latestWrites = messages * 1 * (prices.dynamodb.onDemandWritePerMillion / 1e6);
  const queriesPerMonth =
    i.devices * (MONTH_SECONDS / 86_400) * (i.bucketQueriesPerDevicePerDay + i.rawQueriesPerDevicePerDay);
  const athena =
    queriesPerMonth *
    (prices.analytics.athenaMinBytesPerQuery / 1024 ** 4) *
    prices.analytics.athenaPerTBScanned;
  const latestReads =
    i.devices *
    (MONTH_SECONDS / 86_400) *
    i.latestQueriesPerDevicePerDay *
    (prices.dynamodb.onDemandReadPerMillion / 1e6);

  return [
    {
      name: 'DynamoDB, packed frames + hour chunks (measured)',
      writes: dynamoWrites,
      storage: dynamoStorage,
      queries: dynamoQueries,
      known: dynamoWrites + dynamoStorage + dynamoQueries,
      unpriced: [],
      notes: ['no fixed cost (on-demand table)'],
    },
    {
      name: 'S3 Tables (Iceberg) via Firehose + Athena, latest in DynamoDB',
      writes: perM(firehose + latestWrites),
      storage: undefined,
      queries: perM(athena + latestReads),
      known: perM(firehose + latestWrites + athena + latestReads),
      unpriced: ['S3 Tables storage, requests, monitoring and compaction (not in our sources)'],
      notes: [
        `Firehose bills ${rowBytes} B per reading (one JSON row); Athena at its 10 MB minimum per query`,
      ],
    },
    {
      name: 'Timestream for InfluxDB (instance in a VPC)',
      writes: undefined,
      storage: undefined,
      queries: undefined,
      known: 0,
      unpriced: [
        'instance-hours (fixed, per instance: price not in our sources)',
        'allocated storage',
        'VPC egress for the writer Lambda (NAT gateway or interface endpoints)',
      ],
      notes: [
        `a fixed $P/hour instance costs ${((730 / readings) * 1e6).toFixed(4)}·P per million readings at this fleet`,
      ],
    },
  ];
}
