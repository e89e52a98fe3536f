/**
 * The state of one stream as a plain object, updated by a pure reducer; what the React hook
 * and the Vue composable render. `runStream()` drives either transport (a TokenmuxClient
 * over WebSocket, or an SSE endpoint URL) through the same reducer.
 *
 * @module
 */

import { TokenmuxError } from './errors.js';
import { streamSSE } from './sse-client.js';

/**
 * @typedef {object} StreamState
 * @property {'idle' | 'connecting' | 'streaming' | 'complete' | 'cancelled' | 'error'} status
 * @property {string} text
 * @property {string | null} sessionId
 * @property {string | null} provider
 * @property {string | null} model
 * @property {Record<string, any> | null} usage
 * @property {number | null} ttftMs time from start to the first chunk, measured here
 * @property {TokenmuxError | null} error
 */

/** @returns {StreamState} */
export function createStreamState() {
  return { status: 'idle', text: '', sessionId: null, provider: null, model: null, usage: null, ttftMs: null, error: null };
}

/**
 * The state after one envelope (returns a new object when something changed).
 * @param {StreamState} state
 * @param {import('./protocol.js').Envelope} event
 * @param {number} [elapsedMs] time since the stream was started, for `ttftMs`
 * @returns {StreamState}
 */
export function reduceStreamState(state, event, elapsedMs) {
  const data = event.data ?? {};
  switch (event.type) {
    case 'stream_start':
      return { ...state, status: 'streaming', sessionId: data.session_id ?? event.session ?? null, provider: data.provider ?? null, model: data.model ?? null };
    case 'content_chunk':
      return {
        ...state,
        text: state.text + data.content,
        ttftMs: state.ttftMs ?? (elapsedMs === undefined ? null : Math.round(elapsedMs)),
      };
    case 'metadata':
      return data.usage ? { ...state, usage: data.usage } : state;
    case 'content_complete':
      return { ...state, text: data.total_content ?? state.text };
    case 'error':
      return { ...state, error: TokenmuxError.fromPayload(data, { session: event.session }) };
    case 'stream_end': {
      const reason = data.reason;
      const status = reason === 'complete' ? 'complete' : reason === 'cancelled' ? 'cancelled' : 'error';
      const error = status === 'error'
        ? state.error ?? new TokenmuxError(reason === 'timeout' ? 'timeout' : 'shutting_down', `the session ended: ${reason}`)
        : state.error;
      return { ...state, status, usage: data.usage ?? state.usage, error };
    }
    default:
      return state;
  }
}

/**
 * Run one stream through the reducer, calling `onState` after each change.
 * Resolves with the final state; never rejects (failures become `status: 'error'`).
 *
 * @param {import('./ws-client.js').TokenmuxClient | string} source a client (WebSocket) or
 *   an SSE endpoint such as '/api/stream'
 * @param {Record<string, any>} request for a client, `stream()`'s request; for SSE, the body
 * @param {{signal?: AbortSignal, onState: (state: StreamState) => void, fetch?: typeof fetch}} options
 * @returns {Promise<StreamState>}
 */
export async function runStream(source, request, { signal, onState, fetch }) {
  /** @type {StreamState} */
  let state = { ...createStreamState(), status: 'connecting' };
  onState(state);
  const began = globalThis.performance.now();
  try {
    const events = typeof source === 'string'
      ? streamSSE(source, request, { signal, fetch })
      : source.stream(request, { signal });
    for await (const event of events) {
      const next = reduceStreamState(state, event, globalThis.performance.now() - began);
      if (next !== state) onState((state = next));
    }
    if (state.status === 'connecting' || state.status === 'streaming') {
      onState((state = { ...state, status: 'cancelled' })); // the SSE request was aborted
    }
  } catch (error) {
    if (signal?.aborted) {
      state = { ...state, status: 'cancelled' };
    } else {
      const failure = error instanceof TokenmuxError ? error : new TokenmuxError('internal', String(error));
      state = { ...state, status: 'error', error: failure };
    }
    onState(state);
  }
  return state;
}
