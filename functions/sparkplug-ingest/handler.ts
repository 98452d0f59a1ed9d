/** Lambda entry point of sparkplug-ingest: the composition root (compose.ts) over the AWS adapters. */
import { awsIngestPorts, ingestSettings, lazyHandler, loadConfig } from '../shared/aws.js';
import { composeSparkplugIngest } from './compose.js';

export const handler = lazyHandler(async () => {
  const config = loadConfig();
  return composeSparkplugIngest(awsIngestPorts(config, 'sparkplug-ingest'), ingestSettings(config)).handler;
});
