/**
 * Encode a value as MessagePack.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encode(value: unknown): Uint8Array;
/**
 * Decode one MessagePack value that fills `bytes` exactly.
 * @param {ArrayBuffer | ArrayBufferView} bytes
 * @returns {any}
 */
export function decode(bytes: ArrayBuffer | ArrayBufferView): any;
