// client.watch() against a real tokenmux server: one more reader (PROTOCOL.md section 12).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { TokenmuxClient } from '../src/index.js';
import { startServer } from './server.js';

let server;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/** Read a session's events one at a time: `await next()`, or `await rest()` for the others. */
function reader(session) {
  const iterator = session[Symbol.asyncIterator]();
  const next = async () => (await iterator.next()).value;
  const rest = async () => {
    const events = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) events.push(r.value);
    return events;
  };
  return { next, rest };
}

async function collect(session) {
  return reader(session).rest();
}

test('two readers and the owner see the same events; the owner keeps its session', async () => {
  const owner = new TokenmuxClient(server.wsUrl, { WebSocket, reconnect: true });
  const readers = [new TokenmuxClient(server.wsUrl, { WebSocket }), new TokenmuxClient(server.wsUrl, { WebSocket })];
  const session = owner.stream({ prompt: 'shared', params: { max_tokens: 40, tokens_per_second: 200 } });
  const mine = reader(session);
  const first = await mine.next(); // stream_start carries the token
  const token = first.data.resume_token;
  const watched = readers.map((reader) => reader.watch(session.id, { token }));
  assert.ok(watched.every((w) => w.watching));
  const [rest, ...theirs] = await Promise.all([mine.rest(), ...watched.map(collect)]);
  const all = [first, ...rest];
  for (const events of theirs) assert.deepEqual(events, all);
  assert.equal((await session.done).reason, 'complete');
  assert.equal((await watched[0].done).text, (await session.done).text);
  for (const client of [owner, ...readers]) client.close();
});

test('a wrong token fails with resume_refused; closing a reader leaves the session', async () => {
  const owner = new TokenmuxClient(server.wsUrl, { WebSocket, reconnect: true });
  const session = owner.stream({ prompt: 'on', params: { max_tokens: 60, tokens_per_second: 200 } });
  const token = (await reader(session).next()).data.resume_token;
  const other = new TokenmuxClient(server.wsUrl, { WebSocket });
  await assert.rejects(other.watch(session.id, { token: 'nope' }).done, { code: 'resume_refused' });
  const watched = other.watch(session.id, { token });
  await reader(watched).next();
  other.close();
  assert.equal((await session.done).reason, 'complete');
  owner.close();
});
