export class UniversalStreamClient {
    /** @param {{fetch?: typeof fetch, headers?: Record<string, string>}} [options] */
    constructor(options?: {
        fetch?: typeof fetch;
        headers?: Record<string, string>;
    });
    _fetch: typeof fetch;
    _headers: Record<string, string>;
    /** @type {Set<AbortController>} */
    _controllers: Set<AbortController>;
    /**
     * POST `payload` to `endpoint` and stream its events.
     * @template [T=any]
     * @param {string} endpoint
     * @param {unknown} payload
     * @param {string[]} [allowedEvents] event types to yield (all when empty)
     * @returns {Promise<AsyncGenerator<{type: string, data: T, [key: string]: unknown}, void, unknown>>}
     */
    createStream<T = any>(endpoint: string, payload: unknown, allowedEvents?: string[]): Promise<AsyncGenerator<{
        type: string;
        data: T;
        [key: string]: unknown;
    }, void, unknown>>;
    /** Abort every stream of this client. */
    abort(): void;
    /**
     * @param {ReadableStreamDefaultReader<Uint8Array>} reader @param {string[]} allowed
     * @param {AbortController} controller
     */
    _events(reader: ReadableStreamDefaultReader<Uint8Array>, allowed: string[], controller: AbortController): AsyncGenerator<any, void, unknown>;
}
