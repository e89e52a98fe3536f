// useChat from @ai-sdk/react in headless Chromium against POST /api/chat: a page built with
// esbuild inside the test (the shipped pages stay dependency-free), served at the server's
// origin through request interception.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { repoRoot, startServer } from '../server.js';
import { launchBrowser } from './browser.js';

const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PARAMS = { tokens_per_second: 25, max_tokens: 50 };
const PROMPT = 'Hello from useChat';

// The page: useChat with resume, detached answers, and a stop that also cancels.
const APP = `
import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport } from 'ai';

const chatId = new URLSearchParams(location.search).get('chat');
const transport = new DefaultChatTransport({
  api: '/api/chat',
  body: { on_disconnect: 'detach', params: ${JSON.stringify(PARAMS)} },
});

function App() {
  const { messages, sendMessage, stop, status } = useChat({ id: chatId, transport, resume: true });
  const answer = messages.filter((m) => m.role === 'assistant').at(-1);
  const text = answer ? answer.parts.filter((p) => p.type === 'text').map((p) => p.text).join('') : '';
  const stopBoth = () => {
    stop();
    fetch('/api/chat/' + chatId + '/cancel', { method: 'POST' });
  };
  return h('main', null,
    h('button', { id: 'send', onClick: () => sendMessage({ text: ${JSON.stringify(PROMPT)} }) }, 'send'),
    h('button', { id: 'stop', onClick: stopBoth }, 'stop'),
    h('p', { id: 'status' }, status),
    h('p', { id: 'answer' }, text),
    h('p', { id: 'model' }, answer?.metadata?.model ?? ''),
  );
}
createRoot(document.getElementById('root')).render(h(App));
`;

let server;
let browser;
let html;

before(async () => {
  const bundle = await build({
    stdin: { contents: APP, resolveDir: PACKAGE, loader: 'js' },
    bundle: true,
    write: false,
    format: 'esm',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0].text.replaceAll('</script', '<\\/script');
  html = `<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module">${script}</script>`;
  [server, browser] = await Promise.all([
    startServer({ config: path.join(repoRoot, 'client_js', 'test', 'fixtures', 'browser-server.yaml') }),
    launchBrowser(),
  ]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

async function openChat(chatId) {
  const page = await browser.browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.route(`${server.url}/usechat*`, (route) => route.fulfill({ contentType: 'text/html', body: html }));
  await page.goto(`${server.url}/usechat?chat=${chatId}`);
  await page.waitForSelector('#send');
  return { page, problems };
}

/** What the same request gives in one piece. */
async function expectedText() {
  const response = await fetch(`${server.url}/api/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: PROMPT }], llm_params: { max_tokens: PARAMS.max_tokens } }),
  });
  return (await response.json()).content;
}

const answerText = (page) => page.textContent('#answer');

test('a reply streams in and ends ready, with its metadata', async () => {
  const expected = await expectedText();
  const { page, problems } = await openChat(`reply-${Date.now()}`);
  await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'streaming');
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'ready', null, { timeout: 10_000 });
  assert.equal(await answerText(page), expected);
  assert.equal(await page.textContent('#model'), 'sim-1');
  assert.deepEqual(problems, []);
  await page.close();
});

test('stop ends the answer on the server too', async () => {
  const chatId = `stop-${Date.now()}`;
  const { page, problems } = await openChat(chatId);
  await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#answer').textContent.length > 25);
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'ready');
  const stoppedAt = await answerText(page);
  // Nothing runs for this chat any more (well before the answer would have ended by
  // itself, over a second later): the resume route has nothing to give.
  const deadline = Date.now() + 1000;
  let status;
  for (;;) {
    const response = await fetch(`${server.url}/api/chat/${chatId}/stream`);
    status = response.status;
    await response.body?.cancel();
    if (status === 204 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(status, 204);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(await answerText(page), stoppedAt, 'no text after the stop');
  assert.ok(stoppedAt.length < (await expectedText()).length);
  assert.deepEqual(problems, []);
  await page.close();
});

test('a reload mid-answer resumes it, nothing lost or repeated', async () => {
  const expected = await expectedText();
  const chatId = `reload-${Date.now()}`;
  const { page, problems } = await openChat(chatId);
  await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#answer').textContent.length > 25);
  const before = await answerText(page);
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'streaming', null, { timeout: 5_000 });
  const early = await answerText(page);
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'ready', null, { timeout: 10_000 });
  assert.ok(before.length < expected.length, 'the reload came mid-answer');
  assert.ok(expected.startsWith(early), 'the resumed answer starts from its beginning');
  assert.equal(await answerText(page), expected);
  assert.deepEqual(problems, []);
  await page.close();
});
