import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from '../src/msgpack.js';

const VALUES = [
  null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER,
  -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER,
  0.5, -1.25, 1e300, '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(300), 'é👋日本', 'y'.repeat(70000),
  [], [1, 'two', [3]], Array.from({ length: 20 }, (_, i) => i), {}, { a: 1, b: { c: [null] } },
  Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  Uint8Array.of(1, 2, 3),
  { type: 'content_chunk', session: 's1', seq: 3, timestamp: 1_764_000_000_000, data: { content: 'hé', index: 2, accumulated_length: 9 } },
];

test('round-trips every kind of value', () => {
  for (const value of VALUES) assert.deepEqual(decode(encode(value)), value, JSON.stringify(value)?.slice(0, 60));
});

test('matches the reference encoding for a known message', () => {
  // {"a": 1, "b": [true, null], "s": "hé"} as the Python msgpack package packs it.
  const expected = Uint8Array.from([0x83, 0xa1, 0x61, 0x01, 0xa1, 0x62, 0x92, 0xc3, 0xc0, 0xa1, 0x73, 0xa3, 0x68, 0xc3, 0xa9]);
  assert.deepEqual(encode({ a: 1, b: [true, null], s: 'hé' }), expected);
  assert.deepEqual(decode(expected.buffer), { a: 1, b: [true, null], s: 'hé' });
});

test('reads float32, 64-bit integers and ext values', () => {
  assert.equal(decode(Uint8Array.of(0xca, 0x3f, 0xc0, 0, 0)), 1.5);
  assert.equal(decode(Uint8Array.of(0xcf, 0, 0, 0, 0, 0, 0, 1, 0)), 256);
  assert.equal(decode(Uint8Array.of(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), 2n ** 64n - 1n);
  assert.deepEqual(decode(Uint8Array.of(0xd4, 5, 9)), { type: 5, data: Uint8Array.of(9) });
});

test('rejects truncated input, trailing bytes and unknown tags', () => {
  assert.throws(() => decode(Uint8Array.of(0xa3, 0x61)), /truncated/);
  assert.throws(() => decode(Uint8Array.of(0x01, 0x02)), /extra bytes/);
  assert.throws(() => decode(Uint8Array.of(0xc1)), /invalid tag 0xc1/);
  assert.throws(() => encode(() => 1), /cannot encode a function/);
});
