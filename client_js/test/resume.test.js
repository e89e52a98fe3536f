// Reconnect + resume (PROTOCOL.md section 6) against a scripted WebSocket server, which can
// send exactly the replays (duplicates, refusals, recovered: false) each case needs.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { afterEach, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { TokenmuxClient } from '../src/index.js';

let wss;
let client;

afterEach(async () => {
  client?.close();
  for (const socket of wss?.clients ?? []) socket.terminate();
  await new Promise((resolve) => wss ? wss.close(resolve) : resolve());
});

/** A server that runs `script(socket, messages, connectionNumber)` for each connection. */
async function scriptedServer(script) {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (protocols) => [...protocols][0] });
  await once(wss, 'listening');
  let connections = 0;
  wss.on('connection', (socket) => {
    connections += 1;
    const messages = [];
    const waiters = [];
    socket.on('message', (raw) => {
      messages.push(JSON.parse(String(raw)));
      for (const waiter of waiters.splice(0)) waiter();
    });
    const next = async () => {
      while (!messages.length) await new Promise((resolve) => waiters.push(resolve));
      return messages.shift();
    };
    const send = (event) => socket.send(JSON.stringify({ timestamp: Date.now(), ...event }));
    send({ type: 'ready', data: { protocol: 1, encoding: 'json', providers: ['sim'] } });
    script({ socket, next, send }, connections);
  });
  return `ws://127.0.0.1:${wss.address().port}/ws`;
}

const ev = (session, seq, type, data) => ({ type, session, seq, data });
const chunk = (session, seq, content, index) => ev(session, seq, 'content_chunk', { content, index, accumulated_length: 0 });

test('after a drop the client resumes with the token and last seq, and drops replayed duplicates', async () => {
  const seen = {};
  const url = await scriptedServer(async ({ socket, next, send }, connection) => {
    if (connection === 1) {
      const start = await next();
      seen.start = start;
      send(ev(start.session, 0, 'stream_start', { session_id: start.session, provider: 'sim', model: 'sim-1', resume_token: 'secret' }));
      send(chunk(start.session, 1, 'Hello', 0));
      send(chunk(start.session, 2, ', wor', 1));
      setTimeout(() => socket.terminate(), 10);
    } else {
      const resume = await next();
      seen.resume = resume;
      const id = resume.session;
      send(chunk(id, 2, ', wor', 1)); // already seen: must be dropped
      send(chunk(id, 3, 'ld', 2));
      send(ev(id, 4, 'content_complete', { total_content: 'Hello, world', total_length: 12 }));
      send(ev(id, 5, 'stream_end', { reason: 'complete', duration_ms: 9, chunks: 3, usage: { input_tokens: 1, output_tokens: 3, estimated: false } }));
    }
  });
  client = new TokenmuxClient(url, { WebSocket, reconnect: true, initialDelayMs: 10 });
  const session = client.stream({ prompt: 'Hi' });
  const seqs = [];
  for await (const event of session) seqs.push(event.seq);
  assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5]);
  assert.equal(seen.start.data.on_disconnect, 'detach', 'with reconnect on, sessions ask to be kept on disconnect');
  assert.deepEqual(seen.resume, { type: 'resume', session: session.id, data: { resume_token: 'secret', after_seq: 2 } });
  const result = await session.done;
  assert.equal(result.reason, 'complete');
  assert.equal(result.text, 'Hello, world');
});

test('a refused resume fails the session with a retryable connection_lost', async () => {
  const url = await scriptedServer(async ({ socket, next, send }, connection) => {
    const message = await next();
    if (connection === 1) {
      send(ev(message.session, 0, 'stream_start', { session_id: message.session, provider: 'sim', model: 'sim-1', resume_token: 'secret' }));
      send(chunk(message.session, 1, 'Hel', 0));
      setTimeout(() => socket.terminate(), 10);
    } else {
      send({ type: 'error', data: { code: 'session_not_found', message: 'expired', retryable: false, ref: { type: 'resume', session: message.session } } });
    }
  });
  client = new TokenmuxClient(url, { WebSocket, reconnect: true, initialDelayMs: 10 });
  const session = client.stream({ prompt: 'Hi' });
  await assert.rejects(session.done, (error) => {
    assert.equal(error.code, 'connection_lost');
    assert.equal(error.retryable, true);
    assert.match(error.message, /could not be resumed: expired/);
    assert.equal(error.text, 'Hel');
    return true;
  });
});

test('a replay that starts past the buffer replaces the text with content_so_far', async () => {
  const url = await scriptedServer(async ({ socket, next, send }, connection) => {
    const message = await next();
    const id = message.session;
    if (connection === 1) {
      send(ev(id, 0, 'stream_start', { session_id: id, provider: 'sim', model: 'sim-1', resume_token: 't' }));
      send(chunk(id, 1, 'AB', 0));
      setTimeout(() => socket.terminate(), 10);
    } else {
      send(ev(id, 5, 'metadata', { recovered: false, content_so_far: 'ABCDEF' }));
      send(chunk(id, 6, 'G', 5));
      send(ev(id, 7, 'stream_end', { reason: 'cancelled', duration_ms: 1, chunks: 6, usage: null }));
    }
  });
  client = new TokenmuxClient(url, { WebSocket, reconnect: true, initialDelayMs: 10 });
  const session = client.stream({ prompt: 'Hi' });
  const result = await session.done;
  assert.equal(result.reason, 'cancelled');
  assert.equal(result.text, 'ABCDEFG');
});

test('with the server gone, a queued session fails after resumeTimeoutMs instead of waiting forever', async () => {
  const url = await scriptedServer(() => {});
  await new Promise((resolve) => wss.close(resolve)); // nothing listens any more
  wss = undefined;
  client = new TokenmuxClient(url, { WebSocket, reconnect: true, initialDelayMs: 10, resumeTimeoutMs: 200 });
  const session = client.stream({ prompt: 'Hi' });
  await assert.rejects(session.done, { code: 'connection_lost', retryable: true });
  assert.equal(client.state, 'connecting', 'the client keeps trying for later sessions');
});

test('connect() during a reconnect waits for the new connection', async () => {
  const url = await scriptedServer(({ socket }, connection) => {
    if (connection === 1) setTimeout(() => socket.terminate(), 10);
  });
  client = new TokenmuxClient(url, { WebSocket, reconnect: true, initialDelayMs: 10 });
  await client.connect();
  await new Promise((resolve) => client.addEventListener('statechange', resolve, { once: true }));
  assert.equal(client.state, 'connecting');
  const info = await client.connect();
  assert.equal(info.protocol, 1);
  assert.equal(client.state, 'open');
});

test('section 9 events replayed after a drop are seen once; merged reasoning and invalid JSON arguments', async () => {
  const url = await scriptedServer(async ({ socket, next, send }, connection) => {
    const reasoning = (id, seq, content, index, length) => ev(id, seq, 'reasoning_chunk', { content, index, accumulated_length: length });
    if (connection === 1) {
      const start = await next();
      const id = start.session;
      send(ev(id, 0, 'stream_start', { session_id: id, provider: 'sim', model: 'sim-1', resume_token: 'secret' }));
      send(reasoning(id, 1, 'Think', 0, 5));
      send(ev(id, 2, 'tool_call_start', { id: 'call_a', name: 'lookup', index: 0 }));
      send(ev(id, 3, 'tool_call_delta', { id: 'call_a', arguments_delta: '{"q": ' }));
      setTimeout(() => socket.terminate(), 10);
    } else {
      const resume = await next();
      const id = resume.session;
      send(reasoning(id, 1, 'Think', 0, 5)); // already seen: dropped
      send(ev(id, 3, 'tool_call_delta', { id: 'call_a', arguments_delta: '{"q": ' })); // already seen
      send(reasoning(id, 5, ' it over', 2, 13)); // a merged chunk: seq 4 and 5 in one
      send(ev(id, 6, 'tool_call_delta', { id: 'call_a', arguments_delta: 'oops' }));
      send(ev(id, 7, 'tool_call_end', { id: 'call_a', name: 'lookup', arguments: null, arguments_text: '{"q": oops', error: 'invalid_json' }));
      send(ev(id, 8, 'source', { url: 'https://example.com/a', title: 'A', extra: 'ignored' }));
      send(ev(id, 9, 'metadata', { finish_reason: 'tool_calls', raw_finish_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 2, reasoning_tokens: 1 } }));
      send(ev(id, 10, 'content_complete', {
        total_content: '', total_length: 0, reasoning: { text: 'Think it over', signature: 'sig' },
        tool_calls: [{ id: 'call_a', name: 'lookup', arguments: null, arguments_text: '{"q": oops', error: 'invalid_json' }],
      }));
      send(ev(id, 11, 'stream_end', { reason: 'complete', duration_ms: 9, chunks: 0 }));
    }
  });
  client = new TokenmuxClient(url, { WebSocket, reconnect: true, initialDelayMs: 10 });
  const pieces = [];
  const calls = [];
  const sources = [];
  const session = client.stream({ prompt: 'Hi' }, {
    onReasoning: (delta) => pieces.push(delta),
    onToolCall: (call) => calls.push(call),
  });
  session.onSource = (source) => sources.push(source);
  const seqs = [];
  for await (const event of session) seqs.push(event.seq);
  assert.deepEqual(seqs, [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(pieces, ['Think', ' it over']);
  assert.equal(session.reasoning, 'Think it over');
  assert.equal(session.reasoningSignature, 'sig');
  assert.deepEqual(calls.map((call) => call.argumentsText), ['', '{"q": ', '{"q": oops', '{"q": oops']);
  assert.deepEqual(session.toolCalls, [{
    id: 'call_a', name: 'lookup', index: 0, status: 'done', argumentsText: '{"q": oops', arguments: null, error: 'invalid_json',
  }]);
  assert.deepEqual(sources, [{ url: 'https://example.com/a', title: 'A' }]);
  assert.deepEqual(session.sources, sources);
  assert.equal(session.finishReason, 'tool_calls');
  assert.equal(session.rawFinishReason, 'tool_use');
  assert.equal((await session.done).reason, 'complete');
});

test('a replay that begins past a call\'s start still builds the call, from its deltas on', async () => {
  const url = await scriptedServer(async ({ next, send }) => {
    const resume = await next();
    const id = resume.session;
    send(ev(id, 4, 'tool_call_delta', { id: 'call_b', arguments_delta: '"x"}' }));
    send(ev(id, 5, 'tool_call_end', { id: 'call_b', name: 'find', arguments: { q: 'x' } }));
    send(ev(id, 6, 'stream_end', { reason: 'complete', duration_ms: 1, chunks: 0 }));
  });
  client = new TokenmuxClient(url, { WebSocket });
  const session = client.resume('s-late', { token: 'secret', afterSeq: 3 });
  await session.done;
  assert.deepEqual(session.toolCalls, [{
    id: 'call_b', name: 'find', index: null, status: 'done', argumentsText: '"x"}', arguments: { q: 'x' },
  }]);
});
