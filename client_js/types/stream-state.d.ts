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
export function createStreamState(): StreamState;
/**
 * The state after one envelope (returns a new object when something changed).
 * @param {StreamState} state
 * @param {import('./protocol.js').Envelope} event
 * @param {number} [elapsedMs] time since the stream was started, for `ttftMs`
 * @returns {StreamState}
 */
export function reduceStreamState(state: StreamState, event: import("./protocol.js").Envelope, elapsedMs?: number): StreamState;
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
export function runStream(source: import("./ws-client.js").TokenmuxClient | string, request: Record<string, any>, { signal, onState, fetch }: {
    signal?: AbortSignal;
    onState: (state: StreamState) => void;
    fetch?: typeof globalThis.fetch;
}): Promise<StreamState>;
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
export function resumeStream(client: import("./ws-client.js").TokenmuxClient, target: import("./session.js").Session | ResumeTarget, { signal, onState }: {
    signal?: AbortSignal;
    onState: (state: StreamState) => void;
}): Promise<StreamState>;
/**
 * What a hook resumes on mount: `resume` if given (false: nothing), else, for a client
 * that persists its sessions, the newest restored session nobody reads yet.
 * @param {import('./ws-client.js').TokenmuxClient | string} source
 * @param {import('./session.js').Session | ResumeTarget | false | undefined} resume
 * @returns {import('./session.js').Session | ResumeTarget | null}
 */
export function resumeTarget(source: import("./ws-client.js").TokenmuxClient | string, resume: import("./session.js").Session | ResumeTarget | false | undefined): import("./session.js").Session | ResumeTarget | null;
export type StreamState = {
    status: "idle" | "connecting" | "streaming" | "complete" | "cancelled" | "error";
    text: string;
    /**
     * the model's visible reasoning so far
     */
    reasoning: string;
    /**
     * in the order they began
     */
    toolCalls: import("./rich.js").ToolCall[];
    sources: import("./rich.js").Source[];
    /**
     * from the final metadata (normalized)
     */
    finishReason: string | null;
    /**
     * the provider's own finish reason
     */
    rawFinishReason: string | null;
    /**
     * the refusal text, when the model refused
     */
    refusal: string | null;
    sessionId: string | null;
    provider: string | null;
    model: string | null;
    usage: Record<string, any> | null;
    /**
     * time from start to the first chunk, measured here
     */
    ttftMs: number | null;
    error: TokenmuxError | null;
};
/**
 * What to resume: a session of the client (e.g. one of
 *   `client.restored`), or the id and token of one to `client.resume()`.
 */
export type ResumeTarget = {
    id: string;
    token: string;
    afterSeq?: number;
};
import { TokenmuxError } from './errors.js';
