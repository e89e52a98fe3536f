// client.resume() and sessions kept across a page reload (`persist`), against a real server.
// A "reload" is what a page does: its client goes away (the socket closes; the server keeps
// detached sessions) and a new client on the same sessionStorage takes over.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createElement } from 'react';
import TestRenderer from 'react-test-renderer';
import { effectScope } from 'vue';
import WebSocket from 'ws';
import { TokenmuxClient, TokenmuxError, streamSSE } from '../src/index.js';
import { useTokenmuxStream as useReactStream } from '../src/react.js';
import { useTokenmuxStream as useVueStream } from '../src/vue.js';
import { startServer } from './server.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

let server;
let small;
before(async () => {
  [server, small] = await Promise.all([
    startServer(),
    startServer({ config: new URL('./fixtures/server-small-buffer.yaml', import.meta.url).pathname }),
  ]);
});
after(async () => { await Promise.all([server?.stop(), small?.stop()]); });

/** sessionStorage's interface over a Map, counting writes. */
class MemoryStorage {
  constructor(entries = {}) {
    this.map = new Map(Object.entries(entries));
    this.writes = 0;
  }

  getItem(key) { return this.map.has(key) ? this.map.get(key) : null; }
  setItem(key, value) { this.writes += 1; this.map.set(key, String(value)); }
  removeItem(key) { this.map.delete(key); }
  stored(key) { return JSON.parse(this.getItem(key) ?? '[]'); }
}

const PARAMS = { max_tokens: 60, tokens_per_second: 80 };

/** The text the SSE route gives for the same request: what a session must end with. */
async function fullText(url, prompt, params = PARAMS) {
  let text = '';
  for await (const event of streamSSE(`${url}/api/stream`, { prompt, llm_params: params })) {
    if (event.type === 'content_chunk') text += event.data.content;
  }
  return text;
}

/** Resolves once `session` has received a content_chunk of `index` (or more). */
async function chunksArrived(session, index) {
  while (!session.ended && (session.text.length === 0 || session.lastSeq < index + 1)) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every envelope of `session`, read to its end. */
async function readAll(session) {
  const events = [];
  for await (const event of session) events.push(event);
  return events;
}

const seqs = (events) => events.map((event) => event.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('client.resume()', () => {
  test('replays a session another client started from seq 0, then continues live', { timeout: 20_000 }, async () => {
    const first = new TokenmuxClient(server.wsUrl, { WebSocket });
    const started = first.stream({ prompt: 'resume me', params: PARAMS, on_disconnect: 'detach' });
    await chunksArrived(started, 5);
    const { id, resumeToken } = started;
    first.close(); // the page went away mid-answer

    const second = new TokenmuxClient(server.wsUrl, { WebSocket });
    const session = second.resume(id, { token: resumeToken });
    assert.equal(session.resumeToken, resumeToken);
    assert.equal(second.sessions.get(id), session);
    const events = await readAll(session);
    assert.equal(events[0].type, 'stream_start');
    assert.deepEqual(seqs(events), range(0, events.length - 1), 'from seq 0, no gap, no repeat');
    const result = await session.done;
    assert.equal(result.reason, 'complete');
    assert.equal(result.text, await fullText(server.url, 'resume me'));
    assert.equal(session.lastSeq, events.at(-1).seq);
    assert.ok(session.recovered);
    second.close();
  });

  test('afterSeq: only what came after it, so the two halves make the whole text', { timeout: 20_000 }, async () => {
    const first = new TokenmuxClient(server.wsUrl, { WebSocket });
    const started = first.stream({ prompt: 'two halves', params: PARAMS, on_disconnect: 'detach' });
    await chunksArrived(started, 3);
    first.close();
    const [head, afterSeq] = [started.text, started.lastSeq];

    const second = new TokenmuxClient(server.wsUrl, { WebSocket });
    const session = second.resume(started.id, { token: started.resumeToken, afterSeq });
    const events = await readAll(session);
    assert.equal(events[0].seq, afterSeq + 1);
    assert.deepEqual(seqs(events), range(afterSeq + 1, events.at(-1).seq));
    const tail = events.filter((e) => e.type === 'content_chunk').map((e) => e.data.content).join('');
    assert.equal(head + tail, await fullText(server.url, 'two halves'));
    second.close();
  });

  test('a wrong token fails the session with resume_refused, carrying the server\'s answer', { timeout: 20_000 }, async () => {
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    const session = client.resume('nobody-here', { token: 'not-a-token' });
    await assert.rejects(session.done, (error) => {
      assert.ok(error instanceof TokenmuxError);
      assert.equal(error.code, 'resume_refused');
      assert.equal(error.retryable, false);
      assert.equal(error.session, 'nobody-here');
      assert.equal(error.cause.code, 'unauthorized');
      return true;
    });
    assert.equal(client.liveSessions, 0);
    client.close();
  });

  test('misuse gets a helpful error', { timeout: 20_000 }, () => {
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    assert.throws(() => client.resume('s1', {}), /token is the resume_token/);
    assert.throws(() => client.resume('bad id!', { token: 't' }), /1-64 characters/);
    assert.throws(() => client.resume('s1', { token: 't', afterSeq: -2 }), /integer >= -1/);
    client.resume('s1', { token: 't' });
    assert.throws(() => client.resume('s1', { token: 't' }), /already live/);
    assert.throws(() => new TokenmuxClient(server.wsUrl, { WebSocket, persist: true }), /no sessionStorage here/);
    assert.throws(() => new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage: new MemoryStorage(), replay: 'some' } }), /'all' or 'missed'/);
    client.close();
  });
});

describe('persist: a reload continues every live session', () => {
  test('restored sessions complete with the whole text; ended ones leave storage', { timeout: 20_000 }, async () => {
    const storage = new MemoryStorage();
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    const key = `tokenmux:sessions:${server.wsUrl}`;
    const prompts = ['first ✓', 'second 👋', 'third'];
    const running = prompts.map((prompt) => page.stream({ prompt, params: PARAMS }));
    const short = page.stream({ prompt: 'short', params: { max_tokens: 3, tokens_per_second: 0 } });
    await short.done;
    await Promise.all(running.map((session) => chunksArrived(session, 4)));
    await new Promise((resolve) => setTimeout(resolve, 0)); // the short one's end is forgotten
    const stored = storage.stored(key);
    assert.deepEqual(stored.map((entry) => entry.id), running.map((session) => session.id), 'the live ones, in start order');
    assert.deepEqual(stored.map((entry) => entry.token), running.map((session) => session.resumeToken));
    page.close(); // the reload: stored sessions stay
    assert.deepEqual(storage.stored(key).map((entry) => entry.lastSeq), running.map((session) => session.lastSeq));

    const reloaded = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    assert.deepEqual(reloaded.restored.map((session) => session.id), running.map((session) => session.id));
    assert.equal(reloaded.liveSessions, 3);
    const states = [];
    reloaded.addEventListener('statechange', (event) => states.push(event.detail));
    const all = await Promise.all(reloaded.restored.map(readAll));
    assert.deepEqual(states, ['connecting', 'open'], 'the client connects by itself to resume them');
    for (const [i, session] of reloaded.restored.entries()) {
      assert.deepEqual(seqs(all[i]), range(0, all[i].length - 1), 'from seq 0, no gap, no repeat');
      assert.equal((await session.done).reason, 'complete');
      assert.equal(session.text, await fullText(server.url, prompts[i]));
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(storage.getItem(key), null, 'ended sessions are removed');
    reloaded.close();
  });

  test('a session cancelled before the reload is not restored; lastSeq writes are throttled', { timeout: 20_000 }, async () => {
    const storage = new MemoryStorage();
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage, key: 'k', flushMs: 60_000 } });
    const session = page.stream({ prompt: 'cancel me', params: PARAMS });
    await chunksArrived(session, 10);
    assert.equal(storage.writes, 1, 'written once when its token came, not once per event');
    assert.equal(storage.stored('k')[0].lastSeq, 0);
    await session.cancel();
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(storage.getItem('k'), null);
    page.close();
    assert.deepEqual(new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage, key: 'k' } }).restored, []);
  });

  test('a refused resume removes the stored session and fails it with resume_refused', { timeout: 20_000 }, async () => {
    const key = 'tokenmux';
    const storage = new MemoryStorage({
      [key]: JSON.stringify([
        { id: 'expired-one', token: 'no-such-token', lastSeq: 7 },
        { id: 'bad id!', token: 't', lastSeq: 0 },
        { id: 'no-token', lastSeq: 0 },
        'garbage',
      ]),
    });
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage, key } });
    assert.deepEqual(page.restored.map((session) => session.id), ['expired-one'], 'malformed entries are dropped');
    const [session] = page.restored;
    await assert.rejects(readAll(session), { code: 'resume_refused', retryable: false });
    await assert.rejects(session.done, { code: 'resume_refused' });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(storage.getItem(key), null);
    page.close();
  });

  test('storage that is not JSON is ignored', { timeout: 20_000 }, () => {
    const storage = new MemoryStorage({ k: '{not json' });
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage, key: 'k' } });
    assert.deepEqual(page.restored, []);
    page.close();
  });

  test('a storage that refuses writes (full, disabled) loses persistence, not the session', { timeout: 20_000 }, async () => {
    const storage = new MemoryStorage();
    storage.setItem = () => { throw new Error('QuotaExceededError'); };
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    const session = page.stream({ prompt: 'no room', params: { max_tokens: 5, tokens_per_second: 0 } });
    assert.equal((await session.done).reason, 'complete');
    page.close();
  });

  test("replay: 'missed' resumes after the stored lastSeq", { timeout: 20_000 }, async () => {
    const storage = new MemoryStorage();
    const options = { WebSocket, persist: { storage, replay: /** @type {const} */ ('missed') } };
    const page = new TokenmuxClient(server.wsUrl, options);
    const started = page.stream({ prompt: 'keep your own text', params: PARAMS });
    await chunksArrived(started, 4);
    page.close();
    const [head, lastSeq] = [started.text, started.lastSeq];

    const reloaded = new TokenmuxClient(server.wsUrl, options);
    const [session] = reloaded.restored;
    assert.equal(session.lastSeq, lastSeq);
    const events = await readAll(session);
    assert.equal(events[0].seq, lastSeq + 1);
    const tail = events.filter((e) => e.type === 'content_chunk').map((e) => e.data.content).join('');
    const whole = await fullText(server.url, 'keep your own text');
    assert.equal(head + tail, whole);
    assert.equal(session.text, whole, 'content_complete carries the whole text');
    reloaded.close();
  });

  test('with a replay buffer shorter than the session, the text before it comes in one piece', { timeout: 20_000 }, async () => {
    const storage = new MemoryStorage();
    const page = new TokenmuxClient(small.wsUrl, { WebSocket, persist: { storage } });
    const started = page.stream({ prompt: 'longer than the buffer', params: PARAMS });
    await chunksArrived(started, 20);
    page.close();

    const reloaded = new TokenmuxClient(small.wsUrl, { WebSocket, persist: { storage } });
    const [session] = reloaded.restored;
    const events = await readAll(session);
    assert.equal(events[0].type, 'metadata');
    assert.equal(events[0].data.recovered, false);
    assert.ok(events[0].seq > 0);
    assert.deepEqual(seqs(events), range(events[0].seq, events.at(-1).seq), 'contiguous from there');
    assert.equal(session.recovered, false);
    assert.equal((await session.done).text, await fullText(small.url, 'longer than the buffer'));
    reloaded.close();
  });

  test('with reconnect, a restored session dropped before any event is resumed again', { timeout: 20_000 }, async () => {
    const storage = new MemoryStorage();
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    const started = page.stream({ prompt: 'dropped twice', params: PARAMS });
    await chunksArrived(started, 2);
    page.close();

    const sockets = [];
    class Recording extends WebSocket {
      constructor(...args) {
        super(...args);
        sockets.push(this);
        if (sockets.length === 1) this.once('open', () => this.terminate()); // before the replay
      }
    }
    const reloaded = new TokenmuxClient(server.wsUrl, { WebSocket: Recording, reconnect: true, initialDelayMs: 10, persist: { storage } });
    const [session] = reloaded.restored;
    const events = await readAll(session);
    assert.ok(sockets.length >= 2);
    assert.deepEqual(seqs(events), range(0, events.length - 1));
    assert.equal(session.text, await fullText(server.url, 'dropped twice'));
    reloaded.close();
  });
});

describe('the bindings resume on mount', () => {
  /** A page that started `prompt` and went away mid-answer; its storage. */
  async function reloadedPage(prompt) {
    const storage = new MemoryStorage();
    const page = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    const started = page.stream({ prompt, params: PARAMS });
    await chunksArrived(started, 3);
    page.close();
    return { storage, started };
  }

  test('React: a persisting client\'s restored session, to the whole text', { timeout: 20_000 }, async () => {
    const { storage } = await reloadedPage('react after a reload');
    const client = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    const seen = { current: null, statuses: [] };
    function Probe() {
      const stream = useReactStream(client);
      seen.current = stream;
      seen.statuses.push(stream.status);
      return createElement('p', null, stream.text);
    }
    let renderer;
    await TestRenderer.act(async () => {
      renderer = TestRenderer.create(createElement(Probe));
    });
    await TestRenderer.act(() => client.restored[0].done);
    assert.equal(seen.current.status, 'complete');
    assert.equal(seen.current.text, await fullText(server.url, 'react after a reload'));
    assert.equal(seen.current.sessionId, client.restored[0].id);
    assert.equal(seen.current.ttftMs, null, 'a replay says nothing about the time to the first token');
    assert.ok(seen.statuses.includes('streaming'));
    TestRenderer.act(() => renderer.unmount());
    client.close();
  });

  test('React: unmounting cancels the resumed session', { timeout: 20_000 }, async () => {
    const { storage } = await reloadedPage('react unmounted');
    const client = new TokenmuxClient(server.wsUrl, { WebSocket, persist: { storage } });
    const [session] = client.restored;
    const Probe = () => { useReactStream(client); return null; };
    let renderer;
    TestRenderer.act(() => { renderer = TestRenderer.create(createElement(Probe)); });
    assert.ok(session._iterated, 'the hook reads the restored session');
    await chunksArrived(session, 5);
    TestRenderer.act(() => renderer.unmount());
    assert.equal((await session.done).reason, 'cancelled');
    client.close();
  });

  test('Vue: `resume: {id, token}` given explicitly, and disposing the scope cancels it', { timeout: 20_000 }, async () => {
    const { started } = await reloadedPage('vue after a reload');
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    const scope = effectScope();
    const stream = scope.run(() => useVueStream(client, { resume: { id: started.id, token: started.resumeToken } }));
    const session = client.sessions.get(started.id);
    assert.ok(session, 'resumed at once outside a component');
    await chunksArrived(session, 20);
    assert.equal(stream.status.value, 'streaming');
    assert.ok(stream.text.value.startsWith(started.text));
    scope.stop();
    assert.equal((await session.done).reason, 'cancelled');
    client.close();
  });
});
