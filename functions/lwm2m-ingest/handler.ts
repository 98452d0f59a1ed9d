/** Lambda entry point: Kinesis stream "lwm2m" → LwM2M 1.2 server → enrich → store. */
import { awsIngestHandler } from '../shared/aws-ingest.js';

export const handler = awsIngestHandler('lwm2m');
