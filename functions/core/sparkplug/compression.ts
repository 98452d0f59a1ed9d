/**
 * The Tahu compressed-payload convention (not in the spec; Tahu JS `sparkplug-client`, Java
 * `PayloadUtil`): an outer payload with uuid "SPBV1.0_COMPRESSED", `body` = the compressed encoded
 * inner payload, and an optional String metric `algorithm` = "DEFLATE" (default) or "GZIP".
 * Tahu JS deflates with pako (zlib-wrapped); raw DEFLATE streams are accepted too, as is a gzip
 * stream labelled DEFLATE (the stream's own header decides). Decompression is bounded by
 * `maxOutputLength`, so a decompression bomb is a DecodeError, not an out-of-memory.
 */
import { deflateSync, gunzipSync, gzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { DecodeError } from '../errors.js';
import { ErrorCode } from './codec/reader.js';
import { DataType, type SpPayload } from './types.js';

export const COMPRESSED_UUID = 'SPBV1.0_COMPRESSED';
export type CompressionAlgorithm = 'DEFLATE' | 'GZIP';

export function compressBytes(bytes: Uint8Array, algorithm: CompressionAlgorithm): Uint8Array {
  const out = algorithm === 'GZIP' ? gzipSync(bytes) : deflateSync(bytes);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The declared algorithm of an outer compressed payload (metric `algorithm`, default DEFLATE). */
export function declaredAlgorithm(outer: SpPayload): CompressionAlgorithm {
  const metric = outer.metrics.find((m) => m.name === 'algorithm');
  if (metric === undefined || metric.raw.field === 'none') return 'DEFLATE';
  if (
    metric.raw.field !== 'string' ||
    (metric.datatype !== undefined && metric.datatype !== DataType.String)
  ) {
    throw new DecodeError(
      ErrorCode.compression,
      'Sparkplug compressed payload: metric "algorithm" is not a String',
      {
        field: 'Payload.metrics[algorithm]',
      },
    );
  }
  const name = metric.raw.value.toUpperCase();
  if (name !== 'DEFLATE' && name !== 'GZIP') {
    throw new DecodeError(
      ErrorCode.compression,
      `Sparkplug compressed payload: unsupported algorithm "${metric.raw.value.slice(0, 40)}"`,
      { field: 'Payload.metrics[algorithm]' },
    );
  }
  return name;
}

function isZlib(b: Uint8Array): boolean {
  return b.length >= 2 && (b[0]! & 0x0f) === 8 && ((b[0]! << 8) | b[1]!) % 31 === 0;
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Decompresses `body`, never producing more than `maxOutput` bytes. */
export function decompressBody(
  body: Uint8Array,
  algorithm: CompressionAlgorithm,
  maxOutput: number,
): Uint8Array {
  const opts = { maxOutputLength: maxOutput };
  try {
    const out = isGzip(body)
      ? gunzipSync(body, opts)
      : isZlib(body)
        ? inflateSync(body, opts)
        : inflateRawSync(body, opts);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (cause) {
    const code = (cause as { code?: unknown } | null)?.code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || cause instanceof RangeError) {
      throw new DecodeError(
        ErrorCode.decompressedTooLarge,
        `Sparkplug compressed payload: Payload.body inflates beyond the ${maxOutput}-byte limit`,
        { field: 'Payload.body', cause },
      );
    }
    throw new DecodeError(
      ErrorCode.compression,
      `Sparkplug compressed payload: Payload.body is not valid ${algorithm} data (${String(code ?? cause)})`,
      { field: 'Payload.body', cause },
    );
  }
}
