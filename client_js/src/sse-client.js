/**
 * `streamSSE()`: one tokenmux session over `POST /api/stream`, as an async iterator of
 * envelopes. A thin layer of fetch + ReadableStream over the pure parser in sse-parser.js.
 *
 * @module
 */

import { TokenmuxError } from './errors.js';
import { createParser } from './sse-parser.js';

/** The data line that ends a tokenmux SSE stream. */
export const DONE = '[DONE]';

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
export async function* streamSSE(url, body, options = {}) {
  if (body === null || typeof body !== 'object') {
    throw new TypeError('streamSSE(url, body): body must be an object such as { prompt: "Hi" }');
  }
  const { signal, headers = {} } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new TypeError('streamSSE() needs fetch: pass { fetch }');
  signal?.throwIfAborted();
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const response = await request(fetchImpl, url, body, headers, controller.signal);
    yield* readEvents(response, controller.signal);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    controller.abort(); // no-op after a clean end; otherwise closes the connection
  }
}

/**
 * @param {typeof fetch} fetchImpl @param {string | URL} url @param {object} body
 * @param {Record<string, string>} headers @param {AbortSignal} signal
 */
async function request(fetchImpl, url, body, headers, signal) {
  let response;
  try {
    response = await fetchImpl(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...headers },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new TokenmuxError('network_error', `request to ${url} failed: ${messageOf(error)}`, { cause: error });
  }
  if (!response.ok) throw await httpError(response);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/event-stream') || !response.body) {
    throw new TokenmuxError('bad_response', `expected text/event-stream from ${url}, got ${type || 'no body'}`);
  }
  return response;
}

/**
 * Turn an HTTP error response into a TokenmuxError (`{error: {code, message}}` bodies).
 * @param {Response} response
 */
export async function httpError(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const status = response.status;
  if (body && typeof body.error?.code === 'string') {
    return new TokenmuxError(body.error.code, body.error.message ?? body.error.code, { status });
  }
  const code = status === 429 || status >= 500 ? 'network_error' : 'http_error';
  return new TokenmuxError(code, `HTTP ${status} ${response.statusText}`.trim(), { status });
}

/**
 * @param {Response} response @param {AbortSignal} signal
 * @returns {AsyncGenerator<import('./protocol.js').Envelope, void, undefined>}
 */
async function* readEvents(response, signal) {
  /** @type {string[]} */
  const pending = [];
  const parser = createParser({ onEvent: (event) => pending.push(event.data) });
  const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal.aborted) throw error;
        throw new TokenmuxError('connection_lost', `the event stream broke: ${messageOf(error)}`, { cause: error });
      }
      if (chunk.done) break;
      parser.feed(chunk.value);
      while (pending.length) {
        const data = /** @type {string} */ (pending.shift());
        if (data === DONE) return;
        yield parseEnvelope(data);
      }
    }
    throw new TokenmuxError('connection_lost', 'the event stream ended before [DONE]');
  } finally {
    reader.releaseLock?.();
  }
}

/** @param {string} data */
function parseEnvelope(data) {
  try {
    return JSON.parse(data);
  } catch {
    throw new TokenmuxError('bad_response', `an SSE event is not JSON: ${data.slice(0, 80)}`);
  }
}

/** @param {unknown} error */
function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
