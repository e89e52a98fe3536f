/**
 * One streaming session of a TokenmuxClient: an async iterator over its envelopes plus the
 * state a page needs (text so far, reasoning, tool calls, sources, provider, model, resume
 * token, last seq), with optional callbacks for reasoning, tool calls and sources.
 *
 * The session de-duplicates by `seq`, so events replayed after a resume are never seen
 * twice. It settles exactly once: on `stream_end`, or when it fails without one (refused
 * start, lost connection).
 *
 * @module
 */

import { TokenmuxError } from './errors.js';
import { applyToolCallEvent, completeToolCalls, finishDetails, notify, sourceOf } from './rich.js';

/**
 * @typedef {object} EndResult
 * @property {'complete' | 'cancelled' | 'error' | 'timeout' | 'shutdown'} reason
 * @property {string} text everything received
 * @property {string} reasoning the reasoning text received
 * @property {import('./rich.js').ToolCall[]} toolCalls
 * @property {import('./rich.js').Source[]} sources
 * @property {string | null} finishReason
 * @property {{input_tokens: number, output_tokens: number, estimated: boolean} | null} usage
 * @property {number | null} durationMs
 * @property {number} chunks
 * @property {TokenmuxError | null} error the failure, for reasons other than complete/cancelled
 */

/**
 * @typedef {object} SessionCallbacks Called as events arrive (never for a duplicate); set
 *   them in `stream()`/`resume()` options or assign them to the session.
 * @property {((delta: string, session: Session) => void) | null} [onReasoning] a piece of
 *   reasoning text (`session.reasoning` is the whole so far)
 * @property {((call: import('./rich.js').ToolCall, session: Session) => void) | null} [onToolCall]
 *   a tool call began, grew (`argumentsText`) or ended (`status: 'done'`, `arguments` parsed)
 * @property {((source: import('./rich.js').Source, session: Session) => void) | null} [onSource]
 *   a citation or grounding source
 */

/** Failure reasons mapped to an error code when no `error` event named one. */
const END_CODES = /** @type {Record<string, string>} */ ({ timeout: 'timeout', shutdown: 'shutting_down' });

export class Session {
  /**
   * Sessions are made by `TokenmuxClient.stream()` and `resume()`; this constructor is not
   * public API.
   * @param {string} id
   * @param {(session: Session) => void} requestCancel
   * @param {{resumeToken: string, afterSeq: number}} [resumed] for a session being resumed
   * @param {SessionCallbacks} [callbacks]
   */
  constructor(id, requestCancel, resumed, callbacks = {}) {
    /** The client-chosen session id. */
    this.id = id;
    /** Text received so far. */
    this.text = '';
    /** @type {'pending' | 'streaming' | 'ended'} */
    this.status = 'pending';
    /** @type {string | null} */
    this.provider = null;
    /** @type {string | null} */
    this.model = null;
    /** From `stream_start` (or `resume()`); null while the server has resume turned off. @type {string | null} */
    this.resumeToken = resumed?.resumeToken ?? null;
    /** The highest seq received (-1 before `stream_start`; `afterSeq` for a resumed session). */
    this.lastSeq = resumed?.afterSeq ?? -1;
    /** True for a session read with `client.watch()`: one more reader, not its owner. */
    this.watching = false;
    /**
     * False once a replay started past what the server still kept: the text before it
     * came as one piece (`metadata{recovered: false, content_so_far}`), not as its events.
     */
    this.recovered = true;
    /** Reasoning text received so far (the model's visible thinking). */
    this.reasoning = '';
    /** The provider's signature of the reasoning (from `content_complete`). @type {string | null} */
    this.reasoningSignature = null;
    /** The answer's tool calls, in the order they began. @type {import('./rich.js').ToolCall[]} */
    this.toolCalls = [];
    /** Citations and grounding sources, in order. @type {import('./rich.js').Source[]} */
    this.sources = [];
    /** From the final metadata: `stop`, `length`, `tool_calls`, `content_filter` or `other`. @type {string | null} */
    this.finishReason = null;
    /** The provider's own finish reason. @type {string | null} */
    this.rawFinishReason = null;
    /** The refusal text, when the model refused. @type {string | null} */
    this.refusal = null;
    /** @type {SessionCallbacks['onReasoning']} */
    this.onReasoning = callbacks.onReasoning ?? null;
    /** @type {SessionCallbacks['onToolCall']} */
    this.onToolCall = callbacks.onToolCall ?? null;
    /** @type {SessionCallbacks['onSource']} */
    this.onSource = callbacks.onSource ?? null;
    /** Last known usage (from metadata or stream_end). @type {EndResult['usage']} */
    this.usage = null;
    /** @type {EndResult | null} */
    this.result = null;
    /** @type {TokenmuxError | null} */
    this.error = null;
    this._requestCancel = requestCancel;
    /** @type {import('./protocol.js').Envelope[]} */
    this._queue = [];
    /** @type {(() => void) | null} */
    this._wake = null;
    this._iterated = false;
    /** Whether any event of this session reached this client. */
    this._received = false;
    /** Whether the server refused to resume it for good (it is then forgotten). */
    this._refused = false;
    /** @type {(result: EndResult) => void} */
    let settle = () => {};
    /** @type {Promise<EndResult>} resolves on any end, never rejects (what cancel() awaits) */
    this._ended = new Promise((resolve) => { settle = resolve; });
    this._settle = settle;
    /**
     * Settles on `stream_end`: resolves for `complete` and `cancelled`, rejects with a
     * TokenmuxError for `error`, `timeout` and `shutdown`, and when the session fails
     * without a `stream_end` (refused, connection lost).
     * @type {Promise<EndResult>}
     */
    this.done = this._ended.then((result) => (result.error ? Promise.reject(result.error) : result));
    this.done.catch(() => {}); // a rejection nobody awaits is not an unhandled one
  }

  /** Whether the session has ended (successfully or not). */
  get ended() {
    return this.status === 'ended';
  }

  /**
   * Ask the server to cancel; resolves once the session has ended (normally with
   * `stream_end{reason: 'cancelled'}`, or `complete` if it finished first). Idempotent.
   * @returns {Promise<EndResult>}
   */
  cancel() {
    if (!this.ended) this._requestCancel(this);
    return this._ended;
  }

  /** @returns {AsyncIterator<import('./protocol.js').Envelope>} */
  [Symbol.asyncIterator]() {
    if (this._iterated) {
      throw new TypeError(`session ${this.id} is already being iterated: a session's events can be read once`);
    }
    this._iterated = true;
    return {
      next: async () => {
        while (this._queue.length === 0 && !this.ended) {
          await new Promise((resolve) => { this._wake = () => resolve(undefined); });
        }
        if (this._queue.length) return { value: /** @type {any} */ (this._queue.shift()), done: false };
        if (!this.result && this.error) throw this.error; // failed without a stream_end
        return { value: undefined, done: true };
      },
      return: async () => {
        this._queue.length = 0;
        return { value: undefined, done: true };
      },
    };
  }

  // Called by the client.

  /**
   * Take one envelope of this session; returns false for a duplicate (seq already seen).
   * @param {import('./protocol.js').Envelope} envelope
   */
  _receive(envelope) {
    if (this.ended) return false;
    const seq = envelope.seq ?? this.lastSeq + 1;
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    this._received = true;
    if (this.status === 'pending') this.status = 'streaming'; // a resume's replay may begin anywhere
    const data = envelope.data ?? {};
    switch (envelope.type) {
      case 'stream_start':
        this.provider = data.provider ?? null;
        this.model = data.model ?? null;
        this.resumeToken = data.resume_token ?? null;
        break;
      case 'content_chunk':
        this.text += data.content;
        break;
      case 'reasoning_chunk':
        this.reasoning += data.content; // a merged chunk carries the text of all it stands for
        notify(this.onReasoning, data.content, this);
        break;
      case 'tool_call_start':
      case 'tool_call_delta':
      case 'tool_call_end': {
        const { calls, call } = applyToolCallEvent(this.toolCalls, envelope.type, data);
        this.toolCalls = calls;
        notify(this.onToolCall, call, this);
        break;
      }
      case 'source': {
        const source = sourceOf(data);
        this.sources = [...this.sources, source];
        notify(this.onSource, source, this);
        break;
      }
      case 'metadata':
        Object.assign(this, finishDetails(data));
        if (data.usage) this.usage = data.usage;
        if (data.recovered === false && typeof data.content_so_far === 'string') {
          this.text = data.content_so_far;
          this.recovered = false;
        }
        break;
      case 'content_complete':
        if (typeof data.total_content === 'string') this.text = data.total_content;
        if (typeof data.reasoning?.text === 'string') this.reasoning = data.reasoning.text;
        if (typeof data.reasoning?.signature === 'string') this.reasoningSignature = data.reasoning.signature;
        if (Array.isArray(data.tool_calls)) this.toolCalls = completeToolCalls(this.toolCalls, data.tool_calls);
        break;
      case 'error':
        this.error = TokenmuxError.fromPayload(data, { session: this.id });
        break;
    }
    this._push(envelope);
    if (envelope.type === 'stream_end') this._end(data);
    return true;
  }

  /**
   * End the session without a stream_end (refused start, lost connection, client closed).
   * @param {TokenmuxError} error
   */
  _fail(error) {
    if (this.ended) return;
    error.session ??= this.id;
    error.text ??= this.text;
    this.error = error;
    this.status = 'ended';
    this._settle({ reason: 'error', ...this._answer(), usage: this.usage, durationMs: null, chunks: 0, error });
    this.result = null;
    this._wakeUp();
  }

  /** @param {Record<string, any>} data stream_end data */
  _end(data) {
    const reason = data.reason;
    let error = null;
    if (reason !== 'complete' && reason !== 'cancelled') {
      error = this.error ?? new TokenmuxError(END_CODES[reason] ?? 'internal', `the session ended: ${reason}`);
      error.session ??= this.id;
      error.reason = reason;
      error.text = this.text;
      this.error = error;
    }
    if (data.usage) this.usage = data.usage;
    this.status = 'ended';
    /** @type {EndResult} */
    const result = {
      reason,
      ...this._answer(),
      usage: this.usage,
      durationMs: data.duration_ms ?? null,
      chunks: data.chunks ?? 0,
      error,
    };
    this.result = result;
    this._settle(result);
    this._wakeUp();
  }

  /** What the session received, for its end result. */
  _answer() {
    const { text, reasoning, toolCalls, sources, finishReason } = this;
    return { text, reasoning, toolCalls, sources, finishReason };
  }

  /** @param {import('./protocol.js').Envelope} envelope */
  _push(envelope) {
    if (this._iterated || this._queue.length < 100_000) this._queue.push(envelope);
    this._wakeUp();
  }

  _wakeUp() {
    const wake = this._wake;
    this._wake = null;
    wake?.();
  }
}
