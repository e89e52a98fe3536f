/**
 * The codec for an encoding name; the MessagePack one is imported on first use.
 * @param {'json' | 'msgpack' | Codec} encoding
 * @returns {Promise<Codec>}
 */
export function loadCodec(encoding: "json" | "msgpack" | Codec): Promise<Codec>;
/**
 * A new session id, unique in this page or process: `s-<random>-<counter>`.
 * @returns {string}
 */
export function newSessionId(): string;
/**
 * Wire constants and codecs of tokenmux protocol version 1 (PROTOCOL.md).
 *
 * The JSON codec is built in; the MessagePack codec is loaded only when asked for, through a
 * dynamic import of `./msgpack.js`, so pages that stay on JSON never fetch it.
 *
 * @module
 */
export const PROTOCOL_VERSION: 1;
/** WebSocket subprotocol per encoding. */
export const SUBPROTOCOLS: Readonly<{
    json: "tokenmux.v1.json";
    msgpack: "tokenmux.v1.msgpack";
}>;
/** Server-to-client event types. */
export const EventType: Readonly<{
    READY: "ready";
    PONG: "pong";
    GOAWAY: "goaway";
    ERROR: "error";
    STREAM_START: "stream_start";
    CONTENT_CHUNK: "content_chunk";
    REASONING_CHUNK: "reasoning_chunk";
    TOOL_CALL_START: "tool_call_start";
    TOOL_CALL_DELTA: "tool_call_delta";
    TOOL_CALL_END: "tool_call_end";
    SOURCE: "source";
    METADATA: "metadata";
    CONTENT_COMPLETE: "content_complete";
    STREAM_END: "stream_end";
}>;
/** The `stream_end.reason` values. */
export const END_REASONS: readonly string[];
/** What the server accepts as a session id. */
export const SESSION_ID_PATTERN: RegExp;
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
export const jsonCodec: Codec;
/**
 * One event as it goes on the wire.
 */
export type Envelope = {
    type: string;
    session?: string;
    seq?: number;
    timestamp: number;
    data: Record<string, any>;
};
/**
 * Turns messages into frame payloads and frame payloads into objects.
 */
export type Codec = {
    name: "json" | "msgpack";
    subprotocol: string;
    /**
     * whether frames are binary
     */
    binary: boolean;
    encode: (message: object) => string | Uint8Array;
    decode: (payload: string | ArrayBuffer | Uint8Array) => any;
};
