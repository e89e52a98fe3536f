// Reasoning and tool calls from the simulator through /api/chat with the unmodified `ai`
// package: a tool call, its result sent back the way useChat does, and the answer to it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DefaultChatTransport, readUIMessageStream } from 'ai';
import { startServer } from './server.js';

let server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const TOOLS = [{
  name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];

async function lastMessage(stream) {
  let message;
  for await (const snapshot of readUIMessageStream({ stream })) message = snapshot;
  return message;
}

test('reasoning and a tool call; the tool result goes back and is answered', async () => {
  const transport = new DefaultChatTransport({ api: `${server.url}/api/chat`, body: { tools: TOOLS, params: { reasoning_tokens: 3 } } });
  const chatId = `tools-${Date.now()}`;
  const user = { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Weather in Oslo?' }] };
  const first = await lastMessage(await transport.sendMessages({
    chatId, messages: [user], trigger: 'submit-message', messageId: undefined, abortSignal: undefined,
  }));
  const reasoning = first.parts.find((p) => p.type === 'reasoning');
  assert.equal(reasoning.text.trim().split(/\s+/).length, 3);
  const call = first.parts.find((p) => p.type === 'tool-get_weather');
  assert.equal(call.state, 'input-available');
  assert.equal(typeof call.input.city, 'string');
  assert.equal(first.metadata.finishReason, 'tool-calls');
  // What addToolResult leaves in the message, sent back as useChat does.
  const answered = { ...first, parts: first.parts.map((p) => (p === call ? { ...p, state: 'output-available', output: { temperature: '3 degrees' } } : p)) };
  const second = await lastMessage(await transport.sendMessages({
    chatId, messages: [user, answered], trigger: 'submit-message', messageId: undefined, abortSignal: undefined,
  }));
  const text = second.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
  assert.match(text, /3 degrees/);
  assert.equal(second.metadata.finishReason, 'stop');
});
