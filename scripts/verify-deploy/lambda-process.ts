/**
 * One emulated Lambda function: its asset copied to a task root that, like Lambda, provides only
 * the runtime's AWS SDK (a node_modules/@aws-sdk beside it, linked to the repository's), run in a
 * child process on Node.js 22 (the npm `node-linux-<arch>` package) by runtime.mjs, with exactly the
 * template's environment plus what Lambda sets itself, and invoked over IPC.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LambdaFunctionModel, REGION } from './template.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');

/** Variables the Lambda service sets in every function's environment (not the template's business). */
export const LAMBDA_PROVIDED = new Set([
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'AWS_LAMBDA_RUNTIME_API',
  'AWS_EXECUTION_ENV',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_XRAY_CONTEXT_MISSING',
  'AWS_XRAY_DAEMON_ADDRESS',
  '_AWS_XRAY_DAEMON_ADDRESS',
  '_AWS_XRAY_DAEMON_PORT',
  '_X_AMZN_TRACE_ID',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
  '_HANDLER',
  'TZ',
  'LANG',
  'PATH',
  'LD_LIBRARY_PATH',
  'NODE_PATH',
]);

/** The Node.js 22 binary of the npm platform package for this machine; a clear error if absent. */
export function node22(): string {
  const arch = process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'x64' : undefined;
  const pkg = `node-linux-${arch ?? process.arch}`;
  if (process.platform !== 'linux' || !arch) {
    throw new Error(
      `verify:deploy needs Linux x64/arm64 for the Node.js 22 package (${pkg}); this is ${process.platform}/${process.arch}`,
    );
  }
  let bin: string;
  try {
    bin = path.join(
      path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)),
      'bin',
      'node',
    );
  } catch {
    throw new Error(
      `${pkg} is not installed: run \`npm install\` (it is an optional dependency: the Lambda runtime's Node.js 22)`,
    );
  }
  if (!fs.existsSync(bin))
    throw new Error(`${pkg} has no bin/node (${bin}): reinstall it with \`npm install\``);
  return bin;
}

export interface InvokeResult {
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string; stack: string };
}

export interface LambdaProcessOptions {
  fn: LambdaFunctionModel;
  workDir: string;
  /** Variables the harness adds as part of the Lambda environment (credentials, endpoints, CA). */
  additions: Record<string, string>;
  onLog?: (line: string) => void;
}

/** Node major of each Lambda runtime identifier the harness can run (only 22 is installed). */
function runtimeNote(runtime: string): string | undefined {
  if (runtime === 'nodejs22.x') return undefined;
  return `template runtime ${runtime} emulated on Node.js 22`;
}

export class LambdaProcess {
  readonly taskRoot: string;
  readonly logs: string[] = [];
  readonly note: string | undefined;
  /** Invocations that returned (not errors): a function never run successfully has no usable IAM record. */
  succeeded = 0;
  invoked = 0;
  private child: ChildProcess | undefined;
  private readonly waiting = new Map<string, (r: InvokeResult) => void>();
  private envWaiter: ((reads: string[]) => void) | undefined;
  private ready: Promise<void> | undefined;
  private initError: InvokeResult['error'] | undefined;
  private exited: string | undefined;

  constructor(private readonly o: LambdaProcessOptions) {
    const base = path.join(o.workDir, o.fn.logicalId);
    this.taskRoot = path.join(base, 'task');
    this.note = runtimeNote(o.fn.runtime);
    if (!o.fn.runtime.startsWith('nodejs'))
      throw new Error(`${o.fn.logicalId}: runtime ${o.fn.runtime} is not Node.js`);
    fs.mkdirSync(base, { recursive: true });
    fs.cpSync(o.fn.assetDir, this.taskRoot, { recursive: true });
    // Like Lambda: the runtime provides the AWS SDK for JavaScript v3 and nothing else.
    fs.mkdirSync(path.join(base, 'node_modules'), { recursive: true });
    fs.symlinkSync(
      path.join(REPO_ROOT, 'node_modules', '@aws-sdk'),
      path.join(base, 'node_modules', '@aws-sdk'),
      'dir',
    );
  }

  /** The function's full process environment: the template's variables, then Lambda's, then ours. */
  environment(): Record<string, string> {
    const fn = this.o.fn;
    return {
      ...fn.environment,
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
      LAMBDA_TASK_ROOT: this.taskRoot,
      LAMBDA_RUNTIME_DIR: '/var/runtime',
      _HANDLER: fn.handler,
      TZ: ':UTC',
      LANG: 'en_US.UTF-8',
      PATH: '/usr/local/bin:/usr/bin:/bin',
      ...this.o.additions,
      VERIFY_DEPLOY_ACCOUNT: '123456789012',
    };
  }

  start(): Promise<void> {
    this.ready ??= new Promise((resolve, reject) => {
      const child = spawn(node22(), [path.join(HERE, 'runtime.mjs')], {
        cwd: this.taskRoot,
        env: this.environment(),
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      this.child = child;
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          this.logs.push(line);
          this.o.onLog?.(line);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.on(
        'message',
        (
          m: { type: string; id?: string; error?: InvokeResult['error']; reads?: string[] } & InvokeResult,
        ) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'init-error') {
            this.initError = m.error;
            resolve();
          } else if (m.type === 'result' && m.id) {
            this.waiting.get(m.id)?.(m);
            this.waiting.delete(m.id);
          } else if (m.type === 'env') this.envWaiter?.(m.reads ?? []);
        },
      );
      child.on('exit', (code, signal) => {
        this.exited = `exited (code ${code}, signal ${signal})`;
        for (const w of this.waiting.values())
          w({
            ok: false,
            error: { name: 'ProcessExited', message: this.exited, stack: this.logs.slice(-20).join('\n') },
          });
        this.waiting.clear();
        this.envWaiter?.([]);
        reject(
          new Error(
            `${this.o.fn.logicalId}: runtime ${this.exited} before it was ready:\n${this.logs.slice(-20).join('\n')}`,
          ),
        );
      });
    });
    return this.ready;
  }

  async invoke(event: unknown): Promise<InvokeResult> {
    await this.start();
    if (this.initError) return { ok: false, error: this.initError };
    if (this.exited || !this.child)
      return {
        ok: false,
        error: { name: 'ProcessExited', message: this.exited ?? 'not started', stack: '' },
      };
    const id = crypto.randomUUID();
    this.invoked++;
    return new Promise((resolve) => {
      this.waiting.set(id, (r) => {
        if (r.ok) this.succeeded++;
        resolve(r);
      });
      this.child!.send({
        type: 'invoke',
        id,
        event,
        requestId: id,
        timeoutMs: this.o.fn.timeout * 1000,
      });
    });
  }

  /** The environment variable names the function's code has read so far. */
  async envReads(): Promise<string[]> {
    if (!this.child || this.exited) return [];
    return new Promise((resolve) => {
      this.envWaiter = resolve;
      this.child!.send({ type: 'env' });
    });
  }

  /** A cold start: the next invocation runs in a new process (its init again, no warm caches). */
  async recycle(): Promise<void> {
    await this.stop();
    this.child = undefined;
    this.ready = undefined;
    this.exited = undefined;
    this.initError = undefined;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
