/**
 * A Timestream for LiveAnalytics stand-in behind aws-sdk-client-mock, so the TelemetryStore contract can
 * run against the Timestream adapter without the service (closed to new accounts): WriteRecords keeps
 * Timestream's record semantics (identity = every dimension + measure name + time; an identical
 * re-write is accepted silently; another value with the same Version is rejected with ExistingVersion,
 * the rest of the request is written), and Query runs the adapter's SQL on an in-memory DuckDB table
 * laid out like Timestream's (dimensions as VARCHAR, multi-measure columns typed, `time` TIMESTAMP),
 * with Timestream's functions defined as macros and its integer division kept. Rows come back the way
 * Timestream sends them: ScalarValue strings or NullValue, 100 rows per page with NextToken.
 */

import {
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  TimestreamQueryClient,
} from '@aws-sdk/client-timestream-query';
import {
  type _Record,
  TimestreamWriteClient,
  WriteRecordsCommand,
  type WriteRecordsCommandInput,
} from '@aws-sdk/client-timestream-write';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { mockClient } from 'aws-sdk-client-mock';

const DIMENSIONS = [
  'deviceId',
  'subDevice',
  'deviceType',
  'protocol',
  'site',
  'sp_group',
  'metric',
  'ds_row',
  'arr_index',
];
const MEASURES: Record<string, string> = {
  v_kind: 'VARCHAR',
  v_num: 'DOUBLE',
  v_bigint: 'BIGINT',
  v_bool: 'BOOLEAN',
  v_text: 'VARCHAR',
  r_type: 'VARCHAR',
  r_quality: 'VARCHAR',
  r_historical: 'BOOLEAN',
  r_unit: 'VARCHAR',
  r_name: 'VARCHAR',
};
const PAGE_ROWS = 100;

const lit = (s: string): string => `'${s.replaceAll("'", "''")}'`;

export interface TimestreamFake {
  writeClient: TimestreamWriteClient;
  queryClient: TimestreamQueryClient;
  /** Empties the table and the identity index (a fresh store per test). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function startTimestreamFake(database: string, table: string): Promise<TimestreamFake> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn: DuckDBConnection = await instance.connect();
  const qualified = `"${database}"."${table}"`;
  await conn.run(`CREATE SCHEMA "${database}"`);
  await conn.run('CREATE MACRO from_milliseconds(x) AS epoch_ms(CAST(x AS BIGINT))');
  await conn.run('CREATE MACRO to_milliseconds(t) AS epoch_ms(t)');
  const columns = [
    'measure_name VARCHAR',
    '"time" TIMESTAMP',
    ...DIMENSIONS.map((d) => `"${d}" VARCHAR`),
    ...Object.entries(MEASURES).map(([m, t]) => `"${m}" ${t}`),
  ];
  const create = async () => conn.run(`CREATE OR REPLACE TABLE ${qualified} (${columns.join(', ')})`);
  await create();
  /** identity → the measures as written, to tell an identical re-write from a conflicting one. */
  const identities = new Map<string, string>();
  const pages = new Map<string, QueryCommandOutput>();
  let tokens = 0;

  const writeMock = mockClient(TimestreamWriteClient);
  const queryMock = mockClient(TimestreamQueryClient);

  writeMock.on(WriteRecordsCommand).callsFake(async (input: WriteRecordsCommandInput) => {
    if (input.DatabaseName !== database || input.TableName !== table) {
      throw Object.assign(new Error(`table ${input.DatabaseName}.${input.TableName} not found`), {
        name: 'ResourceNotFoundException',
      });
    }
    const common: _Record = input.CommonAttributes ?? {};
    const rejected: Array<{ RecordIndex: number; Reason: string; ExistingVersion?: number }> = [];
    const rows: string[] = [];
    (input.Records ?? []).forEach((rec, index) => {
      const dims = new Map<string, string>();
      for (const d of [...(common.Dimensions ?? []), ...(rec.Dimensions ?? [])])
        dims.set(d.Name ?? '', d.Value ?? '');
      const measureName = rec.MeasureName ?? common.MeasureName ?? '';
      const unit = rec.TimeUnit ?? common.TimeUnit;
      if (unit !== 'MILLISECONDS') throw new Error(`the fake handles MILLISECONDS only, got ${unit}`);
      const time = rec.Time ?? common.Time ?? '';
      const measures = new Map<string, { value: string; type: string }>();
      for (const m of rec.MeasureValues ?? [])
        measures.set(m.Name ?? '', { value: m.Value ?? '', type: m.Type ?? '' });
      const identity = JSON.stringify([[...dims.entries()].sort(), measureName, time]);
      const payload = JSON.stringify([...measures.entries()].sort());
      const known = identities.get(identity);
      if (known !== undefined) {
        if (known !== payload) {
          rejected.push({
            RecordIndex: index,
            Reason:
              'A record with the same dimensions and time exists with a different measure value and the same version',
            ExistingVersion: 1,
          });
        }
        return; // identical re-write: accepted, nothing new stored
      }
      identities.set(identity, payload);
      const values = [
        lit(measureName),
        `epoch_ms(CAST(${BigInt(time)} AS BIGINT))`,
        ...DIMENSIONS.map((d) => (dims.has(d) ? lit(dims.get(d) as string) : 'NULL')),
        ...Object.entries(MEASURES).map(([name, type]) => {
          const m = measures.get(name);
          return m === undefined ? 'NULL' : `CAST(${lit(m.value)} AS ${type})`;
        }),
      ];
      rows.push(`(${values.join(', ')})`);
    });
    if (rows.length > 0) await conn.run(`INSERT INTO ${qualified} VALUES ${rows.join(', ')}`);
    if (rejected.length > 0) {
      throw Object.assign(new Error('One or more records have been rejected'), {
        name: 'RejectedRecordsException',
        RejectedRecords: rejected,
        $metadata: { httpStatusCode: 419 },
      });
    }
    return { RecordsIngested: { Total: rows.length } };
  });

  queryMock.on(QueryCommand).callsFake(async (input: QueryCommandInput) => {
    if (input.NextToken !== undefined) {
      const page = pages.get(input.NextToken);
      if (page === undefined) throw Object.assign(new Error('bad token'), { name: 'ValidationException' });
      pages.delete(input.NextToken);
      return page;
    }
    // Timestream divides BIGINTs as integers; DuckDB's `/` gives a DOUBLE (`//` is its integer division).
    const sql = (input.QueryString ?? '').replace(
      /to_milliseconds\(time\) \/ (\d+)\)/g,
      'to_milliseconds(time) // $1)',
    );
    const reader = await conn.runAndReadAll(sql);
    const names = reader.columnNames();
    const rows = reader.getRows().map((row) => ({
      Data: row.map((v) => (v === null ? { NullValue: true } : { ScalarValue: scalar(v) })),
    }));
    const ColumnInfo = names.map((Name) => ({ Name, Type: {} }));
    const out: QueryCommandOutput[] = [];
    for (let i = 0; i === 0 || i < rows.length; i += PAGE_ROWS) {
      out.push({ $metadata: {}, QueryId: 'q', ColumnInfo, Rows: rows.slice(i, i + PAGE_ROWS) });
    }
    for (let i = out.length - 2; i >= 0; i--) {
      const token = `t${++tokens}`;
      pages.set(token, out[i + 1] as QueryCommandOutput);
      (out[i] as QueryCommandOutput).NextToken = token;
    }
    return out[0] as QueryCommandOutput;
  });

  return {
    writeClient: new TimestreamWriteClient({ region: 'us-east-1' }),
    queryClient: new TimestreamQueryClient({ region: 'us-east-1' }),
    async reset() {
      identities.clear();
      pages.clear();
      await create();
    },
    async close() {
      writeMock.restore();
      queryMock.restore();
      conn.closeSync();
      instance.closeSync();
    },
  };
}

/** A DuckDB value as Timestream's ScalarValue text. */
function scalar(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'bigint') return v.toString();
  return String(v);
}
