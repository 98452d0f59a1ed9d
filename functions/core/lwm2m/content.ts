/**
 * One entry point for any LwM2M content format (message key 19 = CoAP Content-Format number):
 *
 * - 110 / 112 SenML JSON / CBOR, and 320 / 322 SenML-ETCH (the same structure, records without values)
 * - 11544 LwM2M CBOR
 * - 0 text/plain and 42 opaque: one record named `opts.path` (required); text is typed by the bundled
 *   registry (numbers for Integer/Unsigned/Float/Time, "0"/"1" for Boolean, "oid:iid" for Objlnk,
 *   else a string); opaque is a byte value
 * - 60 application/cbor: one CBOR primitive for `opts.path` (single-resource value, LwM2M 1.2)
 * - no content format: an empty payload gives no records; anything else is an error
 *
 * 40 (link format) is not a value format → DecodeError LWM2M_CONTENT_FORMAT; TLV (11542) and LwM2M
 * JSON (11543) → DecodeError LWM2M_CONTENT_FORMAT_UNSUPPORTED. Every other failure is a DecodeError
 * from the format's decoder.
 */
import { CborTagged, decodeCbor } from '../cbor/index.js';
import { DecodeError } from '../errors.js';
import { decodeSenml, type ResolvedRecord, type SenmlValue } from '../senml/index.js';
import { decodeLwm2mCbor } from './lwm2m-cbor.js';
import { ContentFormat } from './message.js';
import { describePath, parsePath } from './objects.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const INTEGER = /^[+-]?\d{1,20}$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const OBJLNK = /^\d{1,5}:\d{1,5}$/;

function requirePath(path: string | undefined, contentFormat: number): string {
  if (path === undefined) {
    throw new DecodeError(
      'LWM2M_CONTENT_PATH',
      `content format ${contentFormat} carries a single value: the request path is needed to name it`,
      { field: 'path' },
    );
  }
  try {
    const p = parsePath(path);
    if (p.resourceId === undefined) throw new Error('not a resource path');
  } catch {
    throw new DecodeError('LWM2M_CONTENT_PATH', `"${path}" is not a resource path for a single value`, {
      field: 'path',
    });
  }
  return path;
}

function textValue(text: string, path: string): SenmlValue {
  const type = describePath(path).type;
  const bad = (what: string): never => {
    throw new DecodeError(
      'LWM2M_TEXT_VALUE',
      `text/plain value "${text.slice(0, 40)}" at ${path} is not ${what}`,
      {
        field: 'payload',
      },
    );
  };
  switch (type) {
    case 'Integer':
    case 'Unsigned Integer':
    case 'Time':
      if (!INTEGER.test(text)) bad('an integer');
      return { kind: 'v', value: Number(text) };
    case 'Float':
      if (!FLOAT.test(text)) bad('a number');
      return { kind: 'v', value: Number(text) };
    case 'Boolean':
      if (text !== '0' && text !== '1') bad('"0" or "1"');
      return { kind: 'vb', value: text === '1' };
    case 'Objlnk':
      if (!OBJLNK.test(text)) bad('"oid:iid"');
      return { kind: 'vlo', value: text };
    default:
      return { kind: 'vs', value: text };
  }
}

function cborValue(bytes: Uint8Array, path: string): SenmlValue {
  let v = decodeCbor(bytes, { maxDepth: 2 });
  if (v instanceof CborTagged && v.tag === 1) v = v.value;
  if (typeof v === 'number' && Number.isFinite(v)) return { kind: 'v', value: v };
  if (typeof v === 'bigint') return { kind: 'v', value: Number(v) };
  if (typeof v === 'boolean') return { kind: 'vb', value: v };
  if (v instanceof Uint8Array) return { kind: 'vd', value: v };
  if (typeof v === 'string') {
    return describePath(path).type === 'Objlnk' && OBJLNK.test(v)
      ? { kind: 'vlo', value: v }
      : { kind: 'vs', value: v };
  }
  throw new DecodeError('LWM2M_CBOR_VALUE', `application/cbor value at ${path} must be a single primitive`, {
    field: 'payload',
  });
}

export function decodeContent(
  bytes: Uint8Array,
  contentFormat: number | undefined,
  opts: { receivedAt: number; path?: string },
): ResolvedRecord[] {
  switch (contentFormat) {
    case ContentFormat.SenmlCbor:
    case ContentFormat.SenmlEtchCbor:
      return decodeSenml(bytes, 112, opts);
    case ContentFormat.SenmlJson:
    case ContentFormat.SenmlEtchJson:
      return decodeSenml(bytes, 110, opts);
    case ContentFormat.Lwm2mCbor:
      return decodeLwm2mCbor(bytes, opts);
    case ContentFormat.Text: {
      const path = requirePath(opts.path, contentFormat);
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch (e) {
        throw new DecodeError('LWM2M_TEXT_VALUE', 'text/plain payload is not valid UTF-8', {
          field: 'payload',
          cause: e,
        });
      }
      return [{ name: path, time: opts.receivedAt, timed: false, value: textValue(text, path) }];
    }
    case ContentFormat.Opaque: {
      const path = requirePath(opts.path, contentFormat);
      return [{ name: path, time: opts.receivedAt, timed: false, value: { kind: 'vd', value: bytes } }];
    }
    case ContentFormat.Cbor: {
      const path = requirePath(opts.path, contentFormat);
      return [{ name: path, time: opts.receivedAt, timed: false, value: cborValue(bytes, path) }];
    }
    case undefined:
      if (bytes.length === 0) return [];
      throw new DecodeError('LWM2M_CONTENT_FORMAT', 'payload without a content format (key 19)', {
        field: 'contentFormat',
      });
    case ContentFormat.LinkFormat:
      throw new DecodeError('LWM2M_CONTENT_FORMAT', 'link format (40) is not a value format', {
        field: 'contentFormat',
      });
    case ContentFormat.Tlv:
    case ContentFormat.Lwm2mJson:
      throw new DecodeError(
        'LWM2M_CONTENT_FORMAT_UNSUPPORTED',
        `content format ${contentFormat} (${contentFormat === ContentFormat.Tlv ? 'TLV' : 'LwM2M JSON'}) is unsupported`,
        { field: 'contentFormat' },
      );
    default:
      throw new DecodeError('LWM2M_CONTENT_FORMAT', `unknown content format ${contentFormat}`, {
        field: 'contentFormat',
      });
  }
}
