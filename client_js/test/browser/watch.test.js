// Two tabs on one session, in headless Chromium against a real server: the second tab opens
// from the first card's "open in new tab" link, watches the session live as one more reader,
// and both show exactly the text the same request gives in one piece.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startServer } from '../server.js';
import { launchBrowser } from './browser.js';

const fixture = (name) => path.join(repoRoot, 'client_js', 'test', 'fixtures', name);
let server;
let browser;

before(async () => {
  [server, browser] = await Promise.all([startServer({ config: fixture('browser-server.yaml') }), launchBrowser()]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

async function open(url, problems) {
  const page = await browser.browser.newPage();
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(url);
  await page.waitForSelector('#connection[data-state="open"]');
  return page;
}

/** The one card's status and text once it has ended and its cursor is gone. */
async function endedCard(page) {
  await page.waitForFunction(() => {
    const card = document.querySelector('.card');
    return card && !['streaming', 'waiting'].includes(card.dataset.status) && !card.querySelector('.output .cursor');
  }, undefined, { timeout: 30_000 });
  return page.$eval('.card', (card) => ({
    id: card.dataset.session,
    status: card.dataset.status,
    watching: card.dataset.watching === 'true',
    text: card.querySelector('.output').textContent,
  }));
}

test('two tabs on one session show identical text; the first keeps its session', { timeout: 90_000 }, async () => {
  const problems = [];
  const first = await open(`${server.url}/`, problems);
  const prompt = 'One answer, two tabs.';
  await first.fill('#prompt', prompt);
  await first.fill('#count', '1');
  await first.fill('#max-tokens', '80');
  await first.fill('#rate', '25');
  await first.click('#start');
  await first.waitForSelector('.card .watch-link:not([hidden])');
  const href = await first.$eval('.card .watch-link', (link) => link.getAttribute('href'));
  assert.match(href, /^\/#watch=[^&]+&token=/);
  await first.waitForFunction(() => document.querySelector('.card .output').textContent.length > 20);

  const second = await open(`${server.url}${href}`, problems); // mid-answer
  await second.waitForSelector('.card[data-watching="true"]');
  const [mine, theirs] = await Promise.all([endedCard(first), endedCard(second)]);
  const response = await fetch(`${server.url}/api/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, llm_params: { max_tokens: 80, tokens_per_second: 0 } }),
  });
  const expected = (await response.json()).content;
  assert.equal(mine.status, 'complete', 'the first tab was not taken over');
  assert.equal(theirs.status, 'complete');
  assert.ok(theirs.watching);
  assert.equal(theirs.id, mine.id);
  assert.equal(theirs.text, mine.text, 'identical text in both tabs');
  assert.equal(mine.text, expected);
  assert.deepEqual(problems, []);
  await Promise.all([first.close(), second.close()]);
});
