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
