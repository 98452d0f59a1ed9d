import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordCommand,
} from '@aws-sdk/client-kinesis';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import {
  createDynamoClients,
  createKinesisClient,
  endpointsFromEnv,
  unsignedSigner,
} from '../../../infra/local/aws-clients.js';
import { type LocalEmulators, startEmulators } from '../../../infra/local/emulators.js';
import { pipeline } from '../../../infra/pipeline.js';

const dirs: string[] = [];
const running: LocalEmulators[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'dualpath-emu-'));
  dirs.push(d);
  return d;
};
const start = async (o: Parameters<typeof startEmulators>[0]) => {
  const e = await startEmulators({ env: {}, ...o });
  running.push(e);
  return e;
};

afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('local emulators', () => {
  it('creates the pipeline streams and tables, ACTIVE, with their key schema and GSI', async () => {
    // Act
    const emu = await start({});

    // Assess
    expect(emu.embedded).toEqual({ kinesis: true, dynamodb: true });
    expect(emu.kinesisPersistent).toBe(false);
    expect(emu.streamNames).toEqual({ sparkplug: 'dualpath-sparkplug', lwm2m: 'dualpath-lwm2m' });
    expect(emu.streams.sparkplug.arn).toMatch(/^arn:aws:kinesis:[^:]+:\d{12}:stream\/dualpath-sparkplug$/);
    const shards = await emu.kinesis.send(new ListShardsCommand({ StreamName: emu.streamNames.lwm2m }));
    expect(shards.Shards).toHaveLength(pipeline.streams.lwm2m.shardCount);
    const registry = (
      await emu.dynamodb.send(new DescribeTableCommand({ TableName: emu.tableNames.registry }))
    ).Table;
    expect(registry?.TableStatus).toBe('ACTIVE');
    expect(registry?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(registry?.GlobalSecondaryIndexes?.map((g) => g.IndexName)).toEqual(['gsi1']);
  });

  it('talks to the embedded emulators with the unsigned SigV4 header, never with real credentials', async () => {
    // Arrange
    const emu = await start({});
    const kinesis = createKinesisClient({ endpoint: emu.endpoints.kinesis, unsigned: true });
    const { doc } = createDynamoClients({ endpoint: emu.endpoints.dynamodb, unsigned: true });
    const real = createKinesisClient({
      endpoint: emu.endpoints.kinesis,
      unsigned: true,
      useAwsCredentials: true,
    });

    // Act
    const shards = await kinesis.send(new ListShardsCommand({ StreamName: emu.streamNames.sparkplug }));
    await doc.send(new PutCommand({ TableName: emu.tableNames.registry, Item: { pk: 'u', sk: 'v', n: 1 } }));
    const got = await doc.send(
      new GetCommand({ TableName: emu.tableNames.registry, Key: { pk: 'u', sk: 'v' } }),
    );
    const headers = (
      await unsignedSigner.sign(
        { headers: {} as Record<string, string> },
        {
          signingDate: new Date('2026-12-05T07:00:00.123Z'),
          signingRegion: 'eu-west-1',
          signingService: 'kinesis',
        },
      )
    ).headers;

    // Assess
    expect(shards.Shards?.length).toBeGreaterThan(0);
    expect(got.Item).toEqual({ pk: 'u', sk: 'v', n: 1 });
    expect(headers['x-amz-date']).toBe('20261205T070000Z');
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=dualpath-local\/20261205\/eu-west-1\/kinesis\/aws4_request, SignedHeaders=host;x-amz-date, Signature=0{64}$/,
    );
    expect(await real.config.signer({} as never)).not.toBe(unsignedSigner);
  });

  it('keeps DynamoDB data across a restart with a data dir, and ensures resources idempotently', async () => {
    // Prepare
    const dataDir = tempDir();
    const first = await start({ dataDir });
    await first.doc.send(
      new PutCommand({ TableName: first.tableNames.registry, Item: { pk: 'DEV#a', sk: 'META', n: 1 } }),
    );
    await first.stop();
    running.splice(running.indexOf(first), 1);

    // Act
    const second = await start({ dataDir });

    // Assess
    const item = await second.doc.send(
      new GetCommand({ TableName: second.tableNames.registry, Key: { pk: 'DEV#a', sk: 'META' } }),
    );
    expect(item.Item).toEqual({ pk: 'DEV#a', sk: 'META', n: 1 });
    const tables = await second.dynamodb.send(new ListTablesCommand({}));
    expect(tables.TableNames?.sort()).toEqual(['dualpath-events', 'dualpath-registry', 'dualpath-state']);
  });

  it('outlives a SIGTERM sent to the whole process group, and stops when the stack says so', async () => {
    // Prepare
    const e = await start({});
    expect(e.pids).toHaveLength(2);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    // Act: what `timeout` or `kill -- -PGID` does to every process of the group
    for (const pid of e.pids) process.kill(pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));

    // Assess: still serving (the stack drains through them), then gone after stop()
    const tables = await e.dynamodb.send(new ListTablesCommand({}));
    expect(tables.TableNames).toContain('dualpath-registry');
    await e.kinesis.send(new ListShardsCommand({ StreamName: e.streamNames.sparkplug }));
    await e.stop();
    running.splice(running.indexOf(e), 1);
    expect(e.pids.map(alive)).toEqual([false, false]);
  });

  it('keeps nothing without a data dir', async () => {
    const first = await start({});
    await first.doc.send(new PutCommand({ TableName: first.tableNames.state, Item: { pk: 'x', sk: 'y' } }));
    const second = await start({});
    const item = await second.doc.send(
      new GetCommand({ TableName: second.tableNames.state, Key: { pk: 'x', sk: 'y' } }),
    );
    expect(item.Item).toBeUndefined();
  });

  it('uses external endpoints instead of starting emulators, and only ensures the resources there', async () => {
    // Prepare: an "external" service (another emulator pair) reached by URL, as LocalStack would be.
    const outside = await start({});
    await outside.kinesis.send(
      new PutRecordCommand({
        StreamName: outside.streamNames.sparkplug,
        PartitionKey: 'k',
        Data: Buffer.from('x'),
      }),
    );

    // Act
    const emu = await start({
      env: {
        AWS_ENDPOINT_URL_KINESIS: outside.endpoints.kinesis,
        AWS_ENDPOINT_URL: outside.endpoints.dynamodb,
      },
    });

    // Assess: the same stream (its record is there), the same tables, nothing embedded.
    expect(emu.embedded).toEqual({ kinesis: false, dynamodb: false });
    expect(emu.endpoints).toEqual(outside.endpoints);
    expect(emu.streams.sparkplug.createdAt).toBe(outside.streams.sparkplug.createdAt);
    const shardId = (await emu.kinesis.send(new ListShardsCommand({ StreamName: emu.streamNames.sparkplug })))
      .Shards![0]!.ShardId!;
    const it0 = await emu.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: emu.streamNames.sparkplug,
        ShardId: shardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const got = await emu.kinesis.send(new GetRecordsCommand({ ShardIterator: it0.ShardIterator }));
    expect(got.Records?.map((r) => Buffer.from(r.Data!).toString())).toEqual(['x']);
  });

  it('reads external endpoints from the environment, service-specific first', () => {
    expect(endpointsFromEnv({})).toEqual({});
    expect(endpointsFromEnv({ AWS_ENDPOINT_URL: 'http://localhost:4566' })).toEqual({
      kinesis: 'http://localhost:4566',
      dynamodb: 'http://localhost:4566',
    });
    expect(
      endpointsFromEnv({ AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_DYNAMODB: 'http://b:2' }),
    ).toEqual({ kinesis: 'http://a:1', dynamodb: 'http://b:2' });
    expect(() => endpointsFromEnv({ AWS_ENDPOINT_URL_KINESIS: 'localhost:4566' })).toThrow(ValidationError);
  });
});
