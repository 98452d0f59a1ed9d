import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../../functions/core/cbor/index.js';
import { DecodeError } from '../../../functions/core/errors.js';
import { decodeContent } from '../../../functions/core/lwm2m/content.js';
import { encodeLwm2mCbor } from '../../../functions/core/lwm2m/lwm2m-cbor.js';
import { ContentFormat, decodeMessage, encodePaths } from '../../../functions/core/lwm2m/message.js';
import { encodeSenml } from '../../../functions/core/senml/index.js';

const R = 1_700_000_000_000;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function failure(bytes: Uint8Array, ct: number | undefined, path?: string): DecodeError {
  try {
    decodeContent(bytes, ct, path === undefined ? { receivedAt: R } : { receivedAt: R, path });
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected DecodeError, got ${String(e)}`);
  }
  throw new Error('expected DecodeError');
}

describe('decodeContent dispatcher', () => {
  it('routes SenML CBOR, SenML JSON and LwM2M CBOR to their decoders', () => {
    const records = [{ n: '/3303/0/5700', v: 21.5 }];
    const expected = [{ name: '/3303/0/5700', time: R, timed: false, value: { kind: 'v', value: 21.5 } }];
    expect(decodeContent(encodeSenml(records, 112), ContentFormat.SenmlCbor, { receivedAt: R })).toEqual(
      expected,
    );
    expect(decodeContent(encodeSenml(records, 110), ContentFormat.SenmlJson, { receivedAt: R })).toEqual(
      expected,
    );
    const lw = encodeLwm2mCbor([{ name: '/3303/0/5700', value: { kind: 'v', value: 21.5 } }]);
    expect(decodeContent(lw, ContentFormat.Lwm2mCbor, { receivedAt: R })).toEqual(expected);
  });

  it('decodes a SenML-ETCH CBOR path list to records without values', () => {
    const records = decodeContent(encodePaths(['/3/0/0', '/1/0/1']), ContentFormat.SenmlEtchCbor, {
      receivedAt: R,
    });
    expect(records.map((r) => [r.name, r.value.kind])).toEqual([
      ['/3/0/0', 'none'],
      ['/1/0/1', 'none'],
    ]);
  });

  it('decodes the spec Read response (text/plain "Open Mobile Alliance") for /3/0/0', () => {
    const msg = decodeMessage(
      encodeCbor(
        new Map<number, string | number>([
          [18, 205],
          [2, 56],
          [19, 0],
          [7, 'Open Mobile Alliance'],
        ]),
      ),
    );
    expect(decodeContent(msg.payload!, msg.contentFormat, { receivedAt: R, path: '/3/0/0' })).toEqual([
      { name: '/3/0/0', time: R, timed: false, value: { kind: 'vs', value: 'Open Mobile Alliance' } },
    ]);
  });

  it.each([
    ['/3/0/9', '87', { kind: 'v', value: 87 }],
    ['/3303/0/5700', '-12.5e1', { kind: 'v', value: -125 }],
    ['/1/0/23', '1', { kind: 'vb', value: true }],
    ['/1/0/23', '0', { kind: 'vb', value: false }],
    ['/0/0/26', '24:0', { kind: 'vlo', value: '24:0' }],
    ['/3/0/13', '1700000000', { kind: 'v', value: 1700000000 }],
    ['/42/0/1', '123', { kind: 'vs', value: '123' }],
  ])('types text/plain at %s (%s) from the registry', (path, body, value) => {
    expect(decodeContent(text(body), ContentFormat.Text, { receivedAt: R, path })[0]!.value).toEqual(value);
  });

  it('decodes opaque and single-value CBOR for a path', () => {
    expect(
      decodeContent(Uint8Array.from([9, 8]), ContentFormat.Opaque, { receivedAt: R, path: '/5/0/0' }),
    ).toEqual([
      { name: '/5/0/0', time: R, timed: false, value: { kind: 'vd', value: Uint8Array.from([9, 8]) } },
    ]);
    expect(
      decodeContent(encodeCbor(22.5), ContentFormat.Cbor, { receivedAt: R, path: '/3303/0/5700' })[0]!.value,
    ).toEqual({ kind: 'v', value: 22.5 });
  });

  it('gives no records for an empty payload without a content format', () => {
    expect(decodeContent(new Uint8Array(0), undefined, { receivedAt: R })).toEqual([]);
  });

  it.each([
    ['text/plain without a path', text('x'), ContentFormat.Text, undefined, 'LWM2M_CONTENT_PATH'],
    ['opaque at an object path', text('x'), ContentFormat.Opaque, '/5', 'LWM2M_CONTENT_PATH'],
    [
      'text that is not an integer for an Integer resource',
      text('12a'),
      ContentFormat.Text,
      '/3/0/9',
      'LWM2M_TEXT_VALUE',
    ],
    ['text boolean "true"', text('true'), ContentFormat.Text, '/1/0/23', 'LWM2M_TEXT_VALUE'],
    ['invalid UTF-8 text', Uint8Array.from([0xc3, 0x28]), ContentFormat.Text, '/3/0/0', 'LWM2M_TEXT_VALUE'],
    ['link format', text('</1/0>'), ContentFormat.LinkFormat, undefined, 'LWM2M_CONTENT_FORMAT'],
    ['TLV', Uint8Array.from([0xc1, 0, 1]), ContentFormat.Tlv, undefined, 'LWM2M_CONTENT_FORMAT_UNSUPPORTED'],
    ['LwM2M JSON', text('{}'), ContentFormat.Lwm2mJson, undefined, 'LWM2M_CONTENT_FORMAT_UNSUPPORTED'],
    ['an unknown format', text('x'), 9999, undefined, 'LWM2M_CONTENT_FORMAT'],
    ['a payload without a format', text('x'), undefined, undefined, 'LWM2M_CONTENT_FORMAT'],
    ['an array as application/cbor', encodeCbor([1]), ContentFormat.Cbor, '/3/0/9', 'LWM2M_CBOR_VALUE'],
    ['bad SenML CBOR', Uint8Array.from([0xa0]), ContentFormat.SenmlCbor, undefined, 'SENML_NOT_ARRAY'],
  ] as [string, Uint8Array, number | undefined, string | undefined, string][])(
    'rejects %s',
    (_n, bytes, ct, path, code) => {
      expect(failure(bytes, ct, path).code).toBe(code);
    },
  );
});
