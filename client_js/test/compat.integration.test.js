// The drop-in routes with the unmodified `openai` and `ai` npm packages: /v1/chat/completions
// and /api/chat on a real server, with a local OpenAI-wire upstream that records hang-ups.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { DefaultChatTransport, readUIMessageStream } from 'ai';
import { streamSSE } from '../src/index.js';
import { startServer } from './server.js';

let server;
let upstream;
let tmp;

/** An OpenAI-wire upstream: one text delta, then silence until the client hangs up. */
async function startUpstream() {
  const hangUps = [];
  const waiters = [];
  const app = http.createServer((request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = { id: 'up-1', object: 'chat.completion.chunk', created: 0, model: 'm1',
      choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi from upstream' }, finish_reason: null }] };
    response.write(`data: ${JSON.stringify(chunk)}\n\n`);
    response.on('close', () => {
      hangUps.push(Date.now());
      waiters.splice(0).forEach((resolve) => resolve());
    });
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  return {
    url: `http://127.0.0.1:${app.address().port}`,
    hangUps,
    /** Resolves at the next hang-up, or rejects after `ms`. */
    nextHangUp(ms = 2000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the upstream never saw the hang-up')), ms);
        waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    },
    close: () => new Promise((resolve) => { app.closeAllConnections(); app.close(resolve); }),
  };
}

before(async () => {
  upstream = await startUpstream();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tokenmux-compat-'));
  const base = await readFile(new URL('./fixtures/server.yaml', import.meta.url), 'utf8');
  const config = base.replace('providers:\n', `providers:
  up:
    type: openai
    base_url: ${upstream.url}/v1
    api_key: test-key
    model: m1
`);
  await writeFile(path.join(tmp, 'server.yaml'), config);
  server = await startServer({ config: path.join(tmp, 'server.yaml') });
});

after(async () => {
  await server?.stop();
  await upstream?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const HELLO = [{ role: 'user', content: 'Hello there' }];

/** The text /api/stream gives for the same request. */
async function nativeText(body) {
  let text = '';
  for await (const event of streamSSE(`${server.url}/api/stream`, body)) {
    if (event.type === 'content_chunk') text += event.data.content;
  }
  return text;
}

describe('the openai npm package', () => {
  const client = () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });

  test('streamed text equals /api/stream; one id; usage chunk last', async () => {
    const stream = await client().chat.completions.create({
      model: 'sim', messages: HELLO, stream: true, stream_options: { include_usage: true }, max_tokens: 12,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, await nativeText({ messages: HELLO, llm_params: { max_tokens: 12 } }));
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.equal(chunks.at(-1).usage.total_tokens, chunks.at(-1).usage.prompt_tokens + chunks.at(-1).usage.completion_tokens);
  });

  test('the runner helper assembles the final completion', async () => {
    const runner = client().chat.completions.stream({ model: 'sim/sim-1', messages: HELLO, max_tokens: 3 });
    const final = await runner.finalChatCompletion();
    assert.match(final.choices[0].message.content, /^Hello there/);
    assert.equal(final.model, 'sim/sim-1');
  });

  test('errors are NotFoundError, BadRequestError, and APIError mid-stream', async () => {
    await assert.rejects(
      client().chat.completions.create({ model: 'gpt-4o', messages: HELLO }),
      (error) => error instanceof OpenAI.NotFoundError && error.code === 'model_not_found',
    );
    await assert.rejects(
      client().chat.completions.create({ model: 'sim', messages: HELLO, n: 3 }),
      (error) => error instanceof OpenAI.BadRequestError && error.param === 'n',
    );
    const stream = await client().chat.completions.create({
      model: 'sim', messages: HELLO, stream: true, params: { fail_at: 3 },
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    }, (error) => error instanceof OpenAI.APIError && error.code === 'provider_error');
    assert.match(text, /^Hello there/);
  });

  test('aborting a stream closes the upstream connection', async () => {
    const controller = new AbortController();
    const stream = await client().chat.completions.create(
      { model: 'up', messages: HELLO, stream: true }, { signal: controller.signal },
    );
    const hungUp = upstream.nextHangUp();
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) break; // leaving the loop aborts the response
    }
    await hungUp;
  });

  test('models lists providers and provider/model', async () => {
    const ids = [];
    for await (const model of client().models.list()) ids.push(model.id);
    assert.deepEqual(ids, ['up', 'up/m1', 'sim', 'sim/sim-1']);
  });
});

/** Reads a UI message stream to its last message snapshot. */
async function lastMessage(stream) {
  let message;
  for await (const snapshot of readUIMessageStream({ stream })) message = snapshot;
  return message;
}

const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
const userMessage = (text) => ({ id: `u-${Math.random().toString(36).slice(2)}`, role: 'user', parts: [{ type: 'text', text }] });

describe('the ai package (DefaultChatTransport)', () => {
  const transport = (body = {}) => new DefaultChatTransport({ api: `${server.url}/api/chat`, body });

  test('streams text with its metadata', async () => {
    const stream = await transport({ params: { max_tokens: 10 } }).sendMessages({
      chatId: `chat-${Date.now()}`, messages: [userMessage('Hello there')], trigger: 'submit-message',
      messageId: undefined, abortSignal: undefined,
    });
    const message = await lastMessage(stream);
    assert.equal(message.role, 'assistant');
    assert.equal(textOf(message), await nativeText({ messages: HELLO, llm_params: { max_tokens: 10 } }));
    assert.equal(message.metadata.provider, 'sim');
    assert.equal(message.metadata.finishReason, 'stop');
    assert.ok(message.metadata.usage.outputTokens > 0);
    assert.equal(typeof message.metadata.ttftMs, 'number');
  });

  test('an abort closes the upstream connection', async () => {
    const controller = new AbortController();
    const stream = await transport({ provider: 'up' }).sendMessages({
      chatId: `chat-up-${Date.now()}`, messages: [userMessage('Hi')], trigger: 'submit-message',
      messageId: undefined, abortSignal: controller.signal,
    });
    const hungUp = upstream.nextHangUp();
    const reader = stream.getReader();
    for (;;) {
      const { value } = await reader.read();
      if (value?.type === 'text-delta') break;
    }
    controller.abort();
    await hungUp;
  });

  test('a detached answer resumes from its start after the request drops', async () => {
    const chatId = `chat-resume-${Date.now()}`;
    const body = { on_disconnect: 'detach', params: { max_tokens: 40, tokens_per_second: 100 } };
    const controller = new AbortController();
    const stream = await transport(body).sendMessages({
      chatId, messages: [userMessage('Hello there')], trigger: 'submit-message',
      messageId: undefined, abortSignal: controller.signal,
    });
    const reader = stream.getReader();
    for (let deltas = 0; deltas < 3;) {
      const { value } = await reader.read();
      if (value?.type === 'text-delta') deltas += 1;
    }
    controller.abort(); // a reload: the answer keeps running on the server
    const resumed = await transport(body).reconnectToStream({ chatId });
    assert.ok(resumed, 'a running answer resumes');
    const message = await lastMessage(resumed);
    const expected = await nativeText({ messages: HELLO, llm_params: { max_tokens: 40 } });
    assert.equal(textOf(message), expected); // nothing lost, nothing repeated
    assert.equal(message.metadata.finishReason, 'stop');
    assert.equal(await transport().reconnectToStream({ chatId }), null); // finished: 204
  });

  test('POST /api/chat/{id}/cancel stops a detached answer', async () => {
    const chatId = `chat-cancel-${Date.now()}`;
    const stream = await transport({ on_disconnect: 'detach', params: { hang_at: 2 } }).sendMessages({
      chatId, messages: [userMessage('Hello')], trigger: 'submit-message', messageId: undefined, abortSignal: undefined,
    });
    const chunks = [];
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      if (value.type === 'text-delta' && chunks.filter((c) => c.type === 'text-delta').length === 2) {
        const answer = await fetch(`${server.url}/api/chat/${chatId}/cancel`, { method: 'POST' });
        assert.equal(answer.status, 202);
      }
    }
    assert.equal(chunks.at(-1).type, 'abort');
    const again = await fetch(`${server.url}/api/chat/${chatId}/cancel`, { method: 'POST' });
    assert.equal((await again.json()).status, 'not_running');
  });
});
