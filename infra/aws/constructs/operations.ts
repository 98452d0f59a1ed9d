/**
 * Batch operations in AWS (ADR 0022): the operations worker on a one-minute EventBridge schedule with
 * reserved concurrency 1 (one worker drives the operations at a time); each invocation passes over
 * the active operations every second for up to 50 s. Its data grants are its row of access.ts; it
 * publishes the same device commands as the API.
 */
import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { IOT_PUBLISH, iotPublishStatement } from '../access.js';
import { nodeFunction } from './ingest-function.js';

export interface OperationsProps {
  /** functions/operations-worker/handler.ts, absolute. */
  workerEntry: string;
  /** The environment every function shares (tables, IoT endpoint). */
  environment: Record<string, string>;
  logRetention: RetentionDays;
}

export class Operations extends Construct {
  readonly worker: NodejsFunction;
  readonly schedule: Rule;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    this.worker = nodeFunction(this, 'WorkerFunction', {
      entry: props.workerEntry,
      memoryMb: 512,
      timeoutSeconds: 58,
      description: 'Dualpath operations worker: batch commands and firmware campaigns',
      logRetention: props.logRetention,
      environment: { ...props.environment, POWERTOOLS_SERVICE_NAME: 'operations-worker' },
    });
    this.worker.addToRolePolicy(iotPublishStatement(IOT_PUBLISH.operationsWorker));
    // No asynchronous retries either (Lambda's default is 2): a retried run would overlap the next
    // scheduled one; the next minute's run picks up where a failed one stopped.
    this.worker.configureAsyncInvoke({ retryAttempts: 0 });
    this.schedule = new Rule(this, 'Schedule', {
      description: 'Runs the Dualpath operations worker',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.worker, { retryAttempts: 0 })],
    });
  }
}
