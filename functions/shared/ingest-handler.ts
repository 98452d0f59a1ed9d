/**
 * The Lambda handler factory for both ingest functions: middy + Powertools (Logger, Metrics as EMF)
 * around the pure batch processor in functions/core/ingest.ts. AWS and the local runner differ only in
 * the dependencies they pass in.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { describeError } from '../core/errors.js';
import { type IngestDeps, type IngestStats, processBatch } from '../core/ingest.js';

export interface IngestHandlerDeps extends Omit<IngestDeps, 'onProblem'> {
  logger: Logger;
  metrics: Metrics;
  /** Called after every batch (the local stack's status line). */
  onBatch?: (stats: IngestStats) => void;
}

export type KinesisHandler = (
  event: KinesisStreamEvent,
  context: Context,
) => Promise<KinesisStreamBatchResponse>;

export const COUNTERS: Array<[keyof IngestStats, string]> = [
  ['records', 'RecordsReceived'],
  ['readingsDecoded', 'ReadingsDecoded'],
  ['readingsStored', 'ReadingsStored'],
  ['readingsPending', 'ReadingsPendingMagnetic'],
  ['duplicates', 'ReadingsDuplicate'],
  ['quarantined', 'MessagesQuarantined'],
  ['rejectedByStore', 'StoreRejects'],
  ['actionsPublished', 'ActionsPublished'],
  ['rebirthsRequested', 'RebirthsRequested'],
  ['registrations', 'Registrations'],
  ['transientFailures', 'TransientFailures'],
  ['retries', 'Retries'],
  ['eventsUnwritten', 'EventsUnwritten'],
];

export function createIngestHandler(deps: IngestHandlerDeps): KinesisHandler {
  const { logger, metrics, onBatch, ...core } = deps;
  const base = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
    const records = event.Records.map((r) => ({
      sequenceNumber: r.kinesis.sequenceNumber,
      partitionKey: r.kinesis.partitionKey,
      data: Buffer.from(r.kinesis.data, 'base64'),
    }));
    const result = await processBatch(records, {
      ...core,
      onProblem: ({ kind, record, error, events }) => {
        const info = {
          sequenceNumber: record.sequenceNumber,
          partitionKey: record.partitionKey,
          error: error instanceof Error ? describeError(error) : error,
        };
        if (kind === 'quarantine') logger.warn('record quarantined', info);
        else if (kind === 'events')
          // Readings and state are stored; the events themselves are kept here, in the log.
          logger.error('events not written to the event log', { ...info, events });
        else logger.error('transient failure; record will be retried by the stream', info);
      },
    });
    for (const [key, name] of COUNTERS) {
      const value = result.stats[key];
      if (value > 0) metrics.addMetric(name, MetricUnit.Count, value);
    }
    onBatch?.(result.stats);
    if (result.batchItemFailures.length > 0) {
      logger.warn('reporting batch item failures', { batchItemFailures: result.batchItemFailures });
    }
    return { batchItemFailures: result.batchItemFailures };
  };
  return middy(base).use(injectLambdaContext(logger)).use(logMetrics(metrics)) as unknown as KinesisHandler;
}
