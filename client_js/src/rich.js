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
export function applyToolCallEvent(calls, type, data) {
  const at = calls.findIndex((call) => call.id === data.id);
  /** @type {ToolCall} */
  const before = at >= 0 ? calls[at] : {
    id: data.id, name: data.name ?? '', index: null, status: 'streaming', argumentsText: '', arguments: null,
  };
  /** @type {ToolCall} */
  let call;
  if (type === 'tool_call_start') {
    call = { ...before, name: data.name ?? before.name, index: data.index ?? before.index };
  } else if (type === 'tool_call_delta') {
    call = { ...before, argumentsText: before.argumentsText + (data.arguments_delta ?? '') };
  } else {
    call = endedCall(before, data);
  }
  const next = [...calls];
  if (at >= 0) next[at] = call;
  else next.push(call);
  return { calls: next, call };
}

/**
 * A call as `tool_call_end` (or `content_complete.tool_calls`) states it.
 * @param {ToolCall} before @param {Record<string, any>} data
 * @returns {ToolCall}
 */
function endedCall(before, data) {
  const parsed = data.arguments ?? null;
  /** @type {ToolCall} */
  const call = {
    ...before,
    name: data.name ?? before.name,
    status: 'done',
    arguments: parsed,
    // The text as it streamed; the parsed object's JSON only when none streamed (a replay
    // that began past the deltas).
    argumentsText: typeof data.arguments_text === 'string' ? data.arguments_text
      : before.argumentsText || (parsed === null ? '' : JSON.stringify(parsed)),
  };
  if (data.error === 'invalid_json') call.error = 'invalid_json';
  if (typeof data.signature === 'string') call.signature = data.signature;
  return call;
}

/**
 * The calls as `content_complete.tool_calls` states them (in the order they ended), each
 * merged with what streamed; calls it does not list are kept.
 * @param {readonly ToolCall[]} calls @param {Record<string, any>[]} finals
 * @returns {ToolCall[]}
 */
export function completeToolCalls(calls, finals) {
  let next = [...calls];
  for (const data of finals) {
    const known = next.find((call) => call.id === data.id);
    if (known?.status === 'done') continue; // its tool_call_end said it all
    next = applyToolCallEvent(next, 'tool_call_end', data).calls;
  }
  return next;
}

/**
 * The finish details a `metadata` event adds (only the keys it carries).
 * @param {Record<string, any>} data
 * @returns {Partial<FinishDetails>}
 */
export function finishDetails(data) {
  /** @type {Partial<FinishDetails>} */
  const details = {};
  if (typeof data.finish_reason === 'string') details.finishReason = data.finish_reason;
  if (typeof data.raw_finish_reason === 'string') details.rawFinishReason = data.raw_finish_reason;
  if (typeof data.refusal === 'string') details.refusal = data.refusal;
  return details;
}

/**
 * A `source` event's data with only the documented fields.
 * @param {Record<string, any>} data
 * @returns {Source}
 */
export function sourceOf(data) {
  /** @type {Source} */
  const source = {};
  if (typeof data.url === 'string') source.url = data.url;
  if (typeof data.title === 'string') source.title = data.title;
  if (typeof data.cited_text === 'string') source.cited_text = data.cited_text;
  if (typeof data.document_index === 'number') source.document_index = data.document_index;
  return source;
}

/**
 * Call a page's callback; one that throws is reported, and the stream goes on.
 * @template {any[]} A
 * @param {((...args: A) => void) | null | undefined} callback @param {A} args
 */
export function notify(callback, ...args) {
  if (typeof callback !== 'function') return;
  try {
    callback(...args);
  } catch (error) {
    if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
    else setTimeout(() => { throw error; });
  }
}
