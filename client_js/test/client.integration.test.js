// TokenmuxClient and streamSSE against a real tokenmux server (simulator provider).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { TokenmuxClient, TokenmuxError, streamSSE } from '../src/index.js';
import { startServer } from './server.js';

let server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/** The `ws` WebSocket, recording every socket it opens. */
function recordingWebSocket() {
  const sockets = [];
  class Recording extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  return { WebSocket: Recording, sockets };
}

/** The text the SSE route gives for the same request. */
async function sseText(prompt, params) {
  let text = '';
  for await (const event of streamSSE(`${server.url}/api/stream`, { prompt, llm_params: params })) {
    if (event.type === 'content_chunk') text += event.data.content;
  }
  return text;
}

for (const encoding of ['json', 'msgpack']) {
  describe(`over one WebSocket (${encoding})`, () => {
    test('20 concurrent sessions; one cancelled mid-stream; the rest match the SSE text', async () => {
      const { WebSocket: WS, sockets } = recordingWebSocket();
      const client = new TokenmuxClient(server.wsUrl, { WebSocket: WS, encoding });
      const params = { max_tokens: 60, tokens_per_second: 300 };
      const sessions = Array.from({ length: 20 }, (_, i) => client.stream({ prompt: `prompt ${i} — ünï 👋`, params }));
      assert.equal(client.liveSessions, 20);
      const victim = sessions[7];
      const runs = sessions.map(async (session) => {
        const types = [];
        for await (const event of session) {
          types.push(event.type);
          if (session === victim && event.type === 'content_chunk' && event.data.index === 2) await session.cancel();
        }
        return types;
      });
      const allTypes = await Promise.all(runs);
      assert.equal(sockets.length, 1, 'every session shares one socket');
      assert.equal(client.serverInfo.encoding, encoding);
      const cancelled = await victim.done;
      assert.equal(cancelled.reason, 'cancelled');
      assert.ok(cancelled.usage.estimated);
      assert.ok(!allTypes[7].includes('content_complete'));
      for (const [i, session] of sessions.entries()) {
        if (session === victim) continue;
        const result = await session.done;
        assert.equal(result.reason, 'complete');
        assert.equal(allTypes[i][0], 'stream_start');
        assert.equal(allTypes[i].at(-1), 'stream_end');
      }
      const others = [...sessions.keys()].filter((i) => sessions[i] !== victim);
      const expected = await Promise.all(others.map((i) => sseText(`prompt ${i} — ünï 👋`, params)));
      assert.deepEqual(others.map((i) => sessions[i].text), expected);
      assert.ok(expected[0].startsWith('prompt 0 — ünï 👋'));
      assert.equal(client.liveSessions, 0);
      client.close();
    });
  });
}

describe('TokenmuxClient', () => {
  test('a provider failure rejects done with a typed, retryable TokenmuxError', async () => {
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    const session = client.stream({ prompt: 'fail please', params: { fail_at: 3 } });
    await assert.rejects(session.done, (error) => {
      assert.ok(error instanceof TokenmuxError);
      assert.equal(error.code, 'provider_error');
      assert.equal(error.retryable, true);
      assert.equal(error.reason, 'error');
      return true;
    });
    assert.match(session.text, /^fail please/);
    client.close();
  });

  test('an unknown provider fails the session with unknown_provider', async () => {
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    const session = client.stream({ prompt: 'x', provider: 'nope' });
    await assert.rejects(session.done, { code: 'unknown_provider', retryable: false });
    client.close();
  });

  test('an AbortSignal cancels the session', async () => {
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    const controller = new AbortController();
    const session = client.stream({ prompt: 'x', params: { hang_at: 2 } }, { signal: controller.signal });
    for await (const event of session) {
      if (event.type === 'content_chunk' && event.data.index === 1) controller.abort();
    }
    assert.equal((await session.done).reason, 'cancelled');
    client.close();
  });

  test('ping round-trips; close() fails live sessions with `closed`', async () => {
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    const info = await client.connect();
    assert.equal(info.protocol, 1);
    assert.equal((await client.ping({ hello: 'there' })).hello, 'there');
    const session = client.stream({ prompt: 'x', params: { hang_at: 1 } });
    for await (const event of session) if (event.type === 'content_chunk') break;
    client.close();
    await assert.rejects(session.done, { code: 'closed', retryable: false });
    assert.throws(() => client.stream({ prompt: 'y' }), { code: 'closed' });
  });

  test('reconnect: a dropped socket resumes its live sessions with no gap or duplicate', async () => {
    const { WebSocket: WS, sockets } = recordingWebSocket();
    const client = new TokenmuxClient(server.wsUrl, { WebSocket: WS, reconnect: true, initialDelayMs: 20 });
    const params = { max_tokens: 40, tokens_per_second: 200 };
    const sessions = ['one', 'two', 'three'].map((prompt) => client.stream({ prompt, params }));
    const seqs = sessions.map(() => []);
    await Promise.all(sessions.map(async (session, i) => {
      for await (const event of session) {
        seqs[i].push(event.seq);
        if (i === 0 && event.type === 'stream_start') assert.equal(typeof event.data.resume_token, 'string');
        if (i === 0 && event.type === 'content_chunk' && event.data.index === 3) sockets[0].terminate();
      }
    }));
    assert.equal(sockets.length, 2, 'one reconnect');
    for (const [i, prompt] of ['one', 'two', 'three'].entries()) {
      const { reason, text } = await sessions[i].done;
      assert.equal(reason, 'complete');
      assert.equal(text, await sseText(prompt, params));
      assert.deepEqual(seqs[i], seqs[i].map((_, n) => n), 'seq from 0, no gap, no repeat');
    }
    client.close();
  });

  test('misuse gets a helpful error', () => {
    assert.throws(() => new TokenmuxClient(server.wsUrl, { WebSocket: undefined, encoding: 'json' }), /pass one, e.g./);
    const client = new TokenmuxClient(server.wsUrl, { WebSocket });
    assert.throws(() => client.stream({}), /give a `prompt` string or a `messages` array/);
    assert.throws(() => client.stream({ prompt: 'x', session: 'bad id!' }), /1-64 characters/);
    client.close();
  });
});

test('streamSSE against the server: an unknown provider is an HTTP error with its code', async () => {
  await assert.rejects(
    async () => { for await (const _ of streamSSE(`${server.url}/api/stream`, { prompt: 'x', provider: 'nope' })) { /* none */ } },
    { code: 'unknown_provider', status: 400 },
  );
});

describe('against a server with resume turned off', () => {
  let plain;
  before(async () => { plain = await startServer({ config: new URL('./fixtures/server-no-resume.yaml', import.meta.url).pathname }); });
  after(async () => { await plain?.stop(); });

  test('reconnect: a dropped socket fails live sessions and the client comes back', async () => {
    const { WebSocket: WS, sockets } = recordingWebSocket();
    const client = new TokenmuxClient(plain.wsUrl, { WebSocket: WS, reconnect: true, initialDelayMs: 20 });
    const session = client.stream({ prompt: 'x', params: { hang_at: 2 } });
    await assert.rejects(async () => {
      for await (const event of session) {
        if (event.type === 'stream_start') assert.equal(event.data.resume_token, null);
        if (event.type === 'content_chunk' && event.data.index === 1) sockets[0].terminate();
      }
    }, { code: 'connection_lost', retryable: true });
    await assert.rejects(session.done, { code: 'connection_lost', retryable: true });
    const again = client.stream({ prompt: 'after the drop', params: { max_tokens: 3 } });
    assert.equal((await again.done).reason, 'complete');
    assert.equal(sockets.length, 2);
    client.close();
  });
});
