/**
 * A small Lambda runtime emulator, run as a child process on the Lambda runtime's Node.js major
 * (22) by the deploy harness (scripts/verify-deploy/lambda-process.ts).
 *
 * The working directory is the function's task root (a copy of the asset CDK bundled). The
 * environment is the template's `Environment.Variables` plus what Lambda itself sets; the harness
 * builds it. This process wraps `process.env` in a recording proxy BEFORE importing the handler
 * module named by `_HANDLER` (`index.handler` → index.mjs / index.js / index.cjs, export `handler`),
 * then answers invocations sent over IPC with a Lambda-like context:
 *
 *   parent → { type: 'invoke', id, event, requestId, timeoutMs }
 *   child  → { type: 'result', id, ok: true, value } | { type: 'result', id, ok: false, error }
 *   parent → { type: 'env' }            child → { type: 'env', reads: string[] }
 *   child  → { type: 'ready' } | { type: 'init-error', error }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const taskRoot = env.LAMBDA_TASK_ROOT ?? process.cwd();
const handlerSpec = env._HANDLER ?? '';
const functionName = env.AWS_LAMBDA_FUNCTION_NAME ?? 'function';
const memory = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128');
const region = env.AWS_REGION ?? 'us-east-1';
const account = env.VERIFY_DEPLOY_ACCOUNT ?? '123456789012';
// The harness's own marker is not part of the function's environment.
delete env.VERIFY_DEPLOY_ACCOUNT;

/** Every variable name the function's code reads (get or `in`), in first-read order. */
const reads = new Set();
process.env = new Proxy(env, {
  get(target, key) {
    if (typeof key === 'string') reads.add(key);
    return Reflect.get(target, key);
  },
  has(target, key) {
    if (typeof key === 'string') reads.add(key);
    return Reflect.has(target, key);
  },
});

function serializeError(error) {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack ?? '' };
  }
  return { name: 'NonError', message: String(error), stack: '' };
}

function send(message) {
  if (process.send) process.send(message);
}

async function loadHandler() {
  const dot = handlerSpec.lastIndexOf('.');
  if (dot <= 0) throw new Error(`_HANDLER "${handlerSpec}" is not <module>.<export>`);
  const moduleName = handlerSpec.slice(0, dot);
  const exportPath = handlerSpec.slice(dot + 1).split('.');
  const candidates = ['.mjs', '.js', '.cjs'].map((ext) => path.join(taskRoot, moduleName + ext));
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) {
    throw new Error(
      `handler module "${moduleName}" not found in the task root (looked for ${candidates.map((c) => path.basename(c)).join(', ')})`,
    );
  }
  const mod = await import(pathToFileURL(file).href);
  let fn = mod;
  for (const part of exportPath)
    fn = fn?.[part] ?? (part === exportPath[0] ? mod.default?.[part] : undefined);
  if (typeof fn !== 'function') {
    throw new Error(`${path.basename(file)} does not export a function "${exportPath.join('.')}"`);
  }
  return fn;
}

let handler;
try {
  handler = await loadHandler();
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'init-error', error: serializeError(error) });
}

process.on('message', async (message) => {
  if (message?.type === 'env') {
    send({ type: 'env', reads: [...reads] });
    return;
  }
  if (message?.type !== 'invoke') return;
  const started = Date.now();
  const timeoutMs = message.timeoutMs ?? 3000;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${functionName}`,
    memoryLimitInMB: String(memory),
    awsRequestId: message.requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done() {},
    succeed() {},
    fail() {},
  };
  try {
    if (!handler) throw new Error('the handler failed to initialize');
    const value = await new Promise((resolve, reject) => {
      const callback = (err, result) => (err ? reject(err) : resolve(result));
      const out = handler(message.event, context, callback);
      if (out && typeof out.then === 'function') out.then(resolve, reject);
    });
    send({ type: 'result', id: message.id, ok: true, value: value === undefined ? null : value });
  } catch (error) {
    send({ type: 'result', id: message.id, ok: false, error: serializeError(error) });
  }
});
