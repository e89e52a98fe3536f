// A reload of the dashboard mid-stream, in headless Chromium against real servers: every card
// comes back and ends with exactly the text the same request gives in one piece.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startServer } from '../server.js';
import { launchBrowser } from './browser.js';

const ARTIFACTS = path.join(repoRoot, 'test-artifacts');
const fixture = (name) => path.join(repoRoot, 'client_js', 'test', 'fixtures', name);
let server;
let small;
let browser;

before(async () => {
  [server, small, browser] = await Promise.all([
    startServer({ config: fixture('browser-server.yaml') }),
    startServer({ config: fixture('browser-small-buffer.yaml') }),
    launchBrowser(),
  ]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop(), small?.stop()]);
});

async function dashboard(base) {
  const page = await browser.browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(`${base.url}/`);
  await page.waitForSelector('#connection[data-state="open"]');
  return { page, problems };
}

/** The whole text of one request, answered in one piece. */
async function completion(base, prompt, maxTokens) {
  const response = await fetch(`${base.url}/api/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, llm_params: { max_tokens: maxTokens, tokens_per_second: 0 } }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).content;
}

/** Start one card per prompt; returns the session ids in start order. */
async function startCards(page, prompts, { maxTokens, rate }) {
  await page.fill('#prompt', prompts.join('\n'));
  await page.selectOption('#mode', 'each');
  await page.fill('#count', String(prompts.length));
  await page.fill('#max-tokens', String(maxTokens));
  await page.fill('#rate', String(rate));
  await page.click('#start');
  await page.waitForFunction((n) => document.querySelectorAll('.card[data-status="streaming"]').length === n, prompts.length);
  return page.$$eval('.card', (cards) => cards.map((card) => card.dataset.session));
}

/** Every card's id, status and text once all have ended and their cursors are gone. */
async function endedCards(page, count) {
  await page.waitForFunction(
    (n) => {
      const cards = [...document.querySelectorAll('.card')];
      return cards.length === n && cards.every((c) => c.dataset.status !== 'streaming' && c.dataset.status !== 'waiting' && !c.querySelector('.output .cursor'));
    },
    count,
    { timeout: 30_000 },
  );
  return page.$$eval('.card', (cards) => cards.map((card) => ({
    id: card.dataset.session,
    status: card.dataset.status,
    restored: card.dataset.restored === 'true',
    recovered: card.dataset.recovered !== 'false',
    text: card.querySelector('.output').textContent,
    replay: card.querySelector('.replay').hidden ? null : card.querySelector('.replay').textContent,
    note: card.querySelector('.note').textContent,
  })));
}

const storedSessions = (page) => page.evaluate(() => Object.keys(sessionStorage).filter((key) => key.startsWith('tokenmux:')));

test('a reload mid-stream continues every card: the whole text, nothing twice', { timeout: 90_000 }, async () => {
  const { page, problems } = await dashboard(server);
  const prompts = ['First answer, please.', 'Second: ünïcödé 👋', 'Third one.', 'And a fourth.'];
  const options = { maxTokens: 60, rate: 20 };
  const ids = await startCards(page, prompts, options);
  await page.waitForFunction(() => [...document.querySelectorAll('.card .output')].every((o) => o.textContent.length > 30));
  const before = await page.$$eval('.card', (cards) => cards.map((c) => ({ status: c.dataset.status, length: c.querySelector('.output').textContent.length })));
  assert.ok(before.every((card) => card.status === 'streaming'), 'the reload comes mid-stream');
  assert.equal((await storedSessions(page)).length, 1);

  await page.reload();
  await page.waitForSelector('#connection[data-state="open"]');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-after-reload.png'), fullPage: true });
  const cards = await endedCards(page, prompts.length);
  assert.deepEqual(cards.map((card) => card.id), ids, 'the same sessions, in start order');
  const expected = await Promise.all(prompts.map((prompt) => completion(server, prompt, options.maxTokens)));
  for (const [i, card] of cards.entries()) {
    assert.equal(card.status, 'complete');
    assert.ok(card.restored);
    assert.ok(card.recovered, 'the server still held every event');
    assert.equal(card.replay, null);
    assert.equal(card.text, expected[i], `card ${i}: the whole text, nothing lost or repeated`);
    assert.ok(card.text.length > before[i].length);
    assert.match(card.note, /^done in /);
  }
  assert.deepEqual(await storedSessions(page), [], 'ended sessions leave sessionStorage');
  assert.equal(await page.textContent('#open-count'), '0');

  // One more reload restores nothing.
  await page.reload();
  await page.waitForSelector('#connection[data-state="open"]');
  assert.equal(await page.$$eval('.card', (all) => all.length), 0);
  assert.deepEqual(problems, []);
  await page.close();
});

test('when the replay buffer no longer holds the start, the card says so and the text is still whole', { timeout: 90_000 }, async () => {
  const { page, problems } = await dashboard(small);
  const prompts = ['A long answer to outgrow the buffer.', 'Another long one.'];
  const options = { maxTokens: 80, rate: 25 };
  const ids = await startCards(page, prompts, options);
  await page.waitForFunction(() => [...document.querySelectorAll('.card .tokens')].every((t) => Number(t.textContent) > 12));
  await page.reload();
  const cards = await endedCards(page, prompts.length);
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-recovered-false.png'), fullPage: true });
  assert.deepEqual(cards.map((card) => card.id), ids);
  const expected = await Promise.all(prompts.map((prompt) => completion(small, prompt, options.maxTokens)));
  for (const [i, card] of cards.entries()) {
    assert.equal(card.status, 'complete');
    assert.equal(card.recovered, false);
    assert.match(card.replay, /^Replayed from event \d+ \(the server keeps the last 8\): the \d+ characters before it were restored in one piece\.$/);
    assert.equal(card.text, expected[i]);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test('a session the server refuses to resume becomes an error card and leaves storage', { timeout: 90_000 }, async () => {
  // Written from /chat, which keeps no sessions: the dashboard would write its own on leaving.
  const page = await browser.browser.newPage();
  await page.goto(`${server.url}/chat`);
  await page.evaluate(() => {
    const key = `tokenmux:sessions:${new URL('/ws', location.href).href.replace(/^http/, 'ws')}`;
    sessionStorage.setItem(key, JSON.stringify([{ id: 'long-gone', token: 'expired-token', lastSeq: 12 }]));
  });
  await page.goto(`${server.url}/`);
  await page.waitForSelector('.card[data-session="long-gone"][data-status="error"]');
  assert.match(await page.textContent('.card[data-session="long-gone"] .note'), /^resume_refused: the session could not be resumed/);
  assert.deepEqual(await storedSessions(page), []);
  await page.close();
});
