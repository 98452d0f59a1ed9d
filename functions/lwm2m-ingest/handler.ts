/** Lambda entry point of lwm2m-ingest: the composition root (compose.ts) over the AWS adapters. */
import { awsIngestPorts, ingestSettings, lazyHandler, loadConfig } from '../shared/aws.js';
import { composeLwm2mIngest } from './compose.js';

export const handler = lazyHandler(async () => {
  const config = loadConfig();
  return composeLwm2mIngest(awsIngestPorts(config, 'lwm2m-ingest'), ingestSettings(config)).handler;
});
