/**
 * Wire constants and codecs of tokenmux protocol version 1 (PROTOCOL.md).
 *
 * The JSON codec is built in; the MessagePack codec is loaded only when asked for, through a
 * dynamic import of `./msgpack.js`, so pages that stay on JSON never fetch it.
 *
 * @module
 */

export const PROTOCOL_VERSION = 1;

/** WebSocket subprotocol per encoding. */
export const SUBPROTOCOLS = Object.freeze({
  json: 'tokenmux.v1.json',
  msgpack: 'tokenmux.v1.msgpack',
});

/** Server-to-client event types. */
export const EventType = Object.freeze({
  READY: 'ready',
  PONG: 'pong',
  GOAWAY: 'goaway',
  ERROR: 'error',
  STREAM_START: 'stream_start',
  CONTENT_CHUNK: 'content_chunk',
  REASONING_CHUNK: 'reasoning_chunk',
  TOOL_CALL_START: 'tool_call_start',
  TOOL_CALL_DELTA: 'tool_call_delta',
  TOOL_CALL_END: 'tool_call_end',
  SOURCE: 'source',
  METADATA: 'metadata',
  CONTENT_COMPLETE: 'content_complete',
  STREAM_END: 'stream_end',
});

/** The `stream_end.reason` values. */
export const END_REASONS = Object.freeze(['complete', 'cancelled', 'error', 'timeout', 'shutdown']);

/** What the server accepts as a session id. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * @typedef {object} Envelope One event as it goes on the wire.
 * @property {string} type
 * @property {string} [session]
 * @property {number} [seq]
 * @property {number} timestamp
 * @property {Record<string, any>} data
 */

/**
 * @typedef {object} Codec Turns messages into frame payloads and frame payloads into objects.
 * @property {'json' | 'msgpack'} name
 * @property {string} subprotocol
 * @property {boolean} binary whether frames are binary
 * @property {(message: object) => string | Uint8Array} encode
 * @property {(payload: string | ArrayBuffer | Uint8Array) => any} decode
 */

/** @type {Codec} */
export const jsonCodec = Object.freeze({
  name: /** @type {'json'} */ ('json'),
  subprotocol: SUBPROTOCOLS.json,
  binary: false,
  encode: (message) => JSON.stringify(message),
  decode(payload) {
    if (typeof payload !== 'string') throw new TypeError('binary frame on a JSON connection');
    return JSON.parse(payload);
  },
});

/**
 * The codec for an encoding name; the MessagePack one is imported on first use.
 * @param {'json' | 'msgpack' | Codec} encoding
 * @returns {Promise<Codec>}
 */
export async function loadCodec(encoding) {
  if (typeof encoding === 'object' && encoding !== null) return encoding;
  if (encoding === 'json') return jsonCodec;
  if (encoding === 'msgpack') {
    const { encode, decode } = await import('./msgpack.js');
    return {
      name: 'msgpack',
      subprotocol: SUBPROTOCOLS.msgpack,
      binary: true,
      encode,
      decode(payload) {
        if (typeof payload === 'string') throw new TypeError('text frame on a MessagePack connection');
        return decode(payload);
      },
    };
  }
  throw new TypeError(`unknown encoding ${JSON.stringify(encoding)}: use 'json' or 'msgpack'`);
}

let counter = 0;

/**
 * A new session id, unique in this page or process: `s-<random>-<counter>`.
 * @returns {string}
 */
export function newSessionId() {
  counter += 1;
  const random = Math.random().toString(36).slice(2, 10);
  return `s-${random}-${counter.toString(36)}`;
}
