/**
 * @typedef {object} ClientOptions
 * @property {'json' | 'msgpack' | import('./protocol.js').Codec} [encoding] default 'json'
 * @property {boolean} [reconnect] reconnect with backoff after an unexpected drop (default false)
 * @property {typeof WebSocket} [WebSocket] implementation to use (default: the global one;
 *   pass the `ws` package's WebSocket in Node 20)
 * @property {number} [initialDelayMs] first reconnect delay (default 250)
 * @property {number} [maxDelayMs] backoff cap (default 5000)
 * @property {number} [resumeTimeoutMs] with `reconnect`, how long a session may wait for the
 *   connection to come back (to be resumed, or to be started) before it fails with
 *   `connection_lost` (default 30000)
 * @property {boolean | import('./persist.js').PersistOptions} [persist] keep every live
 *   session's `{id, token, lastSeq}` in `sessionStorage`, and resume the ones a previous
 *   page left (they are `client.restored`) (default false)
 */
/**
 * @typedef {object} ResumeOptions
 * @property {string} token the session's `resume_token` (from `stream_start`)
 * @property {number} [afterSeq] the last seq already had; the server sends what follows
 *   (default -1: everything it still keeps, from `stream_start` on)
 * @property {AbortSignal} [signal] aborting it cancels the session
 * @property {import('./session.js').SessionCallbacks['onReasoning']} [onReasoning]
 * @property {import('./session.js').SessionCallbacks['onToolCall']} [onToolCall]
 * @property {import('./session.js').SessionCallbacks['onSource']} [onSource]
 */
/**
 * @typedef {object} StreamRequest What `start` carries in `data` (PROTOCOL.md section 3).
 * @property {string} [prompt]
 * @property {Record<string, any>[]} [messages] `{role, content}` turns; section 9 adds
 *   image parts, an assistant turn's `tool_calls` and `tool` turns (`tool_call_id`)
 * @property {string} [provider]
 * @property {string} [model]
 * @property {string} [system]
 * @property {Record<string, unknown>} [params]
 * @property {number} [chunk_delay_ms]
 * @property {'cancel' | 'detach'} [on_disconnect] default 'detach' when `reconnect` or
 *   `persist` is on
 * @property {string} [session] the session id (default: a generated one)
 * @property {AbortSignal} [signal] aborting it cancels the session
 * @property {Record<string, any>[]} [tools] PROTOCOL.md section 9, like `tool_choice` and `reasoning`
 * @property {string | {name: string}} [tool_choice]
 * @property {Record<string, any>} [reasoning]
 * @property {import('./session.js').SessionCallbacks['onReasoning']} [onReasoning] (not sent)
 * @property {import('./session.js').SessionCallbacks['onToolCall']} [onToolCall] (not sent)
 * @property {import('./session.js').SessionCallbacks['onSource']} [onSource] (not sent)
 */
/** @typedef {'idle' | 'connecting' | 'open' | 'closed'} ClientState */
export class TokenmuxClient extends EventTarget {
    /**
     * @param {string | URL} url e.g. `ws://localhost:8080/ws`, or `/ws` in a page
     * @param {ClientOptions} [options]
     */
    constructor(url: string | URL, options?: ClientOptions);
    url: string;
    options: ClientOptions;
    /** @type {typeof WebSocket | undefined} */
    _WebSocket: typeof WebSocket | undefined;
    _codecPromise: Promise<import("./protocol.js").Codec>;
    /** @type {import('./protocol.js').Codec | null} */
    _codec: import("./protocol.js").Codec | null;
    /** @type {ClientState} */
    state: ClientState;
    /** The server's `ready` data of the current connection. @type {Record<string, any> | null} */
    serverInfo: Record<string, any> | null;
    /** @type {Map<string, Session>} live sessions by id */
    sessions: Map<string, Session>;
    /** @type {WebSocket | null} */
    _socket: WebSocket | null;
    /** @type {object[]} messages waiting for the socket to open */
    _outbox: object[];
    /** @type {Set<Session>} sessions waiting for a new connection to resume them */
    _resumable: Set<Session>;
    _attempt: number;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    _retryTimer: ReturnType<typeof setTimeout> | undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    _resumeTimer: ReturnType<typeof setTimeout> | undefined;
    /** @type {Map<string, (data: any) => void>} */
    _pings: Map<string, (data: any) => void>;
    /** @type {Promise<Record<string, any>> | null} */
    _connecting: Promise<Record<string, any>> | null;
    _readyPending: boolean;
    /** @type {(info: Record<string, any>) => void} */
    _resolveReady: (info: Record<string, any>) => void;
    /** @type {(error: TokenmuxError) => void} */
    _rejectReady: (error: TokenmuxError) => void;
    /** @type {SessionStorageStore | null} */
    _store: SessionStorageStore | null;
    /**
     * The sessions a previous page left in storage (with `persist`), oldest first, being
     * resumed: they are live sessions like any other, in `sessions` too.
     * @type {Session[]}
     */
    restored: Session[];
    /** Number of live sessions (started and not yet ended). */
    get liveSessions(): number;
    /**
     * Open the socket now (otherwise the first `stream()` does); resolves with the server's
     * `ready` data. Rejects with TokenmuxError `connection_failed`.
     * @returns {Promise<Record<string, any>>}
     */
    connect(): Promise<Record<string, any>>;
    /**
     * Start a session. Returns at once; the session's events arrive through iteration.
     * @param {StreamRequest} request
     * @param {{signal?: AbortSignal, session?: string} & import('./session.js').SessionCallbacks} [options]
     * @returns {Session}
     */
    stream(request: StreamRequest, options?: {
        signal?: AbortSignal;
        session?: string;
    } & import("./session.js").SessionCallbacks): Session;
    /**
     * Attach a session that is running (or ended less than the server's `grace_s` ago), e.g.
     * one a previous page started: the server replays what came after `afterSeq`, then the
     * session continues live, with no gap and no duplicate. Returns at once, like `stream()`.
     * A refused resume (wrong token, expired, resume turned off) fails the session with
     * TokenmuxError `resume_refused`.
     * @param {string} sessionId
     * @param {ResumeOptions} options
     * @returns {Session}
     */
    resume(sessionId: string, options: ResumeOptions): Session;
    /**
     * Read a session as one more reader (PROTOCOL.md §12), e.g. a card another tab runs:
     * the events after `afterSeq`, then the live rest, while whoever runs it keeps receiving
     * it. Nothing is taken over, and a watched session is never persisted. `session.cancel()`
     * ends it for every reader; `client.close()` only stops reading. A reader that fell behind
     * may get merged chunks, whose `seq` jumps forward (the text stays whole). A wrong or
     * expired token fails the session with TokenmuxError `resume_refused`.
     * @param {string} sessionId
     * @param {ResumeOptions} options
     * @returns {Session}
     */
    watch(sessionId: string, options: ResumeOptions): Session;
    /**
     * `resume` or `watch` a session by its id and token.
     * @param {'resume' | 'watch'} kind @param {string} sessionId @param {ResumeOptions} options
     * @returns {Session}
     */
    _attach(kind: "resume" | "watch", sessionId: string, options: ResumeOptions): Session;
    /**
     * Round-trip a `ping`; resolves with the `pong` data.
     * @param {Record<string, unknown>} [data]
     */
    ping(data?: Record<string, unknown>): Promise<any>;
    /**
     * Close the socket. Live sessions fail with TokenmuxError `closed`; the server cancels
     * them, or keeps those started with `on_disconnect: 'detach'` for its `grace_s` (and
     * `persist` keeps them stored). The client cannot be used again.
     */
    close(): void;
    /** @param {object} message */
    _send(message: object): void;
    _flush(): void;
    _open(): void;
    /** A fresh promise for `connect()`: settled by the next `ready`, or by a failed attempt. */
    _armReady(): void;
    /** @param {import('./protocol.js').Codec} codec */
    _openSocket(codec: import("./protocol.js").Codec): void;
    /** @param {TokenmuxError} error */
    _connectionFailed(error: TokenmuxError): void;
    /**
     * The socket closed without close() being called.
     * @param {number} code @param {string} reason
     */
    _dropped(code: number, reason: string): void;
    _scheduleReconnect(): void;
    _resumeAll(): void;
    /**
     * Sessions waiting for the connection (to be resumed, or whose start is still queued) fail
     * with `connection_lost` if it is not back within `resumeTimeoutMs`.
     */
    _armResumeTimeout(): void;
    /** @param {string | ArrayBuffer} payload */
    _receive(payload: string | ArrayBuffer): void;
    /** @param {Record<string, any>} data */
    _connectionError(data: Record<string, any>): void;
    /** @param {string} id */
    _checkFree(id: string): void;
    /**
     * Make `session` one of this client's live sessions until it ends.
     * @param {Session} session @param {AbortSignal} [signal] aborting it cancels the session
     */
    _adopt(session: Session, signal?: AbortSignal): Session;
    /** @param {Session} session */
    _cancel(session: Session): void;
    /**
     * Resume every session a previous page persisted, once the socket opens (on the next
     * tick, so that listeners added after `new TokenmuxClient()` see it happen).
     * @param {SessionStorageStore} store
     */
    _restore(store: SessionStorageStore): Session[];
    /** @param {Session} session */
    _forget(session: Session): void;
    /** @param {TokenmuxError} error */
    _failAll(error: TokenmuxError): void;
    /** @param {ClientState} state */
    _setState(state: ClientState): void;
    /** @param {string} type @param {unknown} detail */
    _emit(type: string, detail: unknown): void;
}
export type ClientOptions = {
    /**
     * default 'json'
     */
    encoding?: "json" | "msgpack" | import("./protocol.js").Codec;
    /**
     * reconnect with backoff after an unexpected drop (default false)
     */
    reconnect?: boolean;
    /**
     * implementation to use (default: the global one;
     * pass the `ws` package's WebSocket in Node 20)
     */
    WebSocket?: typeof WebSocket;
    /**
     * first reconnect delay (default 250)
     */
    initialDelayMs?: number;
    /**
     * backoff cap (default 5000)
     */
    maxDelayMs?: number;
    /**
     * with `reconnect`, how long a session may wait for the
     * connection to come back (to be resumed, or to be started) before it fails with
     * `connection_lost` (default 30000)
     */
    resumeTimeoutMs?: number;
    /**
     * keep every live
     * session's `{id, token, lastSeq}` in `sessionStorage`, and resume the ones a previous
     * page left (they are `client.restored`) (default false)
     */
    persist?: boolean | import("./persist.js").PersistOptions;
};
export type ResumeOptions = {
    /**
     * the session's `resume_token` (from `stream_start`)
     */
    token: string;
    /**
     * the last seq already had; the server sends what follows
     * (default -1: everything it still keeps, from `stream_start` on)
     */
    afterSeq?: number;
    /**
     * aborting it cancels the session
     */
    signal?: AbortSignal;
    onReasoning?: import("./session.js").SessionCallbacks["onReasoning"];
    onToolCall?: import("./session.js").SessionCallbacks["onToolCall"];
    onSource?: import("./session.js").SessionCallbacks["onSource"];
};
/**
 * What `start` carries in `data` (PROTOCOL.md section 3).
 */
export type StreamRequest = {
    prompt?: string;
    /**
     * `{role, content}` turns; section 9 adds
     * image parts, an assistant turn's `tool_calls` and `tool` turns (`tool_call_id`)
     */
    messages?: Record<string, any>[];
    provider?: string;
    model?: string;
    system?: string;
    params?: Record<string, unknown>;
    chunk_delay_ms?: number;
    /**
     * default 'detach' when `reconnect` or
     * `persist` is on
     */
    on_disconnect?: "cancel" | "detach";
    /**
     * the session id (default: a generated one)
     */
    session?: string;
    /**
     * aborting it cancels the session
     */
    signal?: AbortSignal;
    /**
     * PROTOCOL.md section 9, like `tool_choice` and `reasoning`
     */
    tools?: Record<string, any>[];
    tool_choice?: string | {
        name: string;
    };
    reasoning?: Record<string, any>;
    /**
     * (not sent)
     */
    onReasoning?: import("./session.js").SessionCallbacks["onReasoning"];
    /**
     * (not sent)
     */
    onToolCall?: import("./session.js").SessionCallbacks["onToolCall"];
    /**
     * (not sent)
     */
    onSource?: import("./session.js").SessionCallbacks["onSource"];
};
export type ClientState = "idle" | "connecting" | "open" | "closed";
import { Session } from './session.js';
import { TokenmuxError } from './errors.js';
import { SessionStorageStore } from './persist.js';
