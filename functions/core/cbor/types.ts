/** The value model of our RFC 8949 CBOR codec. */

/** A tagged item (major type 6), kept as is: the codec interprets no tag. */
export class CborTagged {
  constructor(
    readonly tag: number | bigint,
    readonly value: CborValue,
  ) {}
}

/**
 * A simple value (major type 7) other than false/true/null/undefined: 0..19 and 32..255.
 * (Simple values 24..31 are not well-formed and rejected.)
 */
export class CborSimple {
  constructor(readonly value: number) {}
}

export type CborValue =
  | number
  | bigint
  | string
  | Uint8Array
  | boolean
  | null
  | undefined
  | CborValue[]
  | Map<CborValue, CborValue>
  | CborTagged
  | CborSimple;

export interface CborDecodeOptions {
  /** Deepest nesting of arrays, maps and tags (default 32). */
  maxDepth?: number;
  /** Most data items in the whole input (default 1,048,576). */
  maxItems?: number;
}
