/**
 * `npm run bench -- coldstart [--runs 10] [--assembly <cdk.out>] [--without-node-options] [--cpu-prof <dir>] [--cpu-prof-interval <µs>] [--first-request]`: what a Lambda cold start costs the
 * functions `cdk deploy` ships. Synthesizes the default variant (or reads an assembly), then for each
 * function starts fresh Node.js 22 processes in a task root like Lambda's (the bundle, plus the
 * runtime's AWS SDK beside it), with the template's environment, and measures:
 *   import — loading the bundle (module evaluation: what Lambda's INIT phase runs);
 *   build  — the first invocation's composition (lazyHandler builds the function's root then) on an
 *            event that needs no AWS call (an empty Kinesis batch; an unknown API route);
 *   init   — import + build: the time before the first event can be handled.
 * --first-request: the first invocation is a request that calls AWS instead, answered over HTTPS by a
 * local stub of the endpoints (AWS_ENDPOINT_URL and IOT_DATA_ENDPOINT, its self-signed certificate
 * through NODE_EXTRA_CA_CERTS; DynamoDB finds nothing, a secret has a value, anything else answers
 * `{}`): a one-record Sparkplug NBIRTH or LwM2M Send batch from an unregistered device (registry and
 * state lookups, the quarantine event written; the LwM2M response published), and GET /devices
 * through the authorizer's decision (a registry scan). Its "build" column is then that whole first
 * invocation (the SDK clients' first calls included).
 * Prints the medians and the bundle sizes, and the CPU time (user + system) of import and init: on a
 * loaded machine wall time waits for a core, CPU time much less so. Node's own bootstrap (~40 ms) is not included: Lambda's
 * runtime process is up before INIT.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import type { Benchmark } from '../../infra/cli/bench.js';
import { node22 } from '../verify-deploy/lambda-process.js';
import { synthesize } from '../verify-deploy/main.js';
import { type FunctionModel, loadAssembly, TemplateModel } from '../verify-deploy/template.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The events that reach a built handler without any AWS call. */
const EVENTS: Record<string, unknown> = {
  ingest: { Records: [] },
  api: {
    resource: '/{proxy+}',
    path: '/coldstart-probe',
    httpMethod: 'GET',
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: 'coldstart-probe' },
    stageVariables: null,
    requestContext: { requestId: 'coldstart', authorizer: { principal: 'admin', role: 'admin' } },
    body: null,
    isBase64Encoded: false,
  },
};

/** Typical first requests (--first-request), per function kind (sparkplug / lwm2m ingest, api). */
function firstRequestEvent(fn: FunctionModel, kind: keyof typeof EVENTS): unknown {
  const now = Date.now();
  const kinesis = (partitionKey: string, topic: string, payload: Uint8Array, clientId: string) => ({
    Records: [
      {
        eventSource: 'aws:kinesis',
        eventID: 'shardId-000000000000:1',
        kinesis: {
          partitionKey,
          sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
          approximateArrivalTimestamp: now / 1000,
          data: Buffer.from(
            JSON.stringify({
              payload: Buffer.from(payload).toString('base64'),
              topic,
              receivedAt: now,
              clientId,
            }),
          ).toString('base64'),
        },
      },
    ],
  });
  if (kind === 'api')
    return {
      ...(EVENTS.api as object),
      path: '/devices',
      pathParameters: { proxy: 'devices' },
      requestContext: {
        requestId: 'coldstart',
        authorizer: { principal: JSON.stringify({ kind: 'admin' }) },
      },
    };
  if (fn.logicalId.toLowerCase().includes('lwm2m')) {
    const payload = encodeMessage({
      operation: Operation.Send,
      token: 1,
      contentFormat: 112,
      payload: encodeSenml(
        Array.from({ length: 10 }, (_, i) => ({ n: `/3303/${i}/5700`, t: now / 1000, v: 20 + i })),
        112,
      ),
    });
    return kinesis('ep-cold', 'lwm2m/rd/ep-cold', payload, 'ep-cold');
  }
  const payload = encodePayload({
    timestamp: now,
    seq: 0,
    metrics: Array.from({ length: 10 }, (_, i) => ({
      name: `m${i}`,
      timestamp: now,
      datatype: DataType.Double,
      value: 20 + i,
    })),
  });
  return kinesis('plant/edge-cold', 'spBv1.0/plant/NBIRTH/edge-cold', payload, 'edge-cold');
}

/** A stub of the AWS endpoints for --first-request: DynamoDB finds nothing, a secret has a value, anything else is `{}`. */
async function stubEndpoint(dir: string): Promise<{
  url: string;
  authority: string;
  caFile: string;
  calls: Map<string, number>;
  close: () => void;
}> {
  const keyFile = path.join(dir, 'stub-key.pem');
  const caFile = path.join(dir, 'stub-cert.pem');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile],
      ...['-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'],
    ],
    { stdio: 'ignore' },
  );
  const calls = new Map<string, number>();
  const EMPTY: Record<string, unknown> = {
    GetItem: {},
    BatchGetItem: { Responses: {}, UnprocessedKeys: {} },
    Query: { Items: [], Count: 0, ScannedCount: 0 },
    Scan: { Items: [], Count: 0, ScannedCount: 0 },
    BatchWriteItem: { UnprocessedItems: {} },
    // Functions that read the admin key at their first request (the API function before ADR 0025
    // amendment 2, the authorizer) get one.
    GetSecretValue: { SecretString: 'coldstart-admin-key-0123456789abcdefghijklmnopqrstuvwxyz' },
  };
  const server = https.createServer(
    { key: fs.readFileSync(keyFile), cert: fs.readFileSync(caFile) },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        const action = target.includes('.')
          ? target.split('.')[1]!
          : req.url?.startsWith('/topics/')
            ? 'iot:Publish'
            : `${req.method} ${req.url?.split('?')[0]}`;
        calls.set(action, (calls.get(action) ?? 0) + 1);
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify(EMPTY[action] ?? {}));
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const authority = `localhost:${(server.address() as AddressInfo).port}`;
  return {
    url: `https://${authority}`,
    authority,
    caFile,
    calls,
    close: () => server.close(),
  };
}

/** The probe run in each fresh process: import the bundle, then one invocation; prints the times. */
const PROBE = `
import { pathToFileURL } from 'node:url';
const [file, exportName, eventJson] = process.argv.slice(1);
// Lambda's runtime has written through stdout/stderr before INIT: open them first (Node opens them lazily).
void process.stdout; void process.stderr;
const c0 = process.cpuUsage();
const t0 = performance.now();
const mod = await import(pathToFileURL(file).href);
const t1 = performance.now();
const c1 = process.cpuUsage(c0);
const handler = mod[exportName] ?? mod.default?.[exportName];
const context = { functionName: 'probe', awsRequestId: 'probe', getRemainingTimeInMillis: () => 30000 };
let error;
try { await handler(JSON.parse(eventJson), context); } catch (e) { error = String(e?.message ?? e); }
const t2 = performance.now();
const c2 = process.cpuUsage(c0);
const cpu = (c) => (c.user + c.system) / 1000;
process.stdout.write(JSON.stringify({ importMs: t1 - t0, buildMs: t2 - t1, importCpuMs: cpu(c1), initCpuMs: cpu(c2), error }) + '\\n');
process.exit(0);
`;

interface Sample {
  importMs: number;
  buildMs: number;
  /** CPU time (user + system, every thread) of the import, and of import + build. */
  importCpuMs: number;
  initCpuMs: number;
  error?: string;
}

function kindOf(fn: FunctionModel): keyof typeof EVENTS | undefined {
  const id = fn.logicalId.toLowerCase();
  if (id.includes('ingest')) return 'ingest';
  if (id.includes('api') && !id.includes('authorizer')) return 'api';
  return undefined;
}

function runProbe(
  taskRoot: string,
  file: string,
  exportName: string,
  event: unknown,
  env: Record<string, string>,
  profileDir?: string,
  profileIntervalUs?: string,
) {
  return new Promise<Sample>((resolve, reject) => {
    const child = spawn(
      node22(),
      [
        ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
        ...(profileDir && profileIntervalUs ? ['--cpu-prof-interval', profileIntervalUs] : []),
        '--input-type=module',
        '-e',
        PROBE,
        file,
        exportName,
        JSON.stringify(event),
      ],
      {
        cwd: taskRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('close', () => {
      const line = out.split('\n').find((l) => l.startsWith('{"importMs"'));
      if (!line) reject(new Error(`probe printed no timing: ${err.slice(-400)}`));
      else resolve(JSON.parse(line) as Sample);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function dirBytes(dir: string, ext: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p, ext);
    else if (e.name.endsWith(ext)) total += fs.statSync(p).size;
  }
  return total;
}

export const benchmark: Benchmark = {
  summary: 'cold start of the bundled Lambda functions on Node.js 22 (import + first build), bundle sizes',
  async run(args) {
    const runs = Math.max(3, Number(arg(args, '--runs') ?? 10));
    let outdir = arg(args, '--assembly');
    // --cpu-prof <dir>: a V8 CPU profile of each function's first run (<dir>/<logicalId>/*.cpuprofile).
    const profileDir = arg(args, '--cpu-prof');
    // --cpu-prof-interval <µs>: the profile's sampling interval (V8's default is 1000 µs).
    const profileInterval = arg(args, '--cpu-prof-interval');
    const firstRequest = args.includes('--first-request');
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dualpath-coldstart-'));
    const stub = firstRequest ? await stubEndpoint(work) : undefined;
    try {
      if (!outdir) {
        outdir = path.join(work, 'cdk.out');
        process.stdout.write('synthesizing the default variant ...\n');
        const synth = await synthesize({}, outdir);
        if (!synth.ok) throw new Error(`cdk synth failed:\n${synth.output.slice(-2000)}`);
      }
      const stack = loadAssembly(outdir).stacks[0]!;
      const model = new TemplateModel(stack.template, {
        region: 'eu-west-1',
        account: '123456789012',
        stackName: stack.stackName,
        assetDirs: stack.assetDirs,
        overrides: customResourceAttributes(stack.template),
      });
      process.stdout.write(
        `Cold start, node ${(await runProbeVersion()).trim()}, fresh process per run, median of ${runs}\n` +
          `${'function'.padEnd(34)}${'bundle KB'.padStart(10)}${'map KB'.padStart(9)}${'import ms'.padStart(11)}${'build ms'.padStart(10)}${'init ms'.padStart(9)}${'import cpu'.padStart(12)}${'init cpu'.padStart(10)}\n`,
      );
      for (const fn of model.functions()) {
        const kind = kindOf(fn);
        if (!kind || !fn.assetDir) continue;
        const base = path.join(work, fn.logicalId);
        const taskRoot = path.join(base, 'task');
        fs.cpSync(fn.assetDir, taskRoot, { recursive: true });
        fs.mkdirSync(path.join(base, 'node_modules'), { recursive: true });
        fs.symlinkSync(
          path.join(REPO_ROOT, 'node_modules', '@aws-sdk'),
          path.join(base, 'node_modules', '@aws-sdk'),
        );
        const [moduleName, exportName] = fn.handler.split('.') as [string, string];
        const file = ['.mjs', '.js', '.cjs']
          .map((x) => path.join(taskRoot, moduleName + x))
          .find(fs.existsSync);
        if (!file) continue;
        const env: Record<string, string> = {
          ...fn.environment,
          // --without-node-options: what the template's NODE_OPTIONS (e.g. --enable-source-maps) costs.
          ...(args.includes('--without-node-options') ? { NODE_OPTIONS: '' } : {}),
          AWS_REGION: 'eu-west-1',
          AWS_ACCESS_KEY_ID: 'AKIDCOLDSTART',
          AWS_SECRET_ACCESS_KEY: 'coldstart',
          AWS_LAMBDA_FUNCTION_NAME: fn.functionName,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
          LAMBDA_TASK_ROOT: taskRoot,
          ...(stub
            ? {
                AWS_ENDPOINT_URL: stub.url,
                IOT_DATA_ENDPOINT: stub.authority,
                NODE_EXTRA_CA_CERTS: stub.caFile,
              }
            : {}),
          PATH: process.env.PATH ?? '/usr/bin:/bin',
        };
        const samples: Sample[] = [];
        const event = stub ? firstRequestEvent(fn, kind) : EVENTS[kind];
        stub?.calls.clear();
        for (let r = 0; r < runs; r++)
          samples.push(
            await runProbe(
              taskRoot,
              file,
              exportName,
              event,
              env,
              profileDir && r === 0 ? path.join(profileDir, fn.logicalId) : undefined,
              profileInterval,
            ),
          );
        const failed = samples.find((s) => s.error);
        const imp = median(samples.map((s) => s.importMs));
        const build = median(samples.map((s) => s.buildMs));
        const init = median(samples.map((s) => s.importMs + s.buildMs));
        const importCpu = median(samples.map((s) => s.importCpuMs));
        const initCpu = median(samples.map((s) => s.initCpuMs));
        const kb = (n: number) => (n / 1024).toFixed(0);
        process.stdout.write(
          `${(fn.cdkPath?.split('/').slice(1, -1).join('/') ?? fn.logicalId).slice(0, 33).padEnd(34)}${kb(dirBytes(taskRoot, '.mjs') + dirBytes(taskRoot, '.js')).padStart(10)}${kb(dirBytes(taskRoot, '.map')).padStart(9)}${imp.toFixed(1).padStart(11)}${build.toFixed(1).padStart(10)}${init.toFixed(1).padStart(9)}${importCpu.toFixed(1).padStart(12)}${initCpu.toFixed(1).padStart(10)}${failed ? `  (first call: ${failed.error?.slice(0, 80)})` : ''}\n`,
        );
        if (stub)
          process.stdout.write(
            `${''.padEnd(34)}AWS calls per run: ${[...stub.calls].map(([a, n]) => `${a} ×${n / runs}`).join(', ') || 'none'}\n`,
          );
      }
      process.stdout.write('target: init <= 100 ms for the ingest and API functions\n');
    } finally {
      stub?.close();
      fs.rmSync(work, { recursive: true, force: true });
    }
  },
};

/** Placeholders for attributes only a deployment knows (custom resources: the IoT endpoint, ...). */
function customResourceAttributes(template: {
  Resources: Record<string, { Type: string }>;
}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const att = (v as Record<string, unknown>)['Fn::GetAtt'];
      if (Array.isArray(att) && template.Resources[att[0] as string]?.Type.startsWith('Custom::')) {
        out[`${att[0]}.${att[1]}`] = 'placeholder.invalid';
      }
      Object.values(v).forEach(walk);
    }
  };
  walk(template.Resources);
  return out;
}

function runProbeVersion(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(node22(), ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('close', () => resolve(out));
  });
}
