import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodePayload, encodePayload } from '../../../functions/core/sparkplug/codec.js';
import type { SpPayload } from '../../../functions/core/sparkplug/types.js';
import { buildGoldenVectors } from '../../fixtures/sparkplug/golden.js';

const golden = JSON.parse(
  readFileSync(new URL('../../fixtures/sparkplug/golden.json', import.meta.url), 'utf8'),
) as Record<string, string>;
const T = 1_700_000_000_000;
const bytes = (name: string): Uint8Array => Uint8Array.from(Buffer.from(golden[name]!, 'hex'));
const values = (p: SpPayload): unknown[] => p.metrics.map((m) => m.value);

describe('golden vectors (pinned hex from the generated protobufjs encoder)', () => {
  it('are still what the independent encoder produces', () => {
    expect(buildGoldenVectors()).toEqual(golden);
  });

  it.each(Object.keys(golden))('%s re-encodes byte for byte with our encoder', (name) => {
    expect(Buffer.from(encodePayload(decodePayload(bytes(name)))).toString('hex')).toBe(golden[name]);
  });

  it('ddata decodes to the expected values, aliases, timestamps and seq', () => {
    const p = decodePayload(bytes('ddata'));

    expect(p.timestamp).toBe(T);
    expect(p.seq).toBe(7n);
    expect(p.metrics.map((m) => [m.name, m.alias, m.timestamp])).toEqual([
      ['temp', 1n, T],
      ['count', 2n, T],
      ['pressure', 3n, T],
      ['running', 4n, T],
      ['mode', 5n, T],
    ]);
    expect(values(p)).toEqual([12.100000381469727, -5, 1013.25, true, 'AUTO']);
  });

  it('integers decode with width, sign, both UInt32 fields and 64-bit precision', () => {
    expect(values(decodePayload(bytes('integers')))).toEqual([
      -87,
      -128,
      4294967295,
      4294967295,
      -(2n ** 63n),
      2n ** 64n - 1n,
      T,
      null,
    ]);
  });

  it('arrays decode per their layouts', () => {
    expect(values(decodePayload(bytes('arrays')))).toEqual([
      [true, false, true, true, false, false, false, false, true],
      ['', 'a', 'ü'],
      [-87, 1],
      [1.5],
    ]);
  });

  it('dataset decodes typed cells and the null cell', () => {
    expect(decodePayload(bytes('dataset')).metrics[0]!.value).toEqual({
      numOfColumns: 4n,
      columns: ['a', 'b', 'c', 'd'],
      types: [3, 12, 11, 10],
      rows: [
        [-1, 'x', false, 0.5],
        [2, null, true, -1],
      ],
    });
  });

  it('templates decode definition parameters and nested instances', () => {
    const [def, inst] = decodePayload(bytes('templates')).metrics;

    expect(def!.value).toMatchObject({
      version: 'v1',
      isDefinition: true,
      parameters: [{ name: 'rated', type: 3, value: 400 }],
      metrics: [{ name: 'rpm', value: 0 }],
    });
    expect(inst!.value).toMatchObject({
      templateRef: 'Motor',
      isDefinition: false,
      metrics: [
        { name: 'rpm', value: 1450.5 },
        { name: 'Sub', value: { templateRef: 'Motor', metrics: [{ name: 'rpm', value: 3 }] } },
      ],
    });
  });

  it('properties decode Quality, nested sets and lists, MetaData and flags', () => {
    const m = decodePayload(bytes('properties')).metrics[0]!;

    expect(m).toMatchObject({
      name: 'level',
      value: 3.5,
      isHistorical: true,
      isTransient: true,
      metadata: { contentType: 'text/plain', size: 12n, description: 'tank level' },
    });
    expect(m.properties?.keys).toEqual(['Quality', 'eng', 'list']);
    expect(m.properties?.values.map((v) => v.value)).toMatchObject([
      192,
      { keys: ['unit'], values: [{ value: 'm' }] },
      [
        { keys: ['k'], values: [{ value: true }] },
        { keys: [], values: [] },
      ],
    ]);
  });
});
