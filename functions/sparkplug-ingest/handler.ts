/** Lambda entry point: Kinesis stream "sparkplug" → Sparkplug B host → enrich → store. */
import { awsIngestHandler } from '../shared/aws-ingest.js';

export const handler = awsIngestHandler('sparkplug');
