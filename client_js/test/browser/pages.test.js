// End to end in headless Chromium: the /chat and / pages against a real server.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot, startServer } from '../server.js';
import { launchBrowser } from './browser.js';

const ARTIFACTS = path.join(repoRoot, 'test-artifacts');
let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([
    startServer({ config: path.join(repoRoot, 'client_js', 'test', 'fixtures', 'browser-server.yaml') }),
    launchBrowser(),
  ]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

async function newPage(route) {
  const page = await browser.browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(`${server.url}${route}`);
  return { page, problems };
}

async function completion(prompt) {
  const response = await fetch(`${server.url}/api/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).content;
}

const lastReply = '#conversation .bubble.reply >> nth=-1';

describe('/chat', () => {
  test('text appears progressively, the whole reply arrives, then the cursor goes', async () => {
    const { page, problems } = await newPage('/chat');
    const prompt = 'Hello from the browser, ünïcödé 👋';
    const expected = await completion(prompt);
    await page.evaluate(() => {
      const conversation = document.querySelector('#conversation');
      window.seen = [];
      new MutationObserver(() => {
        const reply = [...conversation.querySelectorAll('.reply')].at(-1);
        if (reply) window.seen.push({ text: reply.firstChild?.textContent ?? '', cursor: !!reply.querySelector('.cursor') });
      }).observe(conversation, { subtree: true, childList: true, characterData: true });
    });
    await page.fill('#prompt', prompt);
    await page.click('#send');
    await page.waitForFunction(() => [...document.querySelectorAll('#conversation .reply')].at(-1)?.textContent.length > 60);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'chat-mid-stream.png') });
    await page.waitForFunction((text) => [...document.querySelectorAll('#conversation .reply')].at(-1).textContent.startsWith(text), expected, { timeout: 10_000 });
    const endedAt = Date.now();
    await page.waitForSelector('#conversation .reply .cursor', { state: 'detached', timeout: 1_500 });
    assert.ok(Date.now() - endedAt < 1_500, 'the cursor went within a second or so of the end');
    assert.equal(await page.textContent(lastReply), expected);
    const seen = await page.evaluate(() => window.seen);
    const lengths = [...new Set(seen.filter((s) => s.cursor).map((s) => s.text.length))];
    assert.ok(lengths.length >= 5, `text grew in steps while the cursor showed (saw ${lengths.length})`);
    assert.deepEqual(lengths, [...lengths].sort((a, b) => a - b), 'the text only grows');
    assert.ok(await page.isHidden('.error'));
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('the conversation is kept: every turn is shown and sent as messages; "New chat" starts over', async () => {
    const { page, problems } = await newPage('/chat');
    const sent = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/api/stream')) sent.push(JSON.parse(request.postData()));
    });
    const ask = async (question, turns) => {
      await page.fill('#prompt', question);
      await page.click('#send');
      await page.waitForFunction((n) => document.querySelectorAll('#conversation .reply').length === n, turns);
      await page.waitForSelector('#conversation .reply .cursor', { state: 'detached', timeout: 10_000 });
      await page.waitForFunction(() => !document.querySelector('#send').disabled);
      return page.textContent(lastReply);
    };
    const first = await ask('First question?', 1);
    assert.ok(first.startsWith('First question?'));
    const second = await ask('And a second one?', 2);
    assert.ok(second.startsWith('And a second one?'));
    assert.deepEqual(sent.at(-1), {
      messages: [
        { role: 'user', content: 'First question?' },
        { role: 'assistant', content: first },
        { role: 'user', content: 'And a second one?' },
      ],
    });
    const shown = await page.$$eval('#conversation .bubble', (bubbles) => bubbles.map((b) => [b.classList.contains('user') ? 'user' : 'reply', b.textContent]));
    assert.deepEqual(shown, [['user', 'First question?'], ['reply', first], ['user', 'And a second one?'], ['reply', second]]);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'chat-conversation.png') });

    await page.click('#new-chat');
    assert.equal(await page.$$eval('#conversation .bubble', (bubbles) => bubbles.length), 0);
    await ask('Fresh start.', 1);
    assert.deepEqual(sent.at(-1), { messages: [{ role: 'user', content: 'Fresh start.' }] });
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('a failed request shows .error', async () => {
    const { page } = await newPage('/chat');
    await page.route('**/api/stream', (route) => route.abort('internetdisconnected'));
    await page.fill('#prompt', 'anyone there?');
    await page.click('#send');
    await page.waitForSelector('.error', { state: 'visible', timeout: 5_000 });
    assert.match(await page.textContent('.error'), /failed/i);
    await page.waitForSelector('#conversation .reply .cursor', { state: 'detached', timeout: 1_500 });
    assert.equal(await page.isEnabled('#send'), true);
    await page.close();
  });
});

describe('/ (dashboard)', () => {
  test('10 sessions stream at once over one socket; Cancel stops one, the others complete', async () => {
    const { page, problems } = await newPage('/');
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.waitForSelector('#connection[data-state="open"]');
    await page.fill('#prompt', 'Show me ten streams.');
    await page.fill('#count', '10');
    await page.fill('#max-tokens', '80');
    await page.fill('#rate', '25');
    await page.click('#start');
    await page.waitForFunction(() => document.querySelectorAll('.card[data-status="streaming"]').length === 10);
    await page.waitForFunction(() => document.querySelector('#open-count').textContent === '10');
    // Mid-stream: every card has some text.
    await page.waitForFunction(() => [...document.querySelectorAll('.card .output')].every((o) => o.textContent.length > 40));
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-mid-stream.png'), fullPage: true });

    const victim = await page.getAttribute('.card:nth-child(3)', 'data-session');
    assert.ok(victim);
    await page.click(`.card[data-session="${victim}"] .cancel`);
    await page.waitForSelector(`.card[data-session="${victim}"][data-status="cancelled"]`, { timeout: 5_000 });
    assert.equal(await page.textContent(`.card[data-session="${victim}"] .status`), 'cancelled');
    await page.waitForFunction(() => document.querySelectorAll('.card[data-status="complete"]').length === 9, null, { timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('#open-count').textContent === '0');
    const statuses = await page.$$eval('.card', (cards) => cards.map((c) => c.dataset.status));
    assert.deepEqual(statuses.sort(), [...Array(9).fill('complete'), 'cancelled'].sort());
    assert.equal(new Set(sockets).size, 1, 'one WebSocket for every session');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-done.png'), fullPage: true });

    // "Cancel all" stops every live session; the counter goes back to 0.
    await page.fill('#count', '3');
    await page.fill('#max-tokens', '500');
    await page.click('#start');
    await page.waitForFunction(() => document.querySelectorAll('.card[data-status="streaming"]').length === 3);
    await page.click('#cancel-all');
    await page.waitForFunction(() => document.querySelectorAll('.card[data-status="cancelled"]').length === 4);
    await page.waitForFunction(() => document.querySelector('#open-count').textContent === '0');
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('"one each (per line)" runs every line, even with fewer sessions than lines', async () => {
    const { page, problems } = await newPage('/');
    await page.waitForSelector('#connection[data-state="open"]');
    await page.fill('#prompt', 'First line prompt\nSecond line prompt');
    await page.selectOption('#mode', 'each');
    await page.fill('#count', '1');
    await page.fill('#max-tokens', '3');
    await page.click('#start');
    await page.waitForFunction(() => document.querySelectorAll('.card[data-status="complete"]').length === 2, null, { timeout: 10_000 });
    await page.waitForSelector('.card .output .cursor', { state: 'detached', timeout: 5_000 });
    const outputs = await page.$$eval('.card .output', (nodes) => nodes.map((n) => n.textContent));
    assert.equal(outputs.length, 2);
    assert.ok(outputs[0].startsWith('First line prompt'), outputs[0]);
    assert.ok(outputs[1].startsWith('Second line prompt'), outputs[1]);
    assert.deepEqual(problems, []);
    await page.close();
  });
});

describe('the library in the browser, imported from /client/ with no build step', () => {
  test('TokenmuxClient over msgpack and streamSSE give the same text', async () => {
    const { page, problems } = await newPage('/chat');
    const result = await page.evaluate(async () => {
      const { TokenmuxClient, streamSSE } = await import('/client/index.js');
      const client = new TokenmuxClient('/ws', { encoding: 'msgpack' });
      const request = { prompt: 'bytes on the wire: ✓', params: { max_tokens: 12, tokens_per_second: 0 } };
      const session = client.stream(request);
      const { reason, text } = await session.done;
      let sse = '';
      for await (const event of streamSSE('/api/stream', { prompt: request.prompt, llm_params: request.params })) {
        if (event.type === 'content_chunk') sse += event.data.content;
      }
      const encoding = client.serverInfo.encoding;
      client.close();
      return { reason, text, sse, encoding };
    });
    assert.equal(result.encoding, 'msgpack');
    assert.equal(result.reason, 'complete');
    assert.equal(result.text, result.sse);
    assert.ok(result.text.startsWith('bytes on the wire: ✓'));
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('with prefers-reduced-motion the typewriter shows text as it arrives, and stays in step', async () => {
    const { page } = await newPage('/chat');
    await page.emulateMedia({ reducedMotion: 'reduce' });
    const result = await page.evaluate(async () => {
      const { Typewriter } = await import('/client/index.js');
      const element = document.createElement('div');
      document.body.append(element);
      let done;
      const finished = new Promise((resolve) => { done = resolve; });
      const typewriter = new Typewriter(element, { cursorLingerMs: 10, onDone: () => done() });
      const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      typewriter.append('x'.repeat(5000));
      await frame();
      const shownAfterAFrame = typewriter.displayed.length;
      typewriter.end();
      await finished;
      return { reduced: typewriter.reducedMotion, shownAfterAFrame, cursor: !!element.querySelector('.cursor') };
    });
    assert.deepEqual(result, { reduced: true, shownAfterAFrame: 5000, cursor: false });
    await page.close();
  });
});
