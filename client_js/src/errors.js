/**
 * The one error type the library throws or rejects with.
 *
 * `code` is one of the server's stable codes (PROTOCOL.md section 5) or one of the
 * client-side codes below; `retryable` says whether the same request may succeed later.
 *
 * Client-side codes:
 * - `connection_lost`: the socket dropped while the session was live and it could not be
 *   resumed (retryable).
 * - `connection_failed`: the WebSocket could not be opened (retryable).
 * - `resume_refused`: `client.resume()` (or restoring a persisted session) was refused: a
 *   wrong token, a session that ended more than the server's `grace_s` ago, or resume
 *   turned off; `cause` is the server's `unauthorized` error.
 * - `network_error`: fetch failed before or during an SSE stream (retryable).
 * - `closed`: `client.close()` was called while the session was live.
 * - `http_error`: an HTTP error whose body was not a tokenmux error body.
 * - `bad_response`: the server sent something the client cannot read.
 *
 * @module
 */

/** Server error codes that are retryable (mirrors the server's table). */
const RETRYABLE = new Set([
  'too_many_sessions',
  'rate_limited',
  'provider_error',
  'provider_timeout',
  'provider_rate_limited',
  'timeout',
  'shutting_down',
  'node_lost',
  'internal',
  'connection_lost',
  'connection_failed',
  'network_error',
]);

/**
 * Whether an error code is retryable when the server did not say.
 * @param {string} code
 * @returns {boolean}
 */
export function isRetryableCode(code) {
  return RETRYABLE.has(code);
}

export class TokenmuxError extends Error {
  /**
   * @param {string} code stable error code
   * @param {string} message human-readable description
   * @param {{retryable?: boolean, status?: number, ref?: {type: string, session?: string},
   *   session?: string, reason?: string, text?: string, cause?: unknown}} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TokenmuxError';
    /** @type {string} */
    this.code = code;
    /** @type {boolean} */
    this.retryable = details.retryable ?? isRetryableCode(code);
    /** HTTP status, for errors answered as plain HTTP. @type {number | undefined} */
    this.status = details.status;
    /** The client message a connection-level error answers. */
    this.ref = details.ref;
    /** The session the error belongs to, when it belongs to one. @type {string | undefined} */
    this.session = details.session;
    /** The session's `stream_end.reason`, when the error ended a session. */
    this.reason = details.reason;
    /** The text received before the failure. @type {string | undefined} */
    this.text = details.text;
  }

  /**
   * Build from an `error` event payload `{code, message, retryable, ref?}`.
   * @param {{code?: string, message?: string, retryable?: boolean, ref?: any}} data
   * @param {{session?: string, reason?: string, text?: string, status?: number}} [extra]
   */
  static fromPayload(data, extra = {}) {
    const code = typeof data?.code === 'string' ? data.code : 'internal';
    const message = typeof data?.message === 'string' ? data.message : code;
    return new TokenmuxError(code, message, { retryable: data?.retryable, ref: data?.ref, ...extra });
  }
}
