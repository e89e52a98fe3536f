// Section 9 through the client against a real tokenmux server (simulator): reasoning, tool
// calls and sources over WebSocket and SSE, across a dropped socket and a later resume.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { TokenmuxClient, UniversalStreamClient, runStream } from '../src/index.js';
import { startServer } from './server.js';

let server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const RESULT = '{"temp_c": 21, "sky": "sunny"}';

/** The turns that answer `calls` with RESULT. */
function toolTurns(prompt, calls) {
  return [
    { role: 'user', content: prompt },
    { role: 'assistant', content: '', tool_calls: calls.map(({ id, name, arguments: args }) => ({ id, name, arguments: args })) },
    ...calls.map((call) => ({ role: 'tool', tool_call_id: call.id, content: RESULT })),
  ];
}

/** Everything the callbacks of a session saw. */
function recorder() {
  const seen = { reasoning: [], calls: [], sources: [] };
  return {
    seen,
    onReasoning: (delta) => seen.reasoning.push(delta),
    onToolCall: (call) => seen.calls.push(structuredClone(call)),
    onSource: (source) => seen.sources.push(source),
  };
}

/** Read a session to its end; returns its envelopes. */
async function drain(session) {
  const events = [];
  for await (const event of session) events.push(event);
  return events;
}

for (const encoding of ['json', 'msgpack']) {
  describe(`section 9 over WebSocket (${encoding})`, () => {
    test('a whole tool loop: reasoning, a call with streamed then parsed arguments, an answer quoting the result with sources', async () => {
      const client = new TokenmuxClient(server.wsUrl, { WebSocket, encoding });
      const { seen, ...callbacks } = recorder();
      const first = client.stream({ prompt: 'Weather in Paris?', tools: [WEATHER], params: { reasoning_tokens: 6 } }, callbacks);
      const events = await drain(first);
      const complete = events.find((event) => event.type === 'content_complete').data;

      assert.equal(first.reasoning, complete.reasoning.text);
      assert.equal(first.reasoning.split(' ').length, 6);
      assert.equal(seen.reasoning.join(''), first.reasoning, 'onReasoning got every piece once');
      assert.equal(first.reasoningSignature, complete.reasoning.signature);
      assert.equal(first.toolCalls.length, 1);
      const [call] = first.toolCalls;
      assert.equal(call.name, 'get_weather');
      assert.equal(call.status, 'done');
      assert.deepEqual(call.arguments, complete.tool_calls[0].arguments);
      assert.equal(typeof call.arguments.city, 'string');
      const deltas = events.filter((event) => event.type === 'tool_call_delta').map((event) => event.data.arguments_delta);
      assert.ok(deltas.length > 1, 'the arguments streamed in pieces');
      assert.equal(call.argumentsText, deltas.join(''));
      assert.deepEqual(JSON.parse(call.argumentsText), call.arguments);
      assert.deepEqual(seen.calls.map((c) => c.status), ['streaming', ...deltas.map(() => 'streaming'), 'done']);
      assert.deepEqual(seen.calls.map((c) => c.argumentsText), ['', ...deltas.map((_, n) => deltas.slice(0, n + 1).join('')), call.argumentsText]);
      assert.equal(seen.calls[0].index, 0);
      assert.equal(seen.calls.at(-1).arguments.city, call.arguments.city);
      assert.equal(first.finishReason, 'tool_calls');
      assert.equal(first.rawFinishReason, 'tool_calls');
      assert.equal(first.text, '');
      const result = await first.done;
      assert.equal(result.reason, 'complete');
      assert.deepEqual([result.reasoning, result.toolCalls, result.finishReason], [first.reasoning, first.toolCalls, 'tool_calls']);

      const second = recorder();
      const answer = client.stream({ messages: toolTurns('Weather in Paris?', first.toolCalls), tools: [WEATHER], params: { sources: 2 } }, {
        onSource: second.onSource,
      });
      await answer.done;
      assert.ok(answer.text.includes(RESULT), answer.text);
      assert.deepEqual(answer.toolCalls, []);
      assert.equal(answer.finishReason, 'stop');
      assert.deepEqual(answer.sources.map((source) => source.url), ['https://example.com/sim/1', 'https://example.com/sim/2']);
      assert.deepEqual(second.seen.sources, answer.sources);
      client.close();
    });

    test('a refusal is the refusal text and content_filter, not an empty answer', async () => {
      const client = new TokenmuxClient(server.wsUrl, { WebSocket, encoding });
      const session = client.stream({ prompt: 'x', params: { refusal: 'I will not.' } });
      await session.done;
      assert.equal(session.refusal, 'I will not.');
      assert.equal(session.finishReason, 'content_filter');
      client.close();
    });
  });
}

test('reconnect: a socket dropped mid-reasoning resumes with no reasoning twice and the tool call whole', async () => {
  const sockets = [];
  class Recording extends WebSocket {
    constructor(...args) { super(...args); sockets.push(this); }
  }
  const client = new TokenmuxClient(server.wsUrl, { WebSocket: Recording, reconnect: true, initialDelayMs: 20 });
  const { seen, ...callbacks } = recorder();
  const session = client.stream({ prompt: 'Weather?', tools: [WEATHER], params: { reasoning_tokens: 40, tokens_per_second: 200 } }, callbacks);
  const seqs = [];
  let complete;
  for await (const event of session) {
    seqs.push(event.seq);
    if (event.type === 'reasoning_chunk' && event.data.index === 5) sockets[0].terminate();
    if (event.type === 'content_complete') complete = event.data;
  }
  assert.equal(sockets.length, 2, 'one reconnect');
  assert.deepEqual(seqs, seqs.map((_, n) => n), 'seq from 0, no gap, no repeat');
  assert.equal(session.reasoning, complete.reasoning.text);
  assert.equal(seen.reasoning.join(''), complete.reasoning.text, 'onReasoning saw no piece twice');
  assert.equal(session.toolCalls.length, 1);
  assert.deepEqual(session.toolCalls[0].arguments, complete.tool_calls[0].arguments);
  assert.equal(seen.calls.filter((call) => call.status === 'done').length, 1);
  client.close();
});

test('client.resume() on a new client rebuilds reasoning, tool calls and sources from the replay', async () => {
  const first = new TokenmuxClient(server.wsUrl, { WebSocket });
  const original = first.stream({ prompt: 'Weather?', tools: [WEATHER], params: { reasoning_tokens: 8 }, on_disconnect: 'detach' });
  await original.done;
  const answer = first.stream({ messages: toolTurns('Weather?', original.toolCalls), params: { sources: 3, reasoning_tokens: 4 }, on_disconnect: 'detach' });
  await answer.done;
  first.close();

  const second = new TokenmuxClient(server.wsUrl, { WebSocket });
  for (const before of [original, answer]) {
    const { seen, ...callbacks } = recorder();
    const replayed = second.resume(before.id, { token: before.resumeToken, ...callbacks });
    await replayed.done;
    assert.equal(replayed.reasoning, before.reasoning);
    assert.equal(seen.reasoning.join(''), before.reasoning);
    assert.deepEqual(replayed.toolCalls, before.toolCalls);
    assert.deepEqual(replayed.sources, before.sources);
    assert.deepEqual(seen.sources, before.sources);
    assert.equal(replayed.text, before.text);
    assert.equal(replayed.finishReason, before.finishReason);
  }
  assert.equal(answer.sources.length, 3);
  second.close();
});

describe('section 9 over SSE', () => {
  test('runStream() on /api/stream: reasoning, the tool call, then the answer with sources', async () => {
    const states = [];
    const url = `${server.url}/api/stream`;
    const state = await runStream(url, { prompt: 'Weather?', tools: [WEATHER], llm_params: { reasoning_tokens: 5 } }, {
      onState: (next) => states.push(next),
    });
    assert.equal(state.status, 'complete');
    assert.equal(state.reasoning.split(' ').length, 5);
    assert.ok(states.some((s) => s.reasoning && !s.toolCalls.length), 'reasoning showed before the call');
    assert.ok(states.some((s) => s.toolCalls[0]?.status === 'streaming' && s.toolCalls[0].argumentsText), 'the arguments streamed');
    assert.equal(state.toolCalls[0].name, 'get_weather');
    assert.equal(state.toolCalls[0].status, 'done');
    assert.equal(typeof state.toolCalls[0].arguments.city, 'string');
    assert.equal(state.finishReason, 'tool_calls');

    const answer = await runStream(url, { messages: toolTurns('Weather?', state.toolCalls), llm_params: { sources: 1 } }, { onState: () => {} });
    assert.ok(answer.text.includes(RESULT));
    assert.deepEqual(answer.sources, [{ url: 'https://example.com/sim/1', ...answer.sources[0] }]);
    assert.equal(answer.finishReason, 'stop');
  });

  test('UniversalStreamClient yields the section 9 events it is asked for', async () => {
    const client = new UniversalStreamClient();
    const stream = await client.createStream(`${server.url}/api/stream`, {
      prompt: 'Weather?', tools: [WEATHER], llm_params: { reasoning_tokens: 3 },
    }, ['reasoning_chunk', 'tool_call_end']);
    const types = [];
    for await (const event of stream) types.push(event.type);
    assert.deepEqual(types, ['reasoning_chunk', 'reasoning_chunk', 'reasoning_chunk', 'tool_call_end']);
  });
});
