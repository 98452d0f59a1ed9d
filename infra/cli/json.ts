import { toJsonSafe } from '../../functions/api/routes/context.js';

/** One JSON line in the API's rendering (bigint beyond 2^53 as text, bytes as base64): CLI output and local HTTP bodies. */
export function stringifyLine(value: unknown): string {
  return JSON.stringify(toJsonSafe(value));
}
