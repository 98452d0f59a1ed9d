/** Lambda entry point of operations-worker (EventBridge schedule): the composition root over the AWS adapters. */
import { randomUUID } from 'node:crypto';
import { DynamoOperationStore } from '../adapters/dynamo-operations.js';
import { awsLivePublisher, dynamoPorts, iotPublisher, lazyHandler, loadConfig } from '../shared/aws.js';
import { awsPackageStore } from '../shared/aws-firmware.js';
import { functionLogger, lambdaEntry } from '../shared/lambda-entry.js';
import { composeOperationsWorker } from './compose.js';

export const handler = lambdaEntry(
  functionLogger(),
  lazyHandler(async () => {
    const config = loadConfig();
    const dynamo = dynamoPorts(config);
    const live = awsLivePublisher(config, dynamo.doc);
    // Firmware campaigns (ADR 0022): packages in S3, Package URIs signed with the stack's key.
    const packages = awsPackageStore(config);
    return composeOperationsWorker(
      {
        registry: dynamo.registry,
        registrations: dynamo.registrations,
        pending: dynamo.pending,
        publisher: iotPublisher(config),
        store: new DynamoOperationStore({ client: dynamo.doc, tableName: config.REGISTRY_TABLE }),
        clock: Date.now,
        newId: randomUUID,
        // Progress of every pass to live connections (ADR 0023), when the stack has the WebSocket API.
        ...(live ? { live } : {}),
        ...(packages ? { packages } : {}),
      },
      // One invocation a minute keeps passing for up to 50 s (the function's timeout is 58 s), or until
      // 10 passes in a row changed nothing.
      { budgetMs: 50_000, passMs: 1000, idlePasses: 10 },
    ).handler;
  }),
);
