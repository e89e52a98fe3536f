/**
 * @param {import('./ws-client.js').TokenmuxClient | string} source a TokenmuxClient, or
 *   the URL of the SSE route (e.g. '/api/stream')
 * @param {{fetch?: typeof fetch,
 *   resume?: import('./session.js').Session | import('./stream-state.js').ResumeTarget | false}} [options]
 * @returns {import('./stream-state.js').StreamState & {
 *   start: (request: Record<string, any>) => Promise<import('./stream-state.js').StreamState>,
 *   cancel: () => void }}
 */
export function useTokenmuxStream(source: import("./ws-client.js").TokenmuxClient | string, options?: {
    fetch?: typeof fetch;
    resume?: import("./session.js").Session | import("./stream-state.js").ResumeTarget | false;
}): import("./stream-state.js").StreamState & {
    start: (request: Record<string, any>) => Promise<import("./stream-state.js").StreamState>;
    cancel: () => void;
};
