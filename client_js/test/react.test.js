import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement } from 'react';
import TestRenderer from 'react-test-renderer';
import { useTokenmuxStream } from '../src/react.js';
import { fakeFetch, sessionEvents, sseBody } from './fake-fetch.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const { act } = TestRenderer;

function mount(source, options) {
  const seen = { current: null, renders: [] };
  function Probe() {
    const stream = useTokenmuxStream(source, options);
    seen.current = stream;
    seen.renders.push(stream.status);
    return createElement('p', null, stream.text);
  }
  let renderer;
  act(() => { renderer = TestRenderer.create(createElement(Probe)); });
  return { seen, renderer };
}

test('useTokenmuxStream renders the text and status of an SSE stream', async () => {
  const fetch = fakeFetch({ body: sseBody(sessionEvents('s1', ['Hel', 'lo'])).match(/[\s\S]{1,30}/g) });
  const { seen, renderer } = mount('/api/stream', { fetch });
  assert.equal(seen.current.status, 'idle');
  await act(() => seen.current.start({ prompt: 'Hi' }));
  assert.equal(seen.current.status, 'complete');
  assert.equal(seen.current.text, 'Hello');
  assert.equal(renderer.toJSON().children[0], 'Hello');
  assert.ok(seen.renders.includes('streaming'));
  act(() => renderer.unmount());
});

test('useTokenmuxStream works with a TokenmuxClient-like source and cancels on unmount', async () => {
  let aborted = false;
  const client = {
    stream(request, { signal }) {
      assert.deepEqual(request, { prompt: 'Hi' });
      signal.addEventListener('abort', () => { aborted = true; });
      const events = sessionEvents('s2', ['a']).slice(0, 2);
      return (async function* () {
        yield* events;
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
      })();
    },
  };
  const { seen, renderer } = mount(client);
  let running;
  await act(async () => {
    running = seen.current.start({ prompt: 'Hi' });
    await new Promise((resolve) => setImmediate(resolve));
  });
  assert.equal(seen.current.status, 'streaming');
  assert.equal(seen.current.text, 'a');
  act(() => renderer.unmount());
  await Promise.resolve(); // the cancel waits one microtask, in case StrictMode mounts again
  assert.ok(aborted, 'unmounting cancelled the stream');
  assert.equal((await running).status, 'cancelled');
});
