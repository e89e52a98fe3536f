/**
 * @param {import('./ws-client.js').TokenmuxClient | string} source a TokenmuxClient, or
 *   the URL of the SSE route (e.g. '/api/stream')
 * @param {{fetch?: typeof fetch,
 *   resume?: import('./session.js').Session | import('./stream-state.js').ResumeTarget | false}} [options]
 */
export function useTokenmuxStream(source: import("./ws-client.js").TokenmuxClient | string, options?: {
    fetch?: typeof fetch;
    resume?: import("./session.js").Session | import("./stream-state.js").ResumeTarget | false;
}): {
    status: Readonly<import("vue").Ref<"error" | "complete" | "cancelled" | "streaming" | "idle" | "connecting", "error" | "complete" | "cancelled" | "streaming" | "idle" | "connecting">>;
    text: Readonly<import("vue").Ref<string, string>>;
    sessionId: Readonly<import("vue").Ref<string, string>>;
    provider: Readonly<import("vue").Ref<string, string>>;
    model: Readonly<import("vue").Ref<string, string>>;
    usage: Readonly<import("vue").Ref<{
        readonly [x: string]: any;
    }, {
        readonly [x: string]: any;
    }>>;
    ttftMs: Readonly<import("vue").Ref<number, number>>;
    error: Readonly<import("vue").Ref<import("./errors.js").TokenmuxError, import("./errors.js").TokenmuxError>>;
    start: (request: Record<string, any>) => Promise<any>;
    cancel: () => void;
};
