/** Lambda entry point of magnetic-rejects (S3 Object Created via EventBridge): the root over the AWS adapters. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { S3ReportReader } from '../adapters/s3-objects.js';
import { lazyHandler } from '../shared/lazy-handler.js';
import { composeMagneticRejects } from './compose.js';

export const handler = lazyHandler(
  async () =>
    composeMagneticRejects({
      reports: new S3ReportReader(),
      logger: new Logger({ serviceName: 'magnetic-rejects' }),
      metrics: new Metrics({ namespace: 'Dualpath', serviceName: 'magnetic-rejects' }),
    }).handler,
);
