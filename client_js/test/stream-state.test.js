import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStreamState, reduceStreamState, runStream } from '../src/stream-state.js';
import { fakeFetch, sessionEvents, sseBody } from './fake-fetch.js';

test('the reducer follows a session from start to complete', () => {
  let state = createStreamState();
  for (const event of sessionEvents('s1', ['a', 'b'])) state = reduceStreamState(state, event, 12);
  assert.equal(state.status, 'complete');
  assert.equal(state.text, 'ab');
  assert.equal(state.model, 'sim-1');
  assert.equal(state.ttftMs, 12);
  assert.equal(state.usage.output_tokens, 2);
});

test('the reducer turns an error end into status error with the TokenmuxError', () => {
  let state = createStreamState();
  for (const event of sessionEvents('s1', ['a'], 'error')) state = reduceStreamState(state, event);
  assert.equal(state.status, 'error');
  assert.equal(state.error.code, 'provider_error');
});

test('runStream drives an SSE endpoint and reports every state', async () => {
  const states = [];
  const fetch = fakeFetch({ body: sseBody(sessionEvents('s1', ['x', 'y'])) });
  const final = await runStream('/api/stream', { prompt: 'p' }, { fetch, onState: (s) => states.push(s.status) });
  assert.equal(final.status, 'complete');
  assert.equal(final.text, 'xy');
  assert.deepEqual([...new Set(states)], ['connecting', 'streaming', 'complete']);
});

test('runStream turns a failed request into status error', async () => {
  const fetch = fakeFetch({ error: new TypeError('offline') });
  const final = await runStream('/api/stream', { prompt: 'p' }, { fetch, onState() {} });
  assert.equal(final.status, 'error');
  assert.equal(final.error.code, 'network_error');
});

test('the reducer folds reasoning (merged chunks too), interleaved tool calls, sources and a refusal without mutating', () => {
  const ev = (type, data) => ({ type, session: 's1', data });
  const events = [
    ev('stream_start', { session_id: 's1', provider: 'sim', model: 'sim-1' }),
    ev('reasoning_chunk', { content: 'Let me', index: 0, accumulated_length: 6 }),
    ev('reasoning_chunk', { content: ' look it up', index: 2, accumulated_length: 17 }), // a merged chunk
    ev('tool_call_start', { id: 'a', name: 'first', index: 0 }),
    ev('tool_call_start', { id: 'b', name: 'second', index: 1 }),
    ev('tool_call_delta', { id: 'b', arguments_delta: '{"x"' }),
    ev('tool_call_delta', { id: 'a', arguments_delta: '{"y": 1}' }),
    ev('tool_call_delta', { id: 'b', arguments_delta: ': tru' }),
    ev('tool_call_end', { id: 'a', name: 'first', arguments: { y: 1 } }),
    ev('tool_call_end', { id: 'b', name: 'second', arguments: null, arguments_text: '{"x": tru', error: 'invalid_json' }),
    ev('source', { url: 'https://example.com', title: 'Example' }),
    ev('metadata', { finish_reason: 'tool_calls', raw_finish_reason: 'tool_use', refusal: 'no', usage: { input_tokens: 1, output_tokens: 2 } }),
    ev('content_complete', { total_content: '', reasoning: { text: 'Let me look it up', signature: 's' }, tool_calls: [] }),
  ];
  const states = [createStreamState()];
  for (const event of events) states.push(reduceStreamState(states.at(-1), event, 5));
  const state = states.at(-1);
  assert.equal(state.reasoning, 'Let me look it up');
  assert.equal(state.ttftMs, 5, 'the first reasoning piece is the first token');
  assert.deepEqual(state.toolCalls, [
    { id: 'a', name: 'first', index: 0, status: 'done', argumentsText: '{"y": 1}', arguments: { y: 1 } },
    { id: 'b', name: 'second', index: 1, status: 'done', argumentsText: '{"x": tru', arguments: null, error: 'invalid_json' },
  ]);
  assert.deepEqual(state.sources, [{ url: 'https://example.com', title: 'Example' }]);
  assert.equal(state.finishReason, 'tool_calls');
  assert.equal(state.rawFinishReason, 'tool_use');
  assert.equal(state.refusal, 'no');
  const midCall = states[7].toolCalls;
  assert.equal(midCall[1].argumentsText, '{"x"', 'an earlier state keeps its own calls');
  assert.equal(midCall[1].status, 'streaming');
});
