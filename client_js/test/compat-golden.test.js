// The drop-in encoders' answer to one rich session (reasoning, text, a tool call, a source;
// written by tests/compat/golden.py from the Python encoders) read by the unmodified
// `openai` and `ai` packages, served from a local HTTP server.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { DefaultChatTransport, readUIMessageStream } from 'ai';

let server;
let url;

before(async () => {
  const fixture = async (name) => readFile(new URL(`./fixtures/compat/${name}`, import.meta.url));
  const bodies = { '/v1/chat/completions': await fixture('openai-rich.sse'), '/api/chat': await fixture('ui-rich.sse') };
  server = http.createServer((request, response) => {
    request.resume();
    const headers = { 'content-type': 'text/event-stream' };
    if (request.url === '/api/chat') headers['x-vercel-ai-ui-message-stream'] = 'v1';
    response.writeHead(200, headers);
    response.end(bodies[request.url]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((resolve) => server.close(resolve)));

test('openai: reasoning, text, tool call fragments, citation, finish reason and usage', async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const runner = client.chat.completions.stream({ model: 'sim', messages: [{ role: 'user', content: 'Weather?' }] });
  let reasoning = '';
  const annotations = [];
  runner.on('chunk', (chunk) => {
    const delta = chunk.choices[0]?.delta ?? {};
    reasoning += delta.reasoning_content ?? '';
    annotations.push(...(delta.annotations ?? []));
  });
  const final = await runner.finalChatCompletion();
  const choice = final.choices[0];
  assert.equal(reasoning, 'Checking the weather.');
  assert.equal(choice.message.content, 'Let me look that up.');
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.deepEqual(choice.message.tool_calls.map((c) => [c.id, c.type, c.function.name, c.function.arguments]), [
    ['call_1', 'function', 'get_weather', '{"city":"Oslo"}'],
  ]);
  assert.deepEqual(annotations, [{ type: 'url_citation', url_citation: { url: 'https://example.com/sim/1', title: 'Sim source' } }]);
  assert.equal(final.usage.completion_tokens_details.reasoning_tokens, 4);
  assert.equal(final.model, 'sim/sim-1');
});

test('ai: reasoning, text, tool and source parts, and the metadata', async () => {
  const transport = new DefaultChatTransport({ api: `${url}/api/chat` });
  const stream = await transport.sendMessages({
    chatId: 'golden', trigger: 'submit-message', messageId: undefined, abortSignal: undefined,
    messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Weather?' }] }],
  });
  let message;
  for await (const snapshot of readUIMessageStream({ stream })) message = snapshot;
  const parts = message.parts.filter((p) => p.type !== 'step-start');
  assert.deepEqual(parts.map((p) => p.type), ['reasoning', 'text', 'tool-get_weather', 'source-url']);
  assert.equal(parts[0].text, 'Checking the weather.');
  assert.equal(parts[1].text, 'Let me look that up.');
  assert.equal(parts[2].state, 'input-available');
  assert.equal(parts[2].toolCallId, 'call_1');
  assert.deepEqual(parts[2].input, { city: 'Oslo' });
  assert.equal(parts[3].url, 'https://example.com/sim/1');
  assert.equal(message.id, 'msg-golden');
  assert.equal(message.metadata.finishReason, 'tool-calls');
  assert.equal(message.metadata.usage.reasoningTokens, 4);
  assert.equal(message.metadata.ttftMs, 5);
  assert.equal(message.metadata.provider, 'sim');
});
