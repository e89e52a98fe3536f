/**
 * `useTokenmuxStream`: a React hook over one stream at a time.
 *
 * ```jsx
 * const { text, status, error, start, cancel } = useTokenmuxStream(client); // or '/api/stream'
 * <button onClick={() => start({ prompt })}>Send</button>
 * // also: reasoning, toolCalls, sources, finishReason, rawFinishReason, refusal
 * ```
 *
 * `start()` cancels a stream still running; unmounting cancels it too. On mount the hook
 * resumes `options.resume` (a session, or `{id, token, afterSeq}`), or else, with a client
 * that persists its sessions, the newest one it restored after a reload.
 *
 * @module
 */

import { useCallback, useEffect, useRef, useState } from 'react';
import { createStreamState, resumeStream, runStream } from './index.js';
import { resumeTarget } from './stream-state.js';

/**
 * @param {import('./ws-client.js').TokenmuxClient | string} source a TokenmuxClient, or
 *   the URL of the SSE route (e.g. '/api/stream')
 * @param {{fetch?: typeof fetch,
 *   resume?: import('./session.js').Session | import('./stream-state.js').ResumeTarget | false}} [options]
 * @returns {import('./stream-state.js').StreamState & {
 *   start: (request: Record<string, any>) => Promise<import('./stream-state.js').StreamState>,
 *   cancel: () => void }}
 */
export function useTokenmuxStream(source, options = {}) {
  const [state, setState] = useState(createStreamState);
  /** @type {{current: AbortController | null}} */
  const running = useRef(null);
  const mounted = useRef(false);
  const sourceRef = useRef(source);
  sourceRef.current = source;
  const fetchRef = useRef(options.fetch);
  fetchRef.current = options.fetch;
  const resumeRef = useRef(options.resume);
  resumeRef.current = options.resume;

  // The latest stream, even once cancelled: only its updates reach the state.
  const cancel = useCallback(() => running.current?.abort(), []);

  /** @type {(run: (signal: AbortSignal, onState: (state: any) => void) => Promise<any>) => Promise<any>} */
  const follow = useCallback((run) => {
    running.current?.abort();
    const controller = new AbortController();
    running.current = controller;
    return run(controller.signal, (next) => {
      if (running.current === controller) setState(next);
    });
  }, []);

  const start = useCallback((/** @type {Record<string, any>} */ request) => follow(
    (signal, onState) => runStream(sourceRef.current, request, { signal, fetch: fetchRef.current, onState }),
  ), [follow]);

  useEffect(() => {
    mounted.current = true;
    const client = sourceRef.current;
    const target = running.current ? null : resumeTarget(client, resumeRef.current);
    if (target && typeof client !== 'string') follow((signal, onState) => resumeStream(client, target, { signal, onState }));
    return () => {
      // React's StrictMode unmounts and mounts again at once: only a real unmount cancels.
      mounted.current = false;
      queueMicrotask(() => {
        if (!mounted.current) cancel();
      });
    };
  }, [cancel, follow]);
  return { ...state, start, cancel };
}
