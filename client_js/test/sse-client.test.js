import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenmuxError, UniversalStreamClient, streamSSE } from '../src/index.js';
import { fakeFetch, sessionEvents, sseBody } from './fake-fetch.js';

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('streamSSE', () => {
  test('yields every envelope, split anywhere, and stops at [DONE]', async () => {
    const body = sseBody(sessionEvents('s1', ['Hé', 'llo 👋']));
    const chunks = body.match(/[\s\S]{1,7}/g);
    const fetch = fakeFetch({ body: chunks });
    const events = await collect(streamSSE('/api/stream', { prompt: 'Hi' }, { fetch }));
    assert.deepEqual(events.map((e) => e.type), ['stream_start', 'content_chunk', 'content_chunk', 'content_complete', 'stream_end']);
    assert.equal(fetch.requests[0].init.method, 'POST');
    assert.deepEqual(JSON.parse(fetch.requests[0].init.body), { prompt: 'Hi' });
  });

  test('an HTTP error body becomes a TokenmuxError with the code and status', async () => {
    const fetch = fakeFetch({
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: { code: 'unknown_provider', message: "unknown provider 'x'" } }),
    });
    await assert.rejects(collect(streamSSE('/api/stream', { prompt: 'Hi' }, { fetch })), (error) => {
      assert.ok(error instanceof TokenmuxError);
      assert.equal(error.code, 'unknown_provider');
      assert.equal(error.status, 400);
      assert.equal(error.retryable, false);
      return true;
    });
  });

  test('a network failure is a retryable network_error', async () => {
    const fetch = fakeFetch({ error: new TypeError('Failed to fetch') });
    await assert.rejects(collect(streamSSE('/api/stream', { prompt: 'Hi' }, { fetch })), { code: 'network_error', retryable: true });
  });

  test('a stream cut before [DONE] is connection_lost', async () => {
    const fetch = fakeFetch({ body: sseBody(sessionEvents('s1', ['a']).slice(0, 2), { done: false }) });
    await assert.rejects(collect(streamSSE('/api/stream', { prompt: 'Hi' }, { fetch })), { code: 'connection_lost' });
  });

  test('an aborted signal ends the iteration with its reason', async () => {
    const controller = new AbortController();
    const fetch = fakeFetch({ body: [sseBody(sessionEvents('s1', ['a', 'b'])).slice(0, 150), 'data: {}\n\n'] });
    const events = streamSSE('/api/stream', { prompt: 'Hi' }, { fetch, signal: controller.signal });
    await events.next();
    controller.abort();
    await assert.rejects(events.next(), { name: 'AbortError' });
  });

  test('misuse gets a helpful error', async () => {
    await assert.rejects(collect(streamSSE('/api/stream', 'Hi')), /body must be an object/);
  });
});

describe('UniversalStreamClient', () => {
  test('createStream() filters by allowedEvents and ends at [DONE]', async () => {
    const fetch = fakeFetch({ body: sseBody(sessionEvents('s1', ['a', 'b'])) });
    const client = new UniversalStreamClient({ fetch });
    const stream = await client.createStream('/api/stream', { prompt: 'x' }, ['content_chunk', 'content_complete']);
    const events = await collect(stream);
    assert.deepEqual(events.map((e) => e.type), ['content_chunk', 'content_chunk', 'content_complete']);
    assert.equal(events[2].data.total_content, 'ab');
  });

  test('a data line that is not JSON becomes an error event, as in the reference client', async () => {
    const fetch = fakeFetch({ body: 'data: not json\n\ndata: [DONE]\n\n' });
    const events = await collect(await new UniversalStreamClient({ fetch }).createStream('/x', {}));
    assert.deepEqual(events, [{ type: 'error', data: { message: 'Parse error', raw: 'not json' } }]);
  });

  test('HTTP errors reject createStream() with "HTTP <status>"', async () => {
    const fetch = fakeFetch({ status: 503, headers: { 'content-type': 'text/plain' }, body: 'down' });
    await assert.rejects(new UniversalStreamClient({ fetch }).createStream('/x', {}), /^TokenmuxError: HTTP 503/);
  });

  test('abort() ends the stream quietly, and the client can stream again', async () => {
    const body = sseBody(sessionEvents('s1', ['a', 'b', 'c']));
    const fetch = fakeFetch({ body: body.match(/[\s\S]{1,40}/g) });
    const client = new UniversalStreamClient({ fetch });
    const stream = await client.createStream('/x', {});
    const first = await stream.next();
    assert.equal(first.value.type, 'stream_start');
    client.abort();
    const events = await collect(stream);
    assert.ok(events.length < 5);
    const again = await collect(await client.createStream('/x', {}));
    assert.equal(again.at(-1).type, 'stream_end');
  });
});
