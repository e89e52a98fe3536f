export class Session {
    /**
     * Sessions are made by `TokenmuxClient.stream()` and `resume()`; this constructor is not
     * public API.
     * @param {string} id
     * @param {(session: Session) => void} requestCancel
     * @param {{resumeToken: string, afterSeq: number}} [resumed] for a session being resumed
     * @param {SessionCallbacks} [callbacks]
     */
    constructor(id: string, requestCancel: (session: Session) => void, resumed?: {
        resumeToken: string;
        afterSeq: number;
    }, callbacks?: SessionCallbacks);
    /** The client-chosen session id. */
    id: string;
    /** Text received so far. */
    text: string;
    /** @type {'pending' | 'streaming' | 'ended'} */
    status: "pending" | "streaming" | "ended";
    /** @type {string | null} */
    provider: string | null;
    /** @type {string | null} */
    model: string | null;
    /** From `stream_start` (or `resume()`); null while the server has resume turned off. @type {string | null} */
    resumeToken: string | null;
    /** The highest seq received (-1 before `stream_start`; `afterSeq` for a resumed session). */
    lastSeq: number;
    /** True for a session read with `client.watch()`: one more reader, not its owner. */
    watching: boolean;
    /**
     * False once a replay started past what the server still kept: the text before it
     * came as one piece (`metadata{recovered: false, content_so_far}`), not as its events.
     */
    recovered: boolean;
    /** Reasoning text received so far (the model's visible thinking). */
    reasoning: string;
    /** The provider's signature of the reasoning (from `content_complete`). @type {string | null} */
    reasoningSignature: string | null;
    /** The answer's tool calls, in the order they began. @type {import('./rich.js').ToolCall[]} */
    toolCalls: import("./rich.js").ToolCall[];
    /** Citations and grounding sources, in order. @type {import('./rich.js').Source[]} */
    sources: import("./rich.js").Source[];
    /** From the final metadata: `stop`, `length`, `tool_calls`, `content_filter` or `other`. @type {string | null} */
    finishReason: string | null;
    /** The provider's own finish reason. @type {string | null} */
    rawFinishReason: string | null;
    /** The refusal text, when the model refused. @type {string | null} */
    refusal: string | null;
    /** @type {SessionCallbacks['onReasoning']} */
    onReasoning: SessionCallbacks["onReasoning"];
    /** @type {SessionCallbacks['onToolCall']} */
    onToolCall: SessionCallbacks["onToolCall"];
    /** @type {SessionCallbacks['onSource']} */
    onSource: SessionCallbacks["onSource"];
    /** Last known usage (from metadata or stream_end). @type {EndResult['usage']} */
    usage: EndResult["usage"];
    /** @type {EndResult | null} */
    result: EndResult | null;
    /** @type {TokenmuxError | null} */
    error: TokenmuxError | null;
    _requestCancel: (session: Session) => void;
    /** @type {import('./protocol.js').Envelope[]} */
    _queue: import("./protocol.js").Envelope[];
    /** @type {(() => void) | null} */
    _wake: (() => void) | null;
    _iterated: boolean;
    /** Whether any event of this session reached this client. */
    _received: boolean;
    /** Whether the server refused to resume it for good (it is then forgotten). */
    _refused: boolean;
    /** @type {Promise<EndResult>} resolves on any end, never rejects (what cancel() awaits) */
    _ended: Promise<EndResult>;
    _settle: (result: EndResult) => void;
    /**
     * Settles on `stream_end`: resolves for `complete` and `cancelled`, rejects with a
     * TokenmuxError for `error`, `timeout` and `shutdown`, and when the session fails
     * without a `stream_end` (refused, connection lost).
     * @type {Promise<EndResult>}
     */
    done: Promise<EndResult>;
    /** Whether the session has ended (successfully or not). */
    get ended(): boolean;
    /**
     * Ask the server to cancel; resolves once the session has ended (normally with
     * `stream_end{reason: 'cancelled'}`, or `complete` if it finished first). Idempotent.
     * @returns {Promise<EndResult>}
     */
    cancel(): Promise<EndResult>;
    /**
     * Take one envelope of this session; returns false for a duplicate (seq already seen).
     * @param {import('./protocol.js').Envelope} envelope
     */
    _receive(envelope: import("./protocol.js").Envelope): boolean;
    /**
     * End the session without a stream_end (refused start, lost connection, client closed).
     * @param {TokenmuxError} error
     */
    _fail(error: TokenmuxError): void;
    /** @param {Record<string, any>} data stream_end data */
    _end(data: Record<string, any>): void;
    /** What the session received, for its end result. */
    _answer(): {
        text: string;
        reasoning: string;
        toolCalls: import("./rich.js").ToolCall[];
        sources: import("./rich.js").Source[];
        finishReason: string;
    };
    /** @param {import('./protocol.js').Envelope} envelope */
    _push(envelope: import("./protocol.js").Envelope): void;
    _wakeUp(): void;
    /** @returns {AsyncIterator<import('./protocol.js').Envelope>} */
    [Symbol.asyncIterator](): AsyncIterator<import("./protocol.js").Envelope>;
}
export type EndResult = {
    reason: "complete" | "cancelled" | "error" | "timeout" | "shutdown";
    /**
     * everything received
     */
    text: string;
    /**
     * the reasoning text received
     */
    reasoning: string;
    toolCalls: import("./rich.js").ToolCall[];
    sources: import("./rich.js").Source[];
    finishReason: string | null;
    usage: {
        input_tokens: number;
        output_tokens: number;
        estimated: boolean;
    } | null;
    durationMs: number | null;
    chunks: number;
    /**
     * the failure, for reasons other than complete/cancelled
     */
    error: TokenmuxError | null;
};
/**
 * Called as events arrive (never for a duplicate); set
 *   them in `stream()`/`resume()` options or assign them to the session.
 */
export type SessionCallbacks = {
    /**
     * a piece of
     * reasoning text (`session.reasoning` is the whole so far)
     */
    onReasoning?: ((delta: string, session: Session) => void) | null;
    /**
     * a tool call began, grew (`argumentsText`) or ended (`status: 'done'`, `arguments` parsed)
     */
    onToolCall?: ((call: import("./rich.js").ToolCall, session: Session) => void) | null;
    /**
     * a citation or grounding source
     */
    onSource?: ((source: import("./rich.js").Source, session: Session) => void) | null;
};
import { TokenmuxError } from './errors.js';
