/**
 * The section 9 parts of an answer beyond its text (reasoning, tool calls, sources, the
 * finish details), folded from envelopes by pure functions that the Session and the
 * stream-state reducer share.
 *
 * @module
 */
/**
 * @typedef {object} ToolCall One tool call of an answer, as it streams.
 * @property {string} id the provider's call id (send it back as the `tool` turn's `tool_call_id`)
 * @property {string} name
 * @property {number | null} index 0, 1, … in the order the calls began (null when a replay began past its start)
 * @property {'streaming' | 'done'} status `done` from `tool_call_end` on
 * @property {string} argumentsText the JSON text of the arguments so far
 * @property {Record<string, any> | null} arguments the parsed arguments, from `tool_call_end`
 *   (null before it, and when the model's JSON did not parse)
 * @property {'invalid_json'} [error] the arguments did not parse
 * @property {string} [signature] the provider's opaque signature of the call, to send back
 */
/**
 * @typedef {object} Source A citation or grounding source; only the fields the provider gave.
 * @property {string} [url]
 * @property {string} [title]
 * @property {string} [cited_text]
 * @property {number} [document_index]
 */
/**
 * @typedef {object} FinishDetails From the final `metadata`.
 * @property {string | null} finishReason normalized: `stop`, `length`, `tool_calls`, `content_filter`, `other`
 * @property {string | null} rawFinishReason the provider's own word
 * @property {string | null} refusal the refusal text, when the model refused
 */
/**
 * The calls after one `tool_call_start`/`tool_call_delta`/`tool_call_end`, and the call it
 * changed. Returns a new array with a new object for the changed call; the others are kept.
 * A delta or end whose start was not seen (a replay that began past it) makes the call.
 * @param {readonly ToolCall[]} calls
 * @param {string} type
 * @param {Record<string, any>} data
 * @returns {{calls: ToolCall[], call: ToolCall}}
 */
export function applyToolCallEvent(calls: readonly ToolCall[], type: string, data: Record<string, any>): {
    calls: ToolCall[];
    call: ToolCall;
};
/**
 * The calls as `content_complete.tool_calls` states them (in the order they ended), each
 * merged with what streamed; calls it does not list are kept.
 * @param {readonly ToolCall[]} calls @param {Record<string, any>[]} finals
 * @returns {ToolCall[]}
 */
export function completeToolCalls(calls: readonly ToolCall[], finals: Record<string, any>[]): ToolCall[];
/**
 * The finish details a `metadata` event adds (only the keys it carries).
 * @param {Record<string, any>} data
 * @returns {Partial<FinishDetails>}
 */
export function finishDetails(data: Record<string, any>): Partial<FinishDetails>;
/**
 * A `source` event's data with only the documented fields.
 * @param {Record<string, any>} data
 * @returns {Source}
 */
export function sourceOf(data: Record<string, any>): Source;
/**
 * Call a page's callback; one that throws is reported, and the stream goes on.
 * @template {any[]} A
 * @param {((...args: A) => void) | null | undefined} callback @param {A} args
 */
export function notify<A extends any[]>(callback: ((...args: A) => void) | null | undefined, ...args: A): void;
/**
 * One tool call of an answer, as it streams.
 */
export type ToolCall = {
    /**
     * the provider's call id (send it back as the `tool` turn's `tool_call_id`)
     */
    id: string;
    name: string;
    /**
     * 0, 1, … in the order the calls began (null when a replay began past its start)
     */
    index: number | null;
    /**
     * `done` from `tool_call_end` on
     */
    status: "streaming" | "done";
    /**
     * the JSON text of the arguments so far
     */
    argumentsText: string;
    /**
     * the parsed arguments, from `tool_call_end`
     * (null before it, and when the model's JSON did not parse)
     */
    arguments: Record<string, any> | null;
    /**
     * the arguments did not parse
     */
    error?: "invalid_json";
    /**
     * the provider's opaque signature of the call, to send back
     */
    signature?: string;
};
/**
 * A citation or grounding source; only the fields the provider gave.
 */
export type Source = {
    url?: string;
    title?: string;
    cited_text?: string;
    document_index?: number;
};
/**
 * From the final `metadata`.
 */
export type FinishDetails = {
    /**
     * normalized: `stop`, `length`, `tool_calls`, `content_filter`, `other`
     */
    finishReason: string | null;
    /**
     * the provider's own word
     */
    rawFinishReason: string | null;
    /**
     * the refusal text, when the model refused
     */
    refusal: string | null;
};
