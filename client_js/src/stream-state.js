/**
 * The state of one stream as a plain object, updated by a pure reducer; what the React hook
 * and the Vue composable render. `runStream()` drives either transport (a TokenmuxClient
 * over WebSocket, or an SSE endpoint URL) through the same reducer; `resumeStream()` drives
 * a resumed session of a TokenmuxClient.
 *
 * @module
 */

import { TokenmuxError } from './errors.js';
import { applyToolCallEvent, completeToolCalls, finishDetails, sourceOf } from './rich.js';
import { streamSSE } from './sse-client.js';

/**
 * @typedef {object} StreamState
 * @property {'idle' | 'connecting' | 'streaming' | 'complete' | 'cancelled' | 'error'} status
 * @property {string} text
 * @property {string} reasoning the model's visible reasoning so far
 * @property {import('./rich.js').ToolCall[]} toolCalls in the order they began
 * @property {import('./rich.js').Source[]} sources
 * @property {string | null} finishReason from the final metadata (normalized)
 * @property {string | null} rawFinishReason the provider's own finish reason
 * @property {string | null} refusal the refusal text, when the model refused
 * @property {string | null} sessionId
 * @property {string | null} provider
 * @property {string | null} model
 * @property {Record<string, any> | null} usage
 * @property {number | null} ttftMs time from start to the first chunk, measured here
 * @property {TokenmuxError | null} error
 */

/** @returns {StreamState} */
export function createStreamState() {
  return {
    status: 'idle', text: '', reasoning: '', toolCalls: [], sources: [], finishReason: null, rawFinishReason: null,
    refusal: null, sessionId: null, provider: null, model: null, usage: null, ttftMs: null, error: null,
  };
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
  if (state.status === 'connecting' && event.type !== 'stream_start') {
    // A resumed session's replay may begin past its stream_start.
    state = { ...state, status: 'streaming', sessionId: state.sessionId ?? event.session ?? null };
  }
  switch (event.type) {
    case 'stream_start':
      return { ...state, status: 'streaming', sessionId: data.session_id ?? event.session ?? null, provider: data.provider ?? null, model: data.model ?? null };
    case 'content_chunk':
      return {
        ...state,
        text: state.text + data.content,
        ttftMs: state.ttftMs ?? (elapsedMs === undefined ? null : Math.round(elapsedMs)),
      };
    case 'reasoning_chunk':
      return {
        ...state,
        reasoning: state.reasoning + data.content,
        ttftMs: state.ttftMs ?? (elapsedMs === undefined ? null : Math.round(elapsedMs)),
      };
    case 'tool_call_start':
    case 'tool_call_delta':
    case 'tool_call_end':
      return { ...state, toolCalls: applyToolCallEvent(state.toolCalls, event.type, data).calls };
    case 'source':
      return { ...state, sources: [...state.sources, sourceOf(data)] };
    case 'metadata':
      if (data.recovered === false && typeof data.content_so_far === 'string') {
        return { ...state, text: data.content_so_far }; // the replay began past what the server kept
      }
      return { ...state, ...finishDetails(data), usage: data.usage ?? state.usage };
    case 'content_complete':
      return {
        ...state,
        text: data.total_content ?? state.text,
        reasoning: data.reasoning?.text ?? state.reasoning,
        toolCalls: Array.isArray(data.tool_calls) ? completeToolCalls(state.toolCalls, data.tool_calls) : state.toolCalls,
      };
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
export function runStream(source, request, { signal, onState, fetch }) {
  return follow(() => (typeof source === 'string'
    ? streamSSE(source, request, { signal, fetch })
    : source.stream(request, { signal })), null, { signal, onState });
}

/**
 * @typedef {object} ResumeTarget What to resume: a session of the client (e.g. one of
 *   `client.restored`), or the id and token of one to `client.resume()`.
 * @property {string} id
 * @property {string} token
 * @property {number} [afterSeq]
 */

/**
 * Like `runStream()`, for a resumed session: `target` is a Session of `client` that nobody
 * reads yet (e.g. one of `client.restored`), or `{id, token, afterSeq}` to `client.resume()`.
 * Aborting `signal` cancels the session.
 *
 * @param {import('./ws-client.js').TokenmuxClient} client
 * @param {import('./session.js').Session | ResumeTarget} target
 * @param {{signal?: AbortSignal, onState: (state: StreamState) => void}} options
 * @returns {Promise<StreamState>}
 */
export function resumeStream(client, target, { signal, onState }) {
  return follow(() => {
    if (!isSession(target)) {
      return client.resume(target.id, { token: target.token, afterSeq: target.afterSeq, signal });
    }
    signal?.throwIfAborted();
    signal?.addEventListener('abort', () => target.cancel(), { once: true });
    return target;
  }, target.id, { signal, onState });
}

/**
 * What a hook resumes on mount: `resume` if given (false: nothing), else, for a client
 * that persists its sessions, the newest restored session nobody reads yet.
 * @param {import('./ws-client.js').TokenmuxClient | string} source
 * @param {import('./session.js').Session | ResumeTarget | false | undefined} resume
 * @returns {import('./session.js').Session | ResumeTarget | null}
 */
export function resumeTarget(source, resume) {
  if (resume === false || typeof source === 'string') return null;
  if (resume) return resume;
  return [...(source.restored ?? [])].reverse().find((session) => !session._iterated) ?? null;
}

/** @param {unknown} target @returns {target is import('./session.js').Session} */
function isSession(target) {
  return typeof (/** @type {any} */ (target)?.[Symbol.asyncIterator]) === 'function';
}

/**
 * @param {() => AsyncIterable<import('./protocol.js').Envelope>} open
 * @param {string | null} resumedId the session id of a resume (whose replay says nothing
 *   about the time to the first token, so `ttftMs` stays null), null for a start
 * @param {{signal?: AbortSignal, onState: (state: StreamState) => void}} options
 * @returns {Promise<StreamState>}
 */
async function follow(open, resumedId, { signal, onState }) {
  /** @type {StreamState} */
  let state = { ...createStreamState(), status: 'connecting', sessionId: resumedId };
  onState(state);
  const began = resumedId === null ? globalThis.performance.now() : null;
  try {
    const events = open();
    for await (const event of events) {
      const next = reduceStreamState(state, event, began === null ? undefined : globalThis.performance.now() - began);
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
