import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Session } from '../src/session.js';
import { TokenmuxError } from '../src/errors.js';
import { sessionEvents } from './fake-fetch.js';

function feed(session, events) {
  for (const event of events) session._receive(event);
}

describe('Session', () => {
  test('iterates every envelope, tracks text and settles done on stream_end', async () => {
    const session = new Session('s1', () => {});
    const events = sessionEvents('s1', ['Hel', 'lo']);
    feed(session, events);
    const seen = [];
    for await (const event of session) seen.push(event.type);
    assert.deepEqual(seen, events.map((e) => e.type));
    const result = await session.done;
    assert.equal(result.reason, 'complete');
    assert.equal(result.text, 'Hello');
    assert.equal(session.text, 'Hello');
    assert.equal(session.provider, 'sim');
    assert.equal(result.usage.output_tokens, 2);
  });

  test('drops events whose seq it has already seen (a resume replay)', async () => {
    const session = new Session('s1', () => {});
    const events = sessionEvents('s1', ['a', 'b', 'c']);
    feed(session, events.slice(0, 3));
    feed(session, events.slice(1)); // the replay repeats seq 1 and 2
    assert.equal(session.text, 'abc');
    assert.equal((await session.done).text, 'abc');
    const seqs = [];
    for await (const event of session) seqs.push(event.seq);
    assert.deepEqual(seqs, events.map((e) => e.seq));
  });

  test('a provider error rejects done with the error event as a TokenmuxError', async () => {
    const session = new Session('s1', () => {});
    feed(session, sessionEvents('s1', ['partial'], 'error'));
    await assert.rejects(session.done, (error) => {
      assert.ok(error instanceof TokenmuxError);
      assert.equal(error.code, 'provider_error');
      assert.equal(error.retryable, true);
      assert.equal(error.reason, 'error');
      assert.equal(error.text, 'partial');
      return true;
    });
    const types = [];
    for await (const event of session) types.push(event.type);
    assert.deepEqual(types.slice(-2), ['error', 'stream_end'], 'the iterator still yields every event');
  });

  test('cancel() asks once and resolves with the stream_end', async () => {
    let asked = 0;
    const session = new Session('s1', () => { asked += 1; });
    feed(session, sessionEvents('s1', ['a']).slice(0, 2));
    const cancelled = session.cancel();
    feed(session, [{ type: 'stream_end', session: 's1', seq: 2, timestamp: 1, data: { reason: 'cancelled', duration_ms: 1, chunks: 1, usage: null } }]);
    assert.equal((await cancelled).reason, 'cancelled');
    await session.cancel();
    assert.equal(asked, 1);
    assert.equal((await session.done).reason, 'cancelled');
  });

  test('failing without stream_end rejects done and makes the iterator throw', async () => {
    const session = new Session('s1', () => {});
    feed(session, sessionEvents('s1', ['a']).slice(0, 2));
    session._fail(new TokenmuxError('connection_lost', 'gone'));
    const iterator = session[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value.type, 'stream_start');
    assert.equal((await iterator.next()).value.type, 'content_chunk');
    await assert.rejects(iterator.next(), { code: 'connection_lost', retryable: true, session: 's1' });
    await assert.rejects(session.done, { code: 'connection_lost' });
  });

  test('a session is read once', () => {
    const session = new Session('s1', () => {});
    session[Symbol.asyncIterator]();
    assert.throws(() => session[Symbol.asyncIterator](), /already being iterated/);
  });
});
