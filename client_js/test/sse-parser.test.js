import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createParser } from '../src/sse-parser.js';

/** Feed `chunks` and record everything the parser reports. */
function run(chunks) {
  const seen = { events: [], comments: [], errors: [], retries: [] };
  const parser = createParser({
    onEvent: (event) => seen.events.push(event),
    onComment: (comment) => seen.comments.push(comment),
    onError: (error) => seen.errors.push(error.type),
    onRetry: (ms) => seen.retries.push(ms),
  });
  for (const chunk of chunks) parser.feed(chunk);
  return seen;
}

const encoder = new TextEncoder();

/** Every split of `bytes` into two pieces, plus one byte at a time. */
function* splits(bytes) {
  for (let i = 0; i <= bytes.length; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
  yield Array.from(bytes, (b) => Uint8Array.of(b));
}

const FIXTURES = {
  'tokenmux stream': {
    text: 'data: {"type":"content_chunk","data":{"content":"héllo 👋"}}\n\n: ping\n\ndata: [DONE]\n\n',
    events: [{ data: '{"type":"content_chunk","data":{"content":"héllo 👋"}}', event: undefined, id: undefined }, { data: '[DONE]', event: undefined, id: undefined }],
    comments: ['ping'],
  },
  'CRLF, CR, multi-line data, event and id': {
    text: '\uFEFFevent: chunk\r\nid: 7\r\ndata: a\rdata:b\r\n\r\ndata:  two spaces\n\n',
    events: [{ data: 'a\nb', event: 'chunk', id: '7' }, { data: ' two spaces', event: undefined, id: '7' }],
    comments: [],
  },
  'multi-byte characters, no final blank line': {
    text: 'data: 日本語テキスト✓ ½ €\n\ndata: never dispatched',
    events: [{ data: '日本語テキスト✓ ½ €', event: undefined, id: undefined }],
    comments: [],
  },
};

describe('createParser', () => {
  for (const [name, fixture] of Object.entries(FIXTURES)) {
    test(`${name}: same events at every byte boundary`, () => {
      const bytes = encoder.encode(fixture.text);
      for (const chunks of splits(bytes)) {
        const seen = run(chunks);
        assert.deepEqual(seen.events, fixture.events, `split into ${chunks.map((c) => c.length)}`);
        assert.deepEqual(seen.comments, fixture.comments);
      }
    });

    test(`${name}: same events at every string boundary`, () => {
      for (let i = 0; i <= fixture.text.length; i++) {
        const seen = run([fixture.text.slice(0, i), fixture.text.slice(i)]);
        assert.deepEqual(seen.events, fixture.events, `split at ${i}`);
      }
    });
  }

  test('a CR at the end of a chunk and an LF at the start of the next are one line break', () => {
    const seen = run(['data: x\r', '\n\r', '\ndata: y\r\n\r\n']);
    assert.deepEqual(seen.events.map((e) => e.data), ['x', 'y']);
  });

  test('retry is reported when numeric; bad retry and unknown fields are errors', () => {
    const seen = run(['retry: 1500\nretry: soon\nfoo: bar\ndata: z\n\n']);
    assert.deepEqual(seen.retries, [1500]);
    assert.deepEqual(seen.errors, ['invalid-retry', 'unknown-field']);
    assert.equal(seen.events.length, 1);
  });

  test('a block without data dispatches nothing; an empty data line dispatches an empty event', () => {
    const seen = run(['event: nothing\n\ndata\n\n']);
    assert.deepEqual(seen.events, [{ data: '', event: undefined, id: undefined }]);
  });

  test('reset() drops a partial event', () => {
    const events = [];
    const parser = createParser({ onEvent: (e) => events.push(e.data) });
    parser.feed('data: partial');
    parser.reset();
    parser.feed('data: whole\n\n');
    assert.deepEqual(events, ['whole']);
  });

  test('misuse gets a helpful error', () => {
    assert.throws(() => createParser(() => {}), /did you mean `createParser\(\{ onEvent: fn \}\)`/);
    assert.throws(() => createParser({}), /needs an `onEvent` callback/);
    const parser = createParser({ onEvent() {} });
    assert.throws(() => parser.feed(42), /takes a string or a Uint8Array, not a number/);
  });
});
