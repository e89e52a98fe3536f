/**
 * `useTokenmuxStream`: a React hook over one stream at a time.
 *
 * ```jsx
 * const { text, status, error, start, cancel } = useTokenmuxStream(client); // or '/api/stream'
 * <button onClick={() => start({ prompt })}>Send</button>
 * ```
 *
 * `start()` cancels a stream still running; unmounting cancels it too.
 *
 * @module
 */

import { useCallback, useEffect, useRef, useState } from 'react';
import { createStreamState, runStream } from './index.js';

/**
 * @param {import('./ws-client.js').TokenmuxClient | string} source a TokenmuxClient, or
 *   the URL of the SSE route (e.g. '/api/stream')
 * @param {{fetch?: typeof fetch}} [options]
 * @returns {import('./stream-state.js').StreamState & {
 *   start: (request: Record<string, any>) => Promise<import('./stream-state.js').StreamState>,
 *   cancel: () => void }}
 */
export function useTokenmuxStream(source, options = {}) {
  const [state, setState] = useState(createStreamState);
  /** @type {{current: AbortController | null}} */
  const running = useRef(null);
  const sourceRef = useRef(source);
  sourceRef.current = source;
  const fetchRef = useRef(options.fetch);
  fetchRef.current = options.fetch;

  // The latest stream, even once cancelled: only its updates reach the state.
  const cancel = useCallback(() => running.current?.abort(), []);

  const start = useCallback((/** @type {Record<string, any>} */ request) => {
    running.current?.abort();
    const controller = new AbortController();
    running.current = controller;
    return runStream(sourceRef.current, request, {
      signal: controller.signal,
      fetch: fetchRef.current,
      onState: (next) => {
        if (running.current === controller) setState(next);
      },
    });
  }, []);

  useEffect(() => cancel, [cancel]);
  return { ...state, start, cancel };
}
