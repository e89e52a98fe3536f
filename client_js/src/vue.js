/**
 * `useTokenmuxStream`: a Vue 3 composable over one stream at a time.
 *
 * ```js
 * const { text, status, error, start, cancel } = useTokenmuxStream(client); // or '/api/stream'
 * // also: reasoning, toolCalls, sources, finishReason, rawFinishReason, refusal
 * ```
 *
 * Every field is a readonly shallow ref. `start()` cancels a stream still running; when the
 * component (or effect scope) is disposed, the running stream is cancelled. On mount (at
 * once outside a component) it resumes `options.resume` (a session, or `{id, token,
 * afterSeq}`), or else, with a client that persists its sessions, the newest one it
 * restored after a reload.
 *
 * @module
 */

import { getCurrentInstance, getCurrentScope, onMounted, onScopeDispose, readonly, shallowRef } from 'vue';
import { createStreamState, resumeStream, runStream } from './index.js';
import { resumeTarget } from './stream-state.js';

/**
 * @param {import('./ws-client.js').TokenmuxClient | string} source a TokenmuxClient, or
 *   the URL of the SSE route (e.g. '/api/stream')
 * @param {{fetch?: typeof fetch,
 *   resume?: import('./session.js').Session | import('./stream-state.js').ResumeTarget | false}} [options]
 */
export function useTokenmuxStream(source, options = {}) {
  const initial = createStreamState();
  const refs = {
    status: shallowRef(initial.status),
    text: shallowRef(initial.text),
    reasoning: shallowRef(initial.reasoning),
    toolCalls: shallowRef(initial.toolCalls),
    sources: shallowRef(initial.sources),
    finishReason: shallowRef(initial.finishReason),
    rawFinishReason: shallowRef(initial.rawFinishReason),
    refusal: shallowRef(initial.refusal),
    sessionId: shallowRef(initial.sessionId),
    provider: shallowRef(initial.provider),
    model: shallowRef(initial.model),
    usage: shallowRef(initial.usage),
    ttftMs: shallowRef(initial.ttftMs),
    error: shallowRef(initial.error),
  };
  /** @type {AbortController | null} */
  let running = null;

  /** @param {import('./stream-state.js').StreamState} state */
  function apply(state) {
    for (const key of /** @type {(keyof typeof refs)[]} */ (Object.keys(refs))) {
      refs[key].value = /** @type {any} */ (state[key]);
    }
  }

  // `running` is the latest stream, even once cancelled: only its updates are applied.
  function cancel() {
    running?.abort();
  }

  /** @param {(signal: AbortSignal, onState: (state: import('./stream-state.js').StreamState) => void) => Promise<any>} run */
  function follow(run) {
    running?.abort();
    const controller = new AbortController();
    running = controller;
    return run(controller.signal, (state) => {
      if (running === controller) apply(state);
    });
  }

  /** @param {Record<string, any>} request */
  function start(request) {
    return follow((signal, onState) => runStream(source, request, { signal, fetch: options.fetch, onState }));
  }

  const target = resumeTarget(source, options.resume);
  if (target && typeof source !== 'string') {
    const resume = () => {
      if (!running) follow((signal, onState) => resumeStream(source, target, { signal, onState }));
    };
    if (getCurrentInstance()) onMounted(resume);
    else resume();
  }

  if (getCurrentScope()) onScopeDispose(cancel);
  return {
    status: readonly(refs.status),
    text: readonly(refs.text),
    reasoning: readonly(refs.reasoning),
    toolCalls: readonly(refs.toolCalls),
    sources: readonly(refs.sources),
    finishReason: readonly(refs.finishReason),
    rawFinishReason: readonly(refs.rawFinishReason),
    refusal: readonly(refs.refusal),
    sessionId: readonly(refs.sessionId),
    provider: readonly(refs.provider),
    model: readonly(refs.model),
    usage: readonly(refs.usage),
    ttftMs: readonly(refs.ttftMs),
    error: readonly(refs.error),
    start,
    cancel,
  };
}
