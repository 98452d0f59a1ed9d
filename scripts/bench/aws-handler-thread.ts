/**
 * One Sparkplug ingest handler of `npm run bench -- anomaly --aws` in a thread of its own (its own V8
 * heap: the garbage it makes is collected on its own time, as in its own Lambda environment), with its
 * DynamoDB stores over the in-process HTTP stub. The main thread hands it invocations; it answers each
 * with its thread's CPU time less the stub's, and the requests it made.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type AwsHandlerRequest, type AwsHandlerResult, awsBenchHandler } from './anomaly.js';

const port = parentPort!;
const { rules } = workerData as { rules: boolean };
const handler = await awsBenchHandler(rules);
port.on('message', async (m: AwsHandlerRequest) => {
  const result: AwsHandlerResult = await handler(m);
  port.postMessage(result);
});
port.postMessage('ready');
