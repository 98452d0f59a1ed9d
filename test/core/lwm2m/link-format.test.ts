import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../functions/core/errors.js';
import {
  formatObjectList,
  parseLinkFormat,
  parseObjectList,
} from '../../../functions/core/lwm2m/link-format.js';

function failure(text: string, fn: (t: string) => unknown = parseLinkFormat): DecodeError {
  try {
    fn(text);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected DecodeError, got ${String(e)}`);
  }
  throw new Error('expected DecodeError');
}

describe('RFC 6690 link format', () => {
  it('parses targets, token and quoted params, and valueless params', () => {
    expect(
      parseLinkFormat('</sensors/temp>;rt="temperature-c";if="sensor";obs,</a>;ct=40;title="x, y; \\"z\\""'),
    ).toEqual([
      { target: '/sensors/temp', params: { rt: 'temperature-c', if: 'sensor', obs: true } },
      { target: '/a', params: { ct: '40', title: 'x, y; "z"' } },
    ]);
  });

  it('tolerates whitespace and newlines around separators, and an empty document', () => {
    expect(parseLinkFormat(' </1/0> ,\n</3/0> ; ver=1.1 ')).toEqual([
      { target: '/1/0', params: {} },
      { target: '/3/0', params: { ver: '1.1' } },
    ]);
    expect(parseLinkFormat('')).toEqual([]);
  });

  it.each([
    ['a link without "<"', '/1/0', 'links[0]'],
    ['an unclosed target', '</1/0', 'links[0]'],
    ['an unterminated quoted string', '</1/0>;rt="abc', 'links[0].rt'],
    ['a parameter without a name', '</1/0>;=3', 'links[0]'],
    ['"=" without a value', '</1/0>;ct=', 'links[0].ct'],
    ['a trailing comma', '</1/0>,', 'links[1]'],
    ['garbage after a link', '</1/0> x', 'links[0]'],
    ['a target with a space', '</1 0>', 'links[0]'],
  ])('rejects %s', (_n, text, field) => {
    const e = failure(text);
    expect(e.code).toBe('LINK_FORMAT');
    expect(e.field).toBe(field);
  });
});

describe('LwM2M object lists', () => {
  it('parses the Register example </1/0>,</3/0>,</3303/0>,</3303/1>', () => {
    expect(parseObjectList('</1/0>,</3/0>,</3303/0>,</3303/1>')).toEqual({
      objects: [
        { id: 1, instances: [0] },
        { id: 3, instances: [0] },
        { id: 3303, instances: [0, 1] },
      ],
    });
  });

  it('reads the root content formats (quoted list or single number) and versions', () => {
    expect(parseObjectList('</>;ct="110 112",</1/0>,</3303>;ver=1.1,</3303/0>,</5>')).toEqual({
      rootContentFormats: [110, 112],
      objects: [
        { id: 1, instances: [0] },
        { id: 3303, version: '1.1', instances: [0] },
        { id: 5, instances: [] },
      ],
    });
    expect(parseObjectList('</>;ct=11544,</3/0>;ver=1.2').rootContentFormats).toEqual([11544]);
    expect(parseObjectList('</3/0>;ver=1.2').objects[0]!.version).toBe('1.2');
  });

  it('handles an alternate path </lwm2m>;rt="oma.lwm2m" with its ct', () => {
    const list = parseObjectList('</lwm2m>;rt="oma.lwm2m";ct=110,</lwm2m/1/0>,</lwm2m/3303/2>');
    expect(list).toEqual({
      altPath: '/lwm2m',
      rootContentFormats: [110],
      objects: [
        { id: 1, instances: [0] },
        { id: 3303, instances: [2] },
      ],
    });
  });

  it.each([
    ['a target outside the alternate path', '</lwm2m>;rt="oma.lwm2m",</1/0>'],
    ['a non-numeric object', '</temp/0>'],
    ['an id above 65535', '</70000/0>'],
    ['a bad version', '</3>;ver=one'],
    ['a bad ct list', '</>;ct="110 x"'],
  ])('rejects %s', (_n, text) => {
    expect(failure(text, parseObjectList).code).toBe('LINK_FORMAT');
  });

  it('formats an object list that parses back to itself', () => {
    const lists = [
      {
        objects: [
          { id: 1, instances: [0] },
          { id: 3, instances: [0] },
        ],
      },
      {
        rootContentFormats: [110, 112],
        objects: [
          { id: 3303, version: '1.1', instances: [0, 1] },
          { id: 5, instances: [] },
        ],
      },
      { altPath: '/lwm2m', rootContentFormats: [112], objects: [{ id: 3, instances: [0] }] },
    ];
    expect(formatObjectList(lists[0]!)).toBe('</1/0>,</3/0>');
    expect(formatObjectList(lists[1]!)).toBe('</>;ct="110 112",</3303>;ver=1.1,</3303/0>,</3303/1>,</5>');
    expect(formatObjectList(lists[2]!)).toBe('</lwm2m>;rt="oma.lwm2m";ct=112,</lwm2m/3/0>');
    for (const list of lists) expect(parseObjectList(formatObjectList(list))).toEqual(list);
  });
});
