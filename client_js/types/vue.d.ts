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
    reasoning: Readonly<import("vue").Ref<string, string>>;
    toolCalls: Readonly<import("vue").Ref<readonly {
        /**
         * the provider's call id (send it back as the `tool` turn's `tool_call_id`)
         */
        readonly id: string;
        readonly name: string;
        /**
         * 0, 1, … in the order the calls began (null when a replay began past its start)
         */
        readonly index: number | null;
        /**
         * `done` from `tool_call_end` on
         */
        readonly status: "streaming" | "done";
        /**
         * the JSON text of the arguments so far
         */
        readonly argumentsText: string;
        /**
         * the parsed arguments, from `tool_call_end`
         * (null before it, and when the model's JSON did not parse)
         */
        readonly arguments: {
            readonly [x: string]: any;
        };
        /**
         * the arguments did not parse
         */
        readonly error?: "invalid_json";
        /**
         * the provider's opaque signature of the call, to send back
         */
        readonly signature?: string;
    }[], readonly {
        /**
         * the provider's call id (send it back as the `tool` turn's `tool_call_id`)
         */
        readonly id: string;
        readonly name: string;
        /**
         * 0, 1, … in the order the calls began (null when a replay began past its start)
         */
        readonly index: number | null;
        /**
         * `done` from `tool_call_end` on
         */
        readonly status: "streaming" | "done";
        /**
         * the JSON text of the arguments so far
         */
        readonly argumentsText: string;
        /**
         * the parsed arguments, from `tool_call_end`
         * (null before it, and when the model's JSON did not parse)
         */
        readonly arguments: {
            readonly [x: string]: any;
        };
        /**
         * the arguments did not parse
         */
        readonly error?: "invalid_json";
        /**
         * the provider's opaque signature of the call, to send back
         */
        readonly signature?: string;
    }[]>>;
    sources: Readonly<import("vue").Ref<readonly {
        readonly url?: string;
        readonly title?: string;
        readonly cited_text?: string;
        readonly document_index?: number;
    }[], readonly {
        readonly url?: string;
        readonly title?: string;
        readonly cited_text?: string;
        readonly document_index?: number;
    }[]>>;
    finishReason: Readonly<import("vue").Ref<string, string>>;
    rawFinishReason: Readonly<import("vue").Ref<string, string>>;
    refusal: Readonly<import("vue").Ref<string, string>>;
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
