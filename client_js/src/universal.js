/**
 * A drop-in `UniversalStreamClient` for apps written against the widely copied reference
 * client: `await client.createStream(endpoint, payload, allowedEvents)` gives an async
 * generator of `{type, data, …}` events, and `abort()` stops every stream of the client.
 *
 * Differences from the reference, all fixes: each stream has its own AbortController (so
 * the client can be used again after a stream ends or is aborted), lines may end with CRLF
 * or CR, UTF-8 split across chunks is decoded correctly, and HTTP errors are TokenmuxErrors
 * (still `instanceof Error`, message `HTTP <status>: …`).
 *
 * @module
 */

import { TokenmuxError } from './errors.js';
import { httpError, DONE } from './sse-client.js';
import { createParser } from './sse-parser.js';

export class UniversalStreamClient {
  /** @param {{fetch?: typeof fetch, headers?: Record<string, string>}} [options] */
  constructor(options = {}) {
    this._fetch = options.fetch;
    this._headers = options.headers ?? {};
    /** @type {Set<AbortController>} */
    this._controllers = new Set();
  }

  /**
   * POST `payload` to `endpoint` and stream its events.
   * @template [T=any]
   * @param {string} endpoint
   * @param {unknown} payload
   * @param {string[]} [allowedEvents] event types to yield (all when empty)
   * @returns {Promise<AsyncGenerator<{type: string, data: T, [key: string]: unknown}, void, unknown>>}
   */
  async createStream(endpoint, payload, allowedEvents = []) {
    const controller = new AbortController();
    this._controllers.add(controller);
    const fetchImpl = this._fetch ?? globalThis.fetch;
    let response;
    try {
      response = await fetchImpl(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...this._headers },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
      if (!response.ok) {
        const error = await httpError(response);
        error.message = `HTTP ${response.status}: ${error.message}`;
        throw error;
      }
      if (!response.body) throw new TokenmuxError('bad_response', 'Streaming not supported');
    } catch (error) {
      this._controllers.delete(controller);
      throw error;
    }
    return this._events(response.body.getReader(), allowedEvents, controller);
  }

  /** Abort every stream of this client. */
  abort() {
    for (const controller of this._controllers) controller.abort();
    this._controllers.clear();
  }

  /**
   * @param {ReadableStreamDefaultReader<Uint8Array>} reader @param {string[]} allowed
   * @param {AbortController} controller
   */
  async *_events(reader, allowed, controller) {
    /** @type {string[]} */
    const pending = [];
    const parser = createParser({ onEvent: (event) => pending.push(event.data) });
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (value) parser.feed(value);
        while (pending.length) {
          const data = /** @type {string} */ (pending.shift());
          if (data === DONE) return;
          const event = parse(data);
          if (!allowed.length || allowed.includes(event.type)) yield event;
        }
        if (done) return;
      }
    } catch (error) {
      if (controller.signal.aborted) return; // abort() ends the stream quietly, as the reference does
      throw error;
    } finally {
      this._controllers.delete(controller);
      controller.abort();
    }
  }
}

/** @param {string} data */
function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return { type: 'error', data: { message: 'Parse error', raw: data } };
  }
}
