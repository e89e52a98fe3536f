/**
 * Whether an error code is retryable when the server did not say.
 * @param {string} code
 * @returns {boolean}
 */
export function isRetryableCode(code: string): boolean;
export class TokenmuxError extends Error {
    /**
     * Build from an `error` event payload `{code, message, retryable, ref?}`.
     * @param {{code?: string, message?: string, retryable?: boolean, ref?: any}} data
     * @param {{session?: string, reason?: string, text?: string, status?: number}} [extra]
     */
    static fromPayload(data: {
        code?: string;
        message?: string;
        retryable?: boolean;
        ref?: any;
    }, extra?: {
        session?: string;
        reason?: string;
        text?: string;
        status?: number;
    }): TokenmuxError;
    /**
     * @param {string} code stable error code
     * @param {string} message human-readable description
     * @param {{retryable?: boolean, status?: number, ref?: {type: string, session?: string},
     *   session?: string, reason?: string, text?: string, cause?: unknown}} [details]
     */
    constructor(code: string, message: string, details?: {
        retryable?: boolean;
        status?: number;
        ref?: {
            type: string;
            session?: string;
        };
        session?: string;
        reason?: string;
        text?: string;
        cause?: unknown;
    });
    /** @type {string} */
    code: string;
    /** @type {boolean} */
    retryable: boolean;
    /** HTTP status, for errors answered as plain HTTP. @type {number | undefined} */
    status: number | undefined;
    /** The client message a connection-level error answers. */
    ref: {
        type: string;
        session?: string;
    };
    /** The session the error belongs to, when it belongs to one. @type {string | undefined} */
    session: string | undefined;
    /** The session's `stream_end.reason`, when the error ended a session. */
    reason: string;
    /** The text received before the failure. @type {string | undefined} */
    text: string | undefined;
}
