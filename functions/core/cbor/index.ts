/** Our own RFC 8949 CBOR codec (no npm CBOR package): strict decoder, preferred-serialisation encoder. */
export { CborReader, decodeCbor, decodeCborPrefix } from './decode.js';
export { encodeCbor } from './encode.js';
export { type CborDecodeOptions, CborSimple, CborTagged, type CborValue } from './types.js';
