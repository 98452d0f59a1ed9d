import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CborValue, decodeCbor, encodeCbor } from '../../../functions/core/cbor/index.js';
import { DecodeError, ValidationError } from '../../../functions/core/errors.js';
import {
  ContentFormat,
  decodeMessage,
  decodePaths,
  encodeMessage,
  encodePaths,
  isRequest,
  isResponse,
  type Lwm2mMessage,
  MessageKey,
  Operation,
  operationName,
} from '../../../functions/core/lwm2m/message.js';

interface Example {
  hex: string;
  expected: Record<string, unknown> & { payloadText?: string; payloadHex?: string };
}
const examples = JSON.parse(
  readFileSync(new URL('../../fixtures/lwm2m/binding-examples.json', import.meta.url), 'utf8'),
) as Record<string, Example>;
const fixture = (name: string): { bytes: Uint8Array; expected: Example['expected'] } => {
  const ex = examples[name]!;
  return { bytes: Uint8Array.from(Buffer.from(ex.hex.replace(/\s+/g, ''), 'hex')), expected: ex.expected };
};
const cbor = (entries: [CborValue, CborValue][]): Uint8Array => encodeCbor(new Map(entries));
const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('utf8');

function decodeFailure(bytes: Uint8Array): DecodeError {
  try {
    decodeMessage(bytes);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected DecodeError, got ${String(e)}`);
  }
  throw new Error('expected DecodeError');
}

describe('LwM2M MQTT binding message: spec examples', () => {
  it('decodes the Read request {1:9, 2:56, 5:"/3/0/0"}', () => {
    // Prepare
    const { bytes, expected } = fixture('read-request');
    // Act
    const msg = decodeMessage(bytes);
    // Assess
    expect(msg).toEqual(expected);
    expect(isRequest(msg)).toBe(true);
    expect(isResponse(msg)).toBe(false);
    expect(operationName(msg.operation!)).toBe('Read');
  });

  it('decodes the Read response whose payload is a text string (spec defect) as UTF-8 bytes', () => {
    const { bytes, expected } = fixture('read-response');
    const msg = decodeMessage(bytes);
    expect(msg.result).toBe(205);
    expect(msg.token).toBe(56);
    expect(msg.contentFormat).toBe(ContentFormat.Text);
    expect(msg.payload).toBeInstanceOf(Uint8Array);
    expect(text(msg.payload)).toBe(expected.payloadText);
    expect(isResponse(msg)).toBe(true);
    expect(isRequest(msg)).toBe(false);
  });

  it('decodes the Send example as printed (op 23) and keeps its SenML CBOR payload bytes', () => {
    const { bytes, expected } = fixture('send-as-printed');
    const msg = decodeMessage(bytes);
    expect(msg.operation).toBe(Operation.Notify);
    expect(msg.token).toBe(1234);
    expect(msg.contentFormat).toBe(ContentFormat.SenmlCbor);
    expect(Buffer.from(msg.payload!).toString('hex')).toBe(expected.payloadHex);
  });

  it('decodes a Register with its link-format payload', () => {
    const { bytes, expected } = fixture('register');
    const msg = decodeMessage(bytes);
    const { payloadText, ...fields } = expected;
    expect({ ...msg, payload: undefined }).toEqual({ ...fields, payload: undefined });
    expect(text(msg.payload)).toBe(payloadText);
    expect(operationName(msg.operation!)).toBe('Register');
  });

  it('encodes the Read request to exactly the spec bytes', () => {
    const { bytes } = fixture('read-request');
    expect(Buffer.from(encodeMessage({ operation: 9, token: 56, uri: '/3/0/0' }))).toEqual(
      Buffer.from(bytes),
    );
  });
});

describe('LwM2M MQTT binding message: every key', () => {
  const full: Lwm2mMessage = {
    operation: Operation.WriteAttributes,
    token: 2n ** 64n - 1n,
    ep: 'urn:imei:490154203237518',
    pct: 112,
    uri: '/3303/0/5700',
    paths: encodePaths(['/3/0/0', '/3303/0/5700']),
    payload: Uint8Array.from([0, 1, 2, 255]),
    lifetime: 86400,
    version: '1.2',
    binding: 'M',
    sms: '+15555550100',
    pmin: 10,
    pmax: 60,
    gt: 30.5,
    st: 0.5,
    epmin: 1,
    epmax: 2,
    contentFormat: 11544,
    edge: true,
    hqmax: 100,
    depth: 2,
  };

  it('round-trips all keys of Table 8.7-1 and uses their integer numbers on the wire', () => {
    const bytes = encodeMessage(full);
    const raw = decodeCbor(bytes) as Map<number, CborValue>;
    expect([...raw.keys()]).toEqual(
      Object.entries(MessageKey)
        .filter(([name]) => name !== 'result')
        .map(([, k]) => k),
    );
    expect(raw.get(MessageKey.ep)).toBe(full.ep);
    expect(decodeMessage(bytes)).toEqual(full);
  });

  it('keeps unknown integer and text keys and re-encodes them', () => {
    const bytes = cbor([
      [1, 24],
      [2, 7],
      [99, 'future'],
      ['x-vendor', [1, 2]],
      [-5, true],
    ]);
    const msg = decodeMessage(bytes);
    expect(msg.operation).toBe(Operation.Send);
    expect(msg.unknown).toEqual(
      new Map<CborValue, CborValue>([
        [99, 'future'],
        ['x-vendor', [1, 2]],
        [-5, true],
      ]),
    );
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg);
  });

  it('accepts a token as a 64-bit uint (bigint beyond 2^53)', () => {
    const msg = decodeMessage(
      cbor([
        [18, 204],
        [2, 2n ** 63n],
      ]),
    );
    expect(msg.token).toBe(2n ** 63n);
  });

  it('names operations, with Unknown(n) for codes outside the table', () => {
    expect(operationName(24)).toBe('Send');
    expect(operationName(8)).toBe('Deregister');
    expect(operationName(99)).toBe('Unknown(99)');
  });
});

describe('LwM2M MQTT binding message: rejected input', () => {
  it.each([
    [
      'token as a text string',
      [
        [1, 24],
        [2, '56'],
      ],
      'LWM2M_KEY_TYPE',
      'token',
    ],
    [
      'token negative',
      [
        [1, 24],
        [2, -1],
      ],
      'LWM2M_KEY_TYPE',
      'token',
    ],
    [
      'lifetime negative',
      [
        [1, 6],
        [8, -5],
      ],
      'LWM2M_KEY_TYPE',
      'lifetime',
    ],
    [
      'lifetime non-integer',
      [
        [1, 6],
        [8, 1.5],
      ],
      'LWM2M_KEY_TYPE',
      'lifetime',
    ],
    [
      'ep not text',
      [
        [1, 6],
        [3, Uint8Array.from([1])],
      ],
      'LWM2M_KEY_TYPE',
      'ep',
    ],
    ['operation as text', [[1, 'Send']], 'LWM2M_KEY_TYPE', 'operation'],
    ['result as float', [[18, 2.05]], 'LWM2M_KEY_TYPE', 'result'],
    [
      'payload as an array',
      [
        [1, 24],
        [7, [1]],
      ],
      'LWM2M_KEY_TYPE',
      'payload',
    ],
    [
      'paths as text',
      [
        [1, 10],
        [6, '/3/0'],
      ],
      'LWM2M_KEY_TYPE',
      'paths',
    ],
    [
      'edge as integer',
      [
        [1, 14],
        [20, 1],
      ],
      'LWM2M_KEY_TYPE',
      'edge',
    ],
    [
      'content format as text',
      [
        [1, 24],
        [19, 'application/senml+cbor'],
      ],
      'LWM2M_KEY_TYPE',
      'contentFormat',
    ],
    [
      'both operation and result',
      [
        [1, 24],
        [18, 204],
      ],
      'LWM2M_BOTH_OP_AND_RESULT',
      'operation',
    ],
    ['neither operation nor result', [[2, 1]], 'LWM2M_NO_OP_OR_RESULT', 'operation'],
    [
      'a float key',
      [
        [1, 24],
        [1.5, 0],
      ],
      'LWM2M_KEY',
      'key',
    ],
    [
      'a byte-string key',
      [
        [1, 24],
        [Uint8Array.from([1]), 0],
      ],
      'LWM2M_KEY',
      'key',
    ],
  ] as [string, [CborValue, CborValue][], string, string][])('rejects %s', (_name, entries, code, field) => {
    const e = decodeFailure(cbor(entries));
    expect(e.code).toBe(code);
    expect(e.field).toBe(field);
    if (code === 'LWM2M_KEY_TYPE') expect(e.message).toContain(`(${field})`);
  });

  it('rejects a CBOR item that is not a map', () => {
    expect(decodeFailure(encodeCbor([1, 9])).code).toBe('LWM2M_NOT_MAP');
    expect(decodeFailure(encodeCbor('hello')).code).toBe('LWM2M_NOT_MAP');
  });

  it('rejects every truncation of a valid message with a DecodeError', () => {
    const bytes = fixture('register').bytes;
    for (let n = 0; n < bytes.length; n++) {
      expect(decodeFailure(bytes.subarray(0, n)).code).toMatch(/^CBOR_/);
    }
  });

  it('rejects garbage, huge lengths, deep nesting, invalid UTF-8 and 128 KB of noise with a DecodeError', () => {
    const cases = [
      Uint8Array.from([0xa1, 0x07, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Uint8Array.from([0xa2, 0x01, 0x06, 0x03, 0x62, 0xc3, 0x28]),
      Uint8Array.from([0xa2, 0x01, 0x18, 0x18, 0x63, ...Array(200).fill(0x81), 0x00]),
      new Uint8Array(128 * 1024).fill(0xa5),
      Uint8Array.from({ length: 128 * 1024 }, (_, i) => (i * 7919 + 13) & 0xff),
    ];
    for (const bytes of cases) expect(decodeFailure(bytes)).toBeInstanceOf(DecodeError);
  });

  it('throws only DecodeError for any random bytes or random CBOR maps', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (e) {
          return e instanceof DecodeError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
    const key = fc.oneof(fc.integer({ min: -2, max: 25 }), fc.string({ maxLength: 3 }));
    const value = fc.oneof(
      fc.integer(),
      fc.string(),
      fc.boolean(),
      fc.uint8Array({ maxLength: 4 }),
      fc.double(),
    );
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 8 }), (entries) => {
        try {
          const msg = decodeMessage(cbor(entries));
          return isRequest(msg) !== isResponse(msg);
        } catch (e) {
          return e instanceof DecodeError;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses to encode a message without exactly one of operation/result, or with a wrong type', () => {
    expect(() => encodeMessage({ token: 1 })).toThrow(ValidationError);
    expect(() => encodeMessage({ operation: 24, result: 204 })).toThrow(ValidationError);
    expect(() => encodeMessage({ operation: 24, lifetime: -1 })).toThrow(/lifetime/);
  });
});

describe('SenML-ETCH path lists', () => {
  it('encodes [{0: path}, ...] and decodes it back', () => {
    const bytes = encodePaths(['/3/0/0', '/3303/0/5700']);
    expect(Buffer.from(bytes).toString('hex')).toBe('82a100662f332f302f30a1006c2f333330332f302f35373030');
    expect(decodePaths(bytes)).toEqual(['/3/0/0', '/3303/0/5700']);
  });

  it('applies a base name to later records', () => {
    const bytes = encodeCbor([
      new Map<CborValue, CborValue>([
        [-2, '/3303/0/'],
        [0, '5700'],
      ]),
      new Map<CborValue, CborValue>([[0, '5701']]),
    ]);
    expect(decodePaths(bytes)).toEqual(['/3303/0/5700', '/3303/0/5701']);
  });

  it('rejects a non-array, a non-map record and an empty name', () => {
    expect(() => decodePaths(encodeCbor('x'))).toThrow(DecodeError);
    expect(() => decodePaths(encodeCbor([1]))).toThrow(/record 0 must be a map/);
    expect(() => decodePaths(encodeCbor([new Map<CborValue, CborValue>([[0, '']])]))).toThrow(/empty name/);
  });
});
