import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalEmulators, startEmulators } from '../../../infra/local/emulators.js';
import {
  type KinesisRecords,
  KinesisWireError,
  type ReadRecord,
  sdkRecords,
  wireRecords,
} from '../../../infra/local/kinesis-records.js';

let emu: LocalEmulators;
let stream: string;

beforeAll(async () => {
  emu = await startEmulators({ env: {} });
  stream = emu.streamNames.lwm2m;
});
afterAll(async () => {
  await emu.stop();
});

async function readAll(port: KinesisRecords): Promise<ReadRecord[]> {
  const out: ReadRecord[] = [];
  const shards = await emu.kinesis.send(new ListShardsCommand({ StreamName: stream }));
  for (const shard of shards.Shards ?? []) {
    let iterator = (
      await emu.kinesis.send(
        new GetShardIteratorCommand({
          StreamName: stream,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    for (let empty = 0; iterator && empty < 2; ) {
      const page = await port.getRecords(iterator, 1000);
      out.push(...page.records);
      empty = page.records.length === 0 ? empty + 1 : 0;
      iterator = page.nextShardIterator;
    }
  }
  return out.sort((a, b) => (BigInt(a.sequenceNumber) < BigInt(b.sequenceNumber) ? -1 : 1));
}

describe('Kinesis hot-path port', () => {
  it('the stack uses the wire client for its own kinesalite', () => {
    // Assert: the embedded emulator gets the plain-HTTP port, not the SDK wrapper
    expect(emu.embedded.kinesis).toBe(true);
    expect(typeof (emu.records as { destroy?: unknown }).destroy).toBe('function');
  });

  it('reads back what either client put, byte for byte, the same through both', async () => {
    // Arrange: binary data (every byte value), JSON-hostile partition keys, through both put paths
    const wire = emu.records;
    const sdk = sdkRecords(emu.kinesis);
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const viaWire = [
      { data: bytes, partitionKey: 'quote " and \\ backslash' },
      { data: new TextEncoder().encode('{"topic":"lwm2m/rd/ep-1"}'), partitionKey: 'ep-1' },
    ];
    const viaSdk = [{ data: bytes.subarray(10, 20), partitionKey: 'ünïcode/ep-2' }];

    // Act
    const putWire = await wire.putRecords(stream, viaWire);
    const putSdk = await sdk.putRecords(stream, viaSdk);
    const readWire = await readAll(wire);
    const readSdk = await readAll(sdk);

    // Assert
    expect(putWire).toEqual([{}, {}]);
    expect(putSdk).toEqual([{}]);
    expect(readWire).toEqual(readSdk);
    const mine = readWire.filter((r) =>
      ['quote " and \\ backslash', 'ep-1', 'ünïcode/ep-2'].includes(r.partitionKey),
    );
    expect(mine.map((r) => [r.partitionKey, Buffer.from(r.data, 'base64')])).toEqual([
      ['quote " and \\ backslash', Buffer.from(bytes)],
      ['ep-1', Buffer.from('{"topic":"lwm2m/rd/ep-1"}')],
      ['ünïcode/ep-2', Buffer.from(bytes.subarray(10, 20))],
    ]);
    for (const r of mine) {
      expect(r.sequenceNumber).toMatch(/^\d+$/);
      expect(r.arrivalSeconds).toBeGreaterThan(Date.now() / 1000 - 60);
    }
  });

  it('names a refused call as the SDK does (the service error type), through both clients', async () => {
    // Arrange
    const record = [{ data: new Uint8Array([1]), partitionKey: 'k' }];
    const errorOf = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: Error) => e.name,
      );

    // Act
    const wireMissing = await errorOf(emu.records.putRecords('no-such-stream', record));
    const sdkMissing = await errorOf(sdkRecords(emu.kinesis).putRecords('no-such-stream', record));
    const wireBadIterator = await errorOf(emu.records.getRecords('not-an-iterator', 10));

    // Assert
    expect(wireMissing).toBe('ResourceNotFoundException');
    expect(sdkMissing).toBe('ResourceNotFoundException');
    expect(wireBadIterator).toMatch(/Exception$/);
  });

  it('fails a call to a closed endpoint instead of hanging, and honours an abort signal', async () => {
    // Arrange
    const dead = wireRecords({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', requestTimeoutMs: 2000 });
    const abort = new AbortController();
    abort.abort();

    // Act
    const refused = await dead
      .putRecords(stream, [{ data: new Uint8Array([1]), partitionKey: 'k' }])
      .catch((e) => e);
    const aborted = await emu.records
      .putRecords(stream, [{ data: new Uint8Array([1]), partitionKey: 'k' }], abort.signal)
      .catch((e) => e);
    dead.destroy();

    // Assert
    expect(refused).toBeInstanceOf(Error);
    expect((refused as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect((aborted as Error).name).toBe('AbortError');
  });

  it('counts its calls by operation like the SDK clients', async () => {
    // Arrange
    const calls: Record<string, number> = {};
    const port = wireRecords({ endpoint: emu.endpoints.kinesis, region: 'us-east-1', calls });

    // Act
    await port.putRecords(stream, [{ data: new Uint8Array([2]), partitionKey: 'k' }]);
    await port.getRecords('bad', 1).catch((e: unknown) => expect(e).toBeInstanceOf(KinesisWireError));
    port.destroy();

    // Assert
    expect(calls).toEqual({ PutRecords: 1, GetRecords: 1 });
  });

  it('reports an answer that is not the service JSON as a transient InternalFailure, not as a refusal', async () => {
    // Arrange: an endpoint that answers 502 with an HTML page
    const server = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = wireRecords({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
    });

    // Act
    const error = await port
      .putRecords(stream, [{ data: new Uint8Array([1]), partitionKey: 'k' }])
      .catch((e) => e);
    port.destroy();
    await new Promise((r) => server.close(r));

    // Assert
    expect(error).toBeInstanceOf(KinesisWireError);
    expect((error as KinesisWireError).name).toBe('InternalFailure');
    expect((error as KinesisWireError).statusCode).toBe(502);
  });
});
