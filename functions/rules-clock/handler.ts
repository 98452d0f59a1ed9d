/** Lambda entry point of rules-clock (EventBridge schedule): the composition root over the AWS adapters. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  awsLivePublisher,
  awsRuleHistory,
  awsRulesPorts,
  dynamoDocumentClient,
  ingestSettings,
  lazyHandler,
  loadConfig,
  telemetryStore,
} from '../shared/aws.js';
import { composeRulesClock } from './compose.js';

export const handler = lazyHandler(async () => {
  const config = loadConfig();
  const settings = ingestSettings(config);
  const doc = dynamoDocumentClient();
  // Clock-driven transitions (absence, auto-resolve) are pushed live too (ADR 0023).
  return composeRulesClock(
    {
      ...awsRulesPorts(config, doc, awsLivePublisher(config, doc)),
      ...awsRuleHistory(config, telemetryStore(config, doc)),
      clock: Date.now,
      logger: new Logger({ serviceName: 'rules-clock' }),
      metrics: new Metrics({ namespace: 'Dualpath', serviceName: 'rules-clock' }),
    },
    {
      rulesTtlMs: settings.rulesTtlMs ?? 30_000,
      // The ingest functions' interval: an absence state's replay must reach as far as they write behind.
      ...(settings.rulesStateFlushMs !== undefined ? { stateFlushMs: settings.rulesStateFlushMs } : {}),
    },
  ).handler;
});
