/**
 * TokenmuxClient: many sessions over one WebSocket (PROTOCOL.md section 3), with optional
 * reconnect and resume (section 6), and sessions kept across page reloads (`persist`).
 *
 * The socket opens on the first `stream()` (or `connect()`); messages sent before it is open
 * are queued in order. Events are routed to their session by `session` id; connection-level
 * events are dispatched as DOM events on the client (`ready`, `goaway`, `error`,
 * `statechange`).
 *
 * @module
 */

import { TokenmuxError } from './errors.js';
import { SessionStorageStore } from './persist.js';
import { SESSION_ID_PATTERN, loadCodec, newSessionId } from './protocol.js';
import { Session } from './session.js';

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
  constructor(url, options = {}) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('new TokenmuxClient(url, options): options must be an object such as { encoding: "json" }');
    }
    this.url = resolveUrl(url);
    this.options = options;
    /** @type {typeof WebSocket | undefined} */
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw new TypeError(
        'no WebSocket implementation: in Node 20 pass one, e.g. `new TokenmuxClient(url, { WebSocket })` with `import WebSocket from "ws"`',
      );
    }
    this._codecPromise = loadCodec(options.encoding ?? 'json');
    this._codecPromise.catch(() => {});
    /** @type {import('./protocol.js').Codec | null} */
    this._codec = null;
    /** @type {ClientState} */
    this.state = 'idle';
    /** The server's `ready` data of the current connection. @type {Record<string, any> | null} */
    this.serverInfo = null;
    /** @type {Map<string, Session>} live sessions by id */
    this.sessions = new Map();
    /** @type {WebSocket | null} */
    this._socket = null;
    /** @type {object[]} messages waiting for the socket to open */
    this._outbox = [];
    /** @type {Set<Session>} sessions waiting for a new connection to resume them */
    this._resumable = new Set();
    this._attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._resumeTimer = undefined;
    /** @type {Map<string, (data: any) => void>} */
    this._pings = new Map();
    /** @type {Promise<Record<string, any>> | null} */
    this._connecting = null;
    this._readyPending = false;
    /** @type {(info: Record<string, any>) => void} */
    this._resolveReady = () => {};
    /** @type {(error: TokenmuxError) => void} */
    this._rejectReady = () => {};
    /** @type {SessionStorageStore | null} */
    this._store = options.persist ? new SessionStorageStore(options.persist, this.url) : null;
    /**
     * The sessions a previous page left in storage (with `persist`), oldest first, being
     * resumed: they are live sessions like any other, in `sessions` too.
     * @type {Session[]}
     */
    this.restored = this._store ? this._restore(this._store) : [];
  }

  /** Number of live sessions (started and not yet ended). */
  get liveSessions() {
    return this.sessions.size;
  }

  /**
   * Open the socket now (otherwise the first `stream()` does); resolves with the server's
   * `ready` data. Rejects with TokenmuxError `connection_failed`.
   * @returns {Promise<Record<string, any>>}
   */
  connect() {
    if (this.state === 'closed') return Promise.reject(closedError());
    if (this.state === 'open' && this.serverInfo) return Promise.resolve(this.serverInfo);
    if (this.state === 'idle') this._open();
    return /** @type {Promise<Record<string, any>>} */ (this._connecting);
  }

  /**
   * Start a session. Returns at once; the session's events arrive through iteration.
   * @param {StreamRequest} request
   * @param {{signal?: AbortSignal, session?: string} & import('./session.js').SessionCallbacks} [options]
   * @returns {Session}
   */
  stream(request, options = {}) {
    if (this.state === 'closed') throw closedError();
    if (request === null || typeof request !== 'object') {
      throw new TypeError('client.stream(request): request must be an object such as { prompt: "Hi" }');
    }
    const { signal: requestSignal, session: requestId, onReasoning, onToolCall, onSource, ...data } = request;
    const signal = options.signal ?? requestSignal;
    const id = options.session ?? requestId ?? newSessionId();
    if (typeof data.prompt !== 'string' && !Array.isArray(data.messages)) {
      throw new TypeError('client.stream(request): give a `prompt` string or a `messages` array');
    }
    if (!SESSION_ID_PATTERN.test(id)) {
      throw new TypeError(`session id ${JSON.stringify(id)}: use 1-64 characters of A-Za-z0-9_.:-`);
    }
    this._checkFree(id);
    signal?.throwIfAborted();
    const keep = this.options.reconnect || this._store;
    if (keep && data.on_disconnect === undefined) data.on_disconnect = 'detach';
    const callbacks = { onReasoning, onToolCall, onSource, ...callbacksOf(options) };
    const session = this._adopt(new Session(id, (s) => this._cancel(s), undefined, callbacks), signal);
    this._send({ type: 'start', session: id, data });
    return session;
  }

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
  resume(sessionId, options) {
    const session = this._attach('resume', sessionId, options);
    this._store?.track(session);
    return session;
  }

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
  watch(sessionId, options) {
    return this._attach('watch', sessionId, options);
  }

  /**
   * `resume` or `watch` a session by its id and token.
   * @param {'resume' | 'watch'} kind @param {string} sessionId @param {ResumeOptions} options
   * @returns {Session}
   */
  _attach(kind, sessionId, options) {
    if (this.state === 'closed') throw closedError();
    const { token, afterSeq = -1, signal, ...callbacks } = options ?? /** @type {ResumeOptions} */ ({});
    if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
      throw new TypeError(`session id ${JSON.stringify(sessionId)}: use 1-64 characters of A-Za-z0-9_.:-`);
    }
    if (typeof token !== 'string' || token === '') {
      throw new TypeError(`client.${kind}(id, { token }): token is the resume_token of the session's stream_start`);
    }
    if (!Number.isInteger(afterSeq) || afterSeq < -1) {
      throw new TypeError(`client.${kind}(id, { afterSeq }): afterSeq must be an integer >= -1`);
    }
    this._checkFree(sessionId);
    signal?.throwIfAborted();
    const session = this._adopt(new Session(sessionId, (s) => this._cancel(s), { resumeToken: token, afterSeq }, callbacksOf(callbacks)), signal);
    session.watching = kind === 'watch';
    this._send(resumeMessage(session));
    return session;
  }

  /**
   * Round-trip a `ping`; resolves with the `pong` data.
   * @param {Record<string, unknown>} [data]
   */
  ping(data = {}) {
    const nonce = newSessionId();
    return new Promise((resolve) => {
      this._pings.set(nonce, resolve);
      this._send({ type: 'ping', data: { ...data, nonce } });
    });
  }

  /**
   * Close the socket. Live sessions fail with TokenmuxError `closed`; the server cancels
   * them, or keeps those started with `on_disconnect: 'detach'` for its `grace_s` (and
   * `persist` keeps them stored). The client cannot be used again.
   */
  close() {
    if (this.state === 'closed') return;
    this._store?.close(); // persisted sessions stay, for the next page to resume
    this._setState('closed');
    clearTimeout(this._retryTimer);
    clearTimeout(this._resumeTimer);
    const socket = this._socket;
    this._socket = null;
    if (socket) detach(socket), socket.close(1000);
    if (this._readyPending) this._rejectReady(closedError());
    this._readyPending = false;
    this._failAll(closedError());
  }

  // Sending.

  /** @param {object} message */
  _send(message) {
    if (this.state === 'closed') return;
    if (this.state === 'open' && this._socket && this._codec) {
      this._socket.send(/** @type {any} */ (this._codec.encode(message)));
      return;
    }
    this._outbox.push(message);
    if (this.state === 'idle') this._open();
  }

  _flush() {
    const messages = this._outbox.splice(0);
    for (const message of messages) this._send(message);
  }

  // Connecting.

  _open() {
    this._setState('connecting');
    if (!this._readyPending) this._armReady();
    this._codecPromise.then(
      (codec) => this._openSocket(codec),
      (error) => this._connectionFailed(new TokenmuxError('connection_failed', error.message, { retryable: false })),
    );
  }

  /** A fresh promise for `connect()`: settled by the next `ready`, or by a failed attempt. */
  _armReady() {
    this._readyPending = true;
    this._connecting = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    this._connecting.catch(() => {});
  }

  /** @param {import('./protocol.js').Codec} codec */
  _openSocket(codec) {
    if (this.state !== 'connecting') return;
    this._codec = codec;
    const WS = /** @type {typeof WebSocket} */ (this._WebSocket);
    let socket;
    try {
      socket = new WS(this.url, [codec.subprotocol]);
    } catch (error) {
      this._connectionFailed(new TokenmuxError('connection_failed', `cannot open ${this.url}: ${messageOf(error)}`));
      return;
    }
    socket.binaryType = 'arraybuffer';
    this._socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this._attempt = 0;
      this._setState('open');
      this._resumeAll();
      this._flush();
    };
    socket.onmessage = (event) => this._receive(event.data);
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      detach(socket);
      if (opened) this._dropped(event.code, event.reason);
      else this._connectionFailed(new TokenmuxError('connection_failed', `cannot connect to ${this.url} (close code ${event.code})`));
    };
    socket.onerror = () => {}; // a close event always follows
  }

  /** @param {TokenmuxError} error */
  _connectionFailed(error) {
    this._readyPending = false;
    this._rejectReady(error);
    if (this.options.reconnect && this.state !== 'closed') {
      this._armReady(); // later connect() calls wait for the next attempt
      this._armResumeTimeout();
      this._scheduleReconnect();
      return;
    }
    this._outbox.length = 0;
    this._setState('idle');
    this._failAll(error);
  }

  /**
   * The socket closed without close() being called.
   * @param {number} code @param {string} reason
   */
  _dropped(code, reason) {
    const message = `the connection to ${this.url} closed (code ${code}${reason ? `: ${reason}` : ''})`;
    this.serverInfo = null;
    for (const session of [...this.sessions.values()]) {
      if (this.options.reconnect && session.resumeToken !== null) {
        this._resumable.add(session);
      } else {
        session._fail(new TokenmuxError('connection_lost', message, { retryable: true }));
      }
    }
    // Queued messages were never sent: keep starts of new sessions, drop the rest.
    this._outbox = this._outbox.filter((m) => /** @type {any} */ (m).type === 'start');
    if (this.options.reconnect) {
      this._armReady();
      this._armResumeTimeout();
      this._scheduleReconnect();
    } else {
      this._setState('idle');
      if (this._outbox.length) this._open();
    }
  }

  _scheduleReconnect() {
    this._setState('connecting');
    const initial = this.options.initialDelayMs ?? 250;
    const max = this.options.maxDelayMs ?? 5000;
    const delay = Math.min(max, initial * 2 ** this._attempt) * (0.5 + Math.random() / 2);
    this._attempt += 1;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      if (this.state === 'connecting') this._open();
    }, delay);
  }

  _resumeAll() {
    for (const session of this._resumable) this._outbox.unshift(resumeMessage(session));
    this._resumable.clear();
    clearTimeout(this._resumeTimer);
    this._resumeTimer = undefined;
  }

  /**
   * Sessions waiting for the connection (to be resumed, or whose start is still queued) fail
   * with `connection_lost` if it is not back within `resumeTimeoutMs`.
   */
  _armResumeTimeout() {
    if (this._resumeTimer !== undefined) return;
    this._resumeTimer = setTimeout(() => {
      this._resumeTimer = undefined;
      if (this.state === 'open') return;
      const waiting = [...this.sessions.values()].filter((s) => this._resumable.has(s) || s.status === 'pending');
      for (const session of waiting) {
        session._fail(new TokenmuxError('connection_lost', `no connection to ${this.url} for ${this.options.resumeTimeoutMs ?? 30_000} ms`));
      }
      this._resumable.clear();
      this._outbox = this._outbox.filter((m) => this.sessions.has(/** @type {any} */ (m).session));
    }, this.options.resumeTimeoutMs ?? 30_000);
  }

  // Receiving.

  /** @param {string | ArrayBuffer} payload */
  _receive(payload) {
    let envelope;
    try {
      envelope = /** @type {import('./protocol.js').Codec} */ (this._codec).decode(payload);
    } catch (error) {
      this._emit('error', new TokenmuxError('bad_response', `undecodable frame: ${messageOf(error)}`));
      return;
    }
    if (typeof envelope?.session === 'string') {
      const session = this.sessions.get(envelope.session);
      if (session?._receive(envelope) && !session.watching) this._store?.track(session);
      return;
    }
    const data = envelope?.data ?? {};
    switch (envelope?.type) {
      case 'ready':
        this.serverInfo = data;
        this._readyPending = false;
        this._resolveReady(data);
        this._emit('ready', data);
        break;
      case 'pong': {
        const resolve = this._pings.get(data.nonce);
        this._pings.delete(data.nonce);
        resolve?.(data);
        break;
      }
      case 'goaway':
        this._emit('goaway', data);
        break;
      case 'error':
        this._connectionError(data);
        break;
    }
  }

  /** @param {Record<string, any>} data */
  _connectionError(data) {
    const ref = data.ref ?? {};
    const session = typeof ref.session === 'string' ? this.sessions.get(ref.session) : undefined;
    if (session && (ref.type === 'start' || ref.type === 'resume' || ref.type === 'watch')) {
      const error = TokenmuxError.fromPayload(data, { session: session.id });
      if (ref.type !== 'start' && !error.retryable) session._refused = true; // the server will not give it back
      if (ref.type === 'start') {
        session._fail(error);
      } else if (!session._received && error.code === 'unauthorized') {
        // The server answers a wrong token, an expired session and resume turned off alike.
        session._fail(new TokenmuxError('resume_refused', `the session could not be resumed: ${error.message}`, { retryable: false, cause: error }));
      } else if (!session._received) {
        session._fail(error);
      } else {
        // The session could not be re-attached: what was missed is lost.
        session._fail(new TokenmuxError('connection_lost', `the session could not be resumed: ${error.message}`, { retryable: true, cause: error }));
      }
      return;
    }
    if (ref.type === 'cancel' && data.code === 'session_not_found') return; // raced its end
    this._emit('error', TokenmuxError.fromPayload(data));
  }

  // Bookkeeping.

  /** @param {string} id */
  _checkFree(id) {
    if (this.sessions.has(id)) throw new TypeError(`session id ${JSON.stringify(id)} is already live on this client`);
  }

  /**
   * Make `session` one of this client's live sessions until it ends.
   * @param {Session} session @param {AbortSignal} [signal] aborting it cancels the session
   */
  _adopt(session, signal) {
    this.sessions.set(session.id, session);
    session._ended.then(() => this._forget(session));
    if (signal) {
      const onAbort = () => session.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      session._ended.then(() => signal.removeEventListener('abort', onAbort));
    }
    return session;
  }

  /** @param {Session} session */
  _cancel(session) {
    this._send({ type: 'cancel', session: session.id });
  }

  /**
   * Resume every session a previous page persisted, once the socket opens (on the next
   * tick, so that listeners added after `new TokenmuxClient()` see it happen).
   * @param {SessionStorageStore} store
   */
  _restore(store) {
    const sessions = store.list().map(({ id, token, lastSeq }) => {
      const afterSeq = store.replay === 'missed' ? lastSeq : -1;
      const session = this._adopt(new Session(id, (s) => this._cancel(s), { resumeToken: token, afterSeq }));
      this._outbox.push(resumeMessage(session));
      return session;
    });
    if (sessions.length) {
      queueMicrotask(() => {
        if (this.state === 'idle' && this._outbox.length) this._open();
      });
    }
    return sessions;
  }

  /** @param {Session} session */
  _forget(session) {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    this._resumable.delete(session);
    // Ended on the server's word: it cannot be resumed again. A lost connection (a page
    // going away is one) leaves it stored for the next page.
    if (session.result || session._refused) this._store?.remove(session.id, session.resumeToken);
    this._emit('sessionend', session);
  }

  /** @param {TokenmuxError} error */
  _failAll(error) {
    for (const session of [...this.sessions.values()]) {
      session._fail(new TokenmuxError(error.code, error.message, { retryable: error.retryable }));
    }
    this._resumable.clear();
  }

  /** @param {ClientState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('statechange', state);
  }

  /** @param {string} type @param {unknown} detail */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** @param {string | URL} url */
function resolveUrl(url) {
  const base = globalThis.location?.href;
  let resolved;
  try {
    resolved = new URL(url, base);
  } catch {
    throw new TypeError(`invalid WebSocket URL ${JSON.stringify(String(url))}: give an absolute ws:// URL outside a page`);
  }
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') {
    throw new TypeError(`WebSocket URL must be ws:, wss:, http: or https:, got ${resolved.protocol}`);
  }
  return resolved.href;
}

/**
 * The callbacks among `options` that are set.
 * @param {import('./session.js').SessionCallbacks} options
 * @returns {import('./session.js').SessionCallbacks}
 */
function callbacksOf({ onReasoning, onToolCall, onSource }) {
  return Object.fromEntries(Object.entries({ onReasoning, onToolCall, onSource }).filter(([, callback]) => callback));
}

/** @param {Session} session */
function resumeMessage(session) {
  return { type: session.watching ? 'watch' : 'resume', session: session.id, data: { resume_token: session.resumeToken, after_seq: session.lastSeq } };
}

/** @param {WebSocket} socket */
function detach(socket) {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = () => {};
}

function closedError() {
  return new TokenmuxError('closed', 'the client was closed', { retryable: false });
}

/** @param {unknown} error */
function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
