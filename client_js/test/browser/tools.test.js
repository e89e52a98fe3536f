// The dashboard's tool loop in headless Chromium against a real server (simulator): the
// reasoning streams into the card, the call's arguments stream then parse, the page answers
// with its canned result, and the same card continues to the final text quoting it.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startServer } from '../server.js';
import { launchBrowser } from './browser.js';

const ARTIFACTS = path.join(repoRoot, 'test-artifacts');
let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([
    startServer({ config: path.join(repoRoot, 'client_js', 'test', 'fixtures', 'browser-tools.yaml') }),
    launchBrowser(),
  ]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

async function openDashboard() {
  const page = await browser.browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  const starts = [];
  page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => {
    const message = JSON.parse(String(payload));
    if (message.type === 'start') starts.push(message.data);
  }));
  await page.goto(`${server.url}/`);
  await page.waitForSelector('#provider option[value="sim"]', { state: 'attached' });
  return { page, problems, starts };
}

test('with tools on, one card runs the whole tool loop on the simulator', { timeout: 60_000 }, async () => {
  const { page, problems, starts } = await openDashboard();
  const prompt = 'What is the weather in Paris?';
  await page.fill('#prompt', prompt);
  await page.fill('#count', '1');
  await page.fill('#reasoning', '24');
  await page.fill('#rate', '30');
  await page.fill('#sources', '2');
  await page.check('#tools');
  await page.evaluate(() => {
    window.seen = { reasoning: [], args: [], statusWhenReasoning: [] };
    new MutationObserver(() => {
      const card = document.querySelector('.card');
      const reasoning = card?.querySelector('.reasoning-text')?.textContent;
      if (reasoning) window.seen.reasoning.push(reasoning.length);
      const args = card?.querySelector('.tool-call .tool-args')?.textContent;
      const status = card?.querySelector('.tool-call')?.dataset.status;
      if (args !== undefined) window.seen.args.push({ args, status });
    }).observe(document.querySelector('#cards'), { subtree: true, childList: true, characterData: true });
  });
  await page.click('#start');

  await page.waitForSelector('.card .reasoning-text:not(:empty)');
  assert.ok(await page.isVisible('.card .reasoning-text'), 'the reasoning is visible while it streams');
  await page.waitForSelector('.card .tool-result', { timeout: 20_000 });
  await page.waitForSelector('.card[data-turn="2"][data-status="complete"]', { timeout: 20_000 });
  await page.waitForSelector('.card .output .cursor', { state: 'detached', timeout: 5_000 });

  // What the page sent: the tool with the first turn, then the whole conversation.
  assert.equal(starts.length, 2);
  assert.equal(starts[0].tools[0].name, 'get_weather');
  assert.deepEqual(starts[0].params, { tokens_per_second: 30, reasoning_tokens: 24, sources: 2 });
  const [user, assistant, tool] = starts[1].messages;
  assert.deepEqual(user, { role: 'user', content: prompt });
  assert.equal(assistant.role, 'assistant');
  assert.equal(assistant.tool_calls[0].name, 'get_weather');
  assert.equal(typeof assistant.reasoning.signature, 'string', 'the signed reasoning goes back with the call');
  assert.equal(tool.role, 'tool');
  assert.equal(tool.tool_call_id, assistant.tool_calls[0].id);
  const canned = JSON.parse(tool.content);
  assert.deepEqual(canned, { city: assistant.tool_calls[0].arguments.city, temp_c: 21, sky: 'sunny' });

  // What the card shows.
  const card = await page.evaluate(() => {
    const root = document.querySelector('.card');
    return {
      reasoning: [...root.querySelectorAll('.reasoning-text')].map((node) => node.textContent),
      call: root.querySelector('.tool-call .tool-name').textContent,
      callStatus: root.querySelector('.tool-call').dataset.status,
      callState: root.querySelector('.tool-call .tool-state').textContent,
      args: root.querySelector('.tool-call .tool-args').textContent,
      result: root.querySelector('.tool-result .tool-output').textContent,
      output: root.querySelector('.output').textContent,
      note: root.querySelector('.note').textContent,
      sources: [...root.querySelectorAll('.sources a')].map((link) => [link.textContent, link.href]),
    };
  });
  const reasoningWords = card.reasoning.map((text) => text.split(' ').length);
  assert.deepEqual(reasoningWords, [24, 24], 'each turn shows its reasoning');
  assert.equal(card.call, 'get_weather');
  assert.equal(card.callStatus, 'done');
  assert.equal(card.callState, 'arguments parsed');
  assert.deepEqual(JSON.parse(card.args), assistant.tool_calls[0].arguments);
  assert.equal(card.result, tool.content);
  assert.ok(card.output.startsWith(`get_weather returned: ${tool.content}`), card.output);
  assert.match(card.note, /^done in /);
  assert.deepEqual(card.sources.map(([, href]) => href), ['https://example.com/sim/1', 'https://example.com/sim/2']);

  // It streamed: the reasoning grew, and the arguments showed as text before they were parsed.
  const seen = await page.evaluate(() => window.seen);
  assert.ok(new Set(seen.reasoning).size >= 5, 'the reasoning grew in steps');
  const streaming = seen.args.filter((entry) => entry.status === 'streaming').map((entry) => entry.args);
  assert.ok(streaming.some((text) => text && text !== JSON.stringify(assistant.tool_calls[0].arguments)), 'a partial argument text was shown');

  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-tool-loop.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test('simulator knobs go to the simulator only: another provider gets neither Tokens/s nor reasoning', { timeout: 30_000 }, async () => {
  const { page, starts } = await openDashboard();
  await page.fill('#count', '1');
  await page.fill('#rate', '30');
  await page.fill('#max-tokens', '5');
  await page.selectOption('#provider', 'upstream');
  assert.ok(await page.isDisabled('#rate'));
  assert.ok(await page.isDisabled('#reasoning'));
  assert.ok(await page.isDisabled('#sources'));
  await page.click('#start');
  await page.waitForSelector('.card[data-status="error"]', { timeout: 15_000 });
  assert.deepEqual(starts[0], { prompt: 'Explain streaming in one paragraph.', provider: 'upstream', params: { max_tokens: 5 }, on_disconnect: 'detach' });
  const note = await page.textContent('.card .note');
  assert.doesNotMatch(note, /invalid_field/);
  await page.selectOption('#provider', 'sim');
  assert.ok(await page.isEnabled('#rate'));
  await page.close();
});

test('a reload mid-reasoning brings the card back with its reasoning whole, nothing twice', { timeout: 60_000 }, async () => {
  const { page, problems } = await openDashboard();
  const prompt = 'Think first, then answer.';
  await page.fill('#prompt', prompt);
  await page.fill('#count', '1');
  await page.fill('#max-tokens', '8');
  await page.fill('#reasoning', '40');
  await page.fill('#rate', '20');
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('.card .reasoning-text')?.textContent.length > 20);
  assert.equal(await page.textContent('.card .output'), '▍', 'the reload comes while it still thinks');
  await page.reload();
  await page.waitForSelector('.card[data-restored="true"][data-status="complete"]', { timeout: 20_000 });
  const response = await fetch(`${server.url}/api/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, llm_params: { max_tokens: 8, reasoning_tokens: 40, tokens_per_second: 0 } }),
  });
  const expected = await response.json();
  const shown = await page.$$eval('.card .reasoning-text', (nodes) => nodes.map((node) => node.textContent));
  assert.deepEqual(shown, [expected.reasoning.text]);
  await page.waitForSelector('.card .output .cursor', { state: 'detached', timeout: 5_000 });
  assert.equal(await page.textContent('.card .output'), expected.content);
  assert.deepEqual(problems, []);
  await page.close();
});
