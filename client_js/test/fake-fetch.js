// A fetch that answers from a script of byte chunks, to test the SSE clients without a server.

const encoder = new TextEncoder();

/**
 * @param {{status?: number, body?: string | string[], headers?: Record<string, string>, error?: Error}} reply
 * @returns {typeof fetch & {requests: {url: string, init: RequestInit}[]}}
 */
export function fakeFetch(reply) {
  const requests = [];
  const fetchImpl = async (url, init) => {
    requests.push({ url: String(url), init });
    if (reply.error) throw reply.error;
    const chunks = [].concat(reply.body ?? []);
    const stream = new ReadableStream({
      pull(controller) {
        if (init?.signal?.aborted) return controller.error(init.signal.reason);
        const chunk = chunks.shift();
        if (chunk === undefined) controller.close();
        else controller.enqueue(encoder.encode(chunk));
      },
    });
    return new Response(stream, {
      status: reply.status ?? 200,
      headers: reply.headers ?? { 'content-type': 'text/event-stream' },
    });
  };
  fetchImpl.requests = requests;
  return fetchImpl;
}

/** The SSE lines of a session: `data: <json>` blocks then `[DONE]`. */
export function sseBody(events, { done = true } = {}) {
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + (done ? 'data: [DONE]\n\n' : '');
}

/** A full session's envelopes with the given chunks. */
export function sessionEvents(id, chunks, reason = 'complete') {
  const events = [{ type: 'stream_start', session: id, data: { session_id: id, provider: 'sim', model: 'sim-1', resume_token: null } }];
  let text = '';
  chunks.forEach((content, index) => {
    text += content;
    events.push({ type: 'content_chunk', session: id, data: { content, index, accumulated_length: [...text].length } });
  });
  if (reason === 'complete') events.push({ type: 'content_complete', session: id, data: { total_content: text, total_length: [...text].length } });
  if (reason === 'error') events.push({ type: 'error', session: id, data: { code: 'provider_error', message: 'boom', retryable: true } });
  const usage = { input_tokens: 1, output_tokens: chunks.length, estimated: reason !== 'complete' };
  events.push({ type: 'stream_end', session: id, data: { reason, duration_ms: 5, chunks: chunks.length, usage } });
  return events.map((e, seq) => ({ ...e, seq, timestamp: 1 }));
}
