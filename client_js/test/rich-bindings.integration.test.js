// The React hook and the Vue composable return reasoning, tool calls and sources, against a
// real tokenmux server (simulator) over both transports.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createElement } from 'react';
import TestRenderer from 'react-test-renderer';
import { effectScope } from 'vue';
import WebSocket from 'ws';
import { TokenmuxClient } from '../src/index.js';
import { useTokenmuxStream as useReactStream } from '../src/react.js';
import { useTokenmuxStream as useVueStream } from '../src/vue.js';
import { startServer } from './server.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const { act } = TestRenderer;

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const WEATHER = {
  name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

test('React: the hook returns the reasoning and the parsed tool call of a WebSocket stream', async () => {
  const client = new TokenmuxClient(server.wsUrl, { WebSocket });
  const seen = { current: null };
  function Probe() {
    seen.current = useReactStream(client);
    return createElement('p', null, seen.current.reasoning);
  }
  let renderer;
  act(() => { renderer = TestRenderer.create(createElement(Probe)); });
  await act(() => seen.current.start({ prompt: 'Weather?', tools: [WEATHER], params: { reasoning_tokens: 4 } }));
  assert.equal(seen.current.status, 'complete');
  assert.equal(seen.current.reasoning.split(' ').length, 4);
  assert.equal(renderer.toJSON().children[0], seen.current.reasoning);
  assert.equal(seen.current.toolCalls[0].name, 'get_weather');
  assert.equal(typeof seen.current.toolCalls[0].arguments.city, 'string');
  assert.equal(seen.current.finishReason, 'tool_calls');
  act(() => renderer.unmount());
  client.close();
});

test('Vue: the composable returns sources and the refusal of SSE streams as readonly refs', async () => {
  const scope = effectScope();
  const stream = scope.run(() => useVueStream(`${server.url}/api/stream`));
  await stream.start({ prompt: 'Hi', llm_params: { sources: 2, reasoning_tokens: 2 } });
  assert.equal(stream.sources.value.length, 2);
  assert.equal(stream.reasoning.value.split(' ').length, 2);
  assert.deepEqual(stream.toolCalls.value, []);
  assert.equal(stream.finishReason.value, 'stop');
  await stream.start({ prompt: 'Hi', llm_params: { refusal: true } });
  assert.equal(typeof stream.refusal.value, 'string');
  assert.equal(stream.finishReason.value, 'content_filter');
  scope.stop();
});
