import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as library from '../src/index.js';
import { TokenmuxError } from '../src/errors.js';
import { SESSION_ID_PATTERN, jsonCodec, loadCodec, newSessionId } from '../src/protocol.js';

test('the package exports what the README documents', () => {
  for (const name of ['TokenmuxClient', 'TokenmuxError', 'streamSSE', 'createParser', 'Typewriter', 'UniversalStreamClient']) {
    assert.equal(typeof library[name], 'function', name);
  }
});

test('generated session ids are valid and unique', () => {
  const ids = new Set(Array.from({ length: 1000 }, newSessionId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, SESSION_ID_PATTERN);
});

test('the msgpack codec loads on demand and speaks the msgpack subprotocol', async () => {
  const codec = await loadCodec('msgpack');
  assert.equal(codec.subprotocol, 'tokenmux.v1.msgpack');
  assert.equal(codec.binary, true);
  const message = { type: 'start', session: 's1', data: { prompt: 'hé' } };
  assert.deepEqual(codec.decode(codec.encode(message)), message);
  assert.throws(() => codec.decode('text'), /text frame on a MessagePack connection/);
  assert.equal(await loadCodec('json'), jsonCodec);
  await assert.rejects(loadCodec('xml'), /unknown encoding "xml": use 'json' or 'msgpack'/);
});

test('TokenmuxError carries code, retryable and message', () => {
  const error = TokenmuxError.fromPayload({ code: 'too_many_sessions', message: 'at most 100', retryable: true, ref: { type: 'start', session: 's' } });
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'TokenmuxError');
  assert.equal(error.code, 'too_many_sessions');
  assert.equal(error.retryable, true);
  assert.equal(error.message, 'at most 100');
  assert.deepEqual(error.ref, { type: 'start', session: 's' });
  assert.equal(new TokenmuxError('invalid_field', 'x').retryable, false);
  assert.equal(new TokenmuxError('provider_timeout', 'x').retryable, true);
});
