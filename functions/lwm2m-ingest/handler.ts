/** Lambda entry point of lwm2m-ingest: the composition root (compose.ts) over the AWS adapters. */
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { awsIngestPorts, ingestSettings, lazyHandler, loadConfig } from '../shared/aws.js';
import { composeLwm2mIngest } from './compose.js';

export const handler = lazyHandler(async () => {
  const config = loadConfig();
  // Every LwM2M request (Register, Update, Send, ...) is answered through the IoT data plane, so its
  // client is part of a typical first invocation: loaded at INIT here, not on the first publish as in
  // the other functions (ADR 0025 amendment 2).
  const iot = { IoTDataPlaneClient, PublishCommand };
  return composeLwm2mIngest(awsIngestPorts(config, 'lwm2m-ingest', iot), ingestSettings(config)).handler;
});
