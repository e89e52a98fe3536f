/**
 * A pure server-sent events parser (the WHATWG "event stream" grammar): feed it chunks of
 * text or bytes as they arrive, get whole events back. It knows nothing about fetch.
 *
 * ```js
 * const parser = createParser({ onEvent: (event) => console.log(event.data) });
 * parser.feed('data: hel');
 * parser.feed('lo\n\n'); // logs "hello"
 * ```
 *
 * Lines may end with CRLF, LF or CR, split anywhere between chunks; byte chunks may split a
 * multi-byte UTF-8 character. A leading byte order mark is skipped.
 *
 * @module
 */
/**
 * @typedef {object} SSEEvent
 * @property {string} data the data lines joined with "\n"
 * @property {string | undefined} event the `event:` field, if the block had one
 * @property {string | undefined} id the last event id seen so far, if any
 */
/**
 * @typedef {object} ParseError
 * @property {'invalid-retry' | 'unknown-field'} type
 * @property {string} field
 * @property {string} value
 * @property {string} line
 */
/**
 * @typedef {object} ParserCallbacks
 * @property {(event: SSEEvent) => void} onEvent called for every dispatched event
 * @property {(error: ParseError) => void} [onError] a line that breaks the grammar (ignored by default)
 * @property {(comment: string) => void} [onComment] a `:` comment line, e.g. a keep-alive
 * @property {(retryMs: number) => void} [onRetry] a valid `retry:` field
 */
/**
 * @typedef {object} Parser
 * @property {(chunk: string | Uint8Array) => void} feed parse the next piece of the stream
 * @property {() => void} reset forget any partial line or event (e.g. after a reconnect)
 */
/**
 * Create a parser that calls `onEvent` for each complete event.
 * @param {ParserCallbacks} callbacks
 * @returns {Parser}
 */
export function createParser(callbacks: ParserCallbacks): Parser;
export type SSEEvent = {
    /**
     * the data lines joined with "\n"
     */
    data: string;
    /**
     * the `event:` field, if the block had one
     */
    event: string | undefined;
    /**
     * the last event id seen so far, if any
     */
    id: string | undefined;
};
export type ParseError = {
    type: "invalid-retry" | "unknown-field";
    field: string;
    value: string;
    line: string;
};
export type ParserCallbacks = {
    /**
     * called for every dispatched event
     */
    onEvent: (event: SSEEvent) => void;
    /**
     * a line that breaks the grammar (ignored by default)
     */
    onError?: (error: ParseError) => void;
    /**
     * a `:` comment line, e.g. a keep-alive
     */
    onComment?: (comment: string) => void;
    /**
     * a valid `retry:` field
     */
    onRetry?: (retryMs: number) => void;
};
export type Parser = {
    /**
     * parse the next piece of the stream
     */
    feed: (chunk: string | Uint8Array) => void;
    /**
     * forget any partial line or event (e.g. after a reconnect)
     */
    reset: () => void;
};
