/**
 * @typedef {object} SSEOptions
 * @property {AbortSignal} [signal] aborting it ends the request (the server cancels the
 *   session); the iterator then throws the signal's reason, as fetch does
 * @property {typeof fetch} [fetch] the fetch to use (default: the global one)
 * @property {Record<string, string>} [headers] extra request headers
 */
/**
 * Stream one session over SSE. Yields every envelope of the session, `stream_start` to
 * `stream_end`; returns after `data: [DONE]`.
 *
 * Throws a TokenmuxError for HTTP errors (with the server's code and `status`), for network
 * failures (`network_error`) and for a stream cut before `[DONE]` (`connection_lost`).
 * Leaving the loop early (break, return, throw) closes the request.
 *
 * @param {string | URL} url e.g. `/api/stream`
 * @param {object} body e.g. `{prompt, provider?, session_id?, llm_params?}`
 * @param {SSEOptions} [options]
 * @returns {AsyncGenerator<import('./protocol.js').Envelope, void, undefined>}
 */
export function streamSSE(url: string | URL, body: object, options?: SSEOptions): AsyncGenerator<import("./protocol.js").Envelope, void, undefined>;
/**
 * Turn an HTTP error response into a TokenmuxError (`{error: {code, message}}` bodies).
 * @param {Response} response
 */
export function httpError(response: Response): Promise<TokenmuxError>;
/** The data line that ends a tokenmux SSE stream. */
export const DONE: "[DONE]";
export type SSEOptions = {
    /**
     * aborting it ends the request (the server cancels the
     * session); the iterator then throws the signal's reason, as fetch does
     */
    signal?: AbortSignal;
    /**
     * the fetch to use (default: the global one)
     */
    fetch?: typeof fetch;
    /**
     * extra request headers
     */
    headers?: Record<string, string>;
};
import { TokenmuxError } from './errors.js';
