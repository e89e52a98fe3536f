import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Typewriter } from '../src/typewriter.js';
import { createDocument } from './fake-dom.js';

/** A typewriter on a fake element, with frames and time driven by the test. */
function setup(options = {}) {
  const element = createDocument().createElement('div');
  const frames = [];
  let now = 0;
  const typewriter = new Typewriter(element, {
    requestFrame: (callback) => frames.push(callback),
    now: () => now,
    reducedMotion: false,
    cursorLingerMs: 0,
    ...options,
  });
  /** Run one animation frame `ms` after the previous one. */
  const frame = (ms = 16) => {
    now += ms;
    const pending = frames.splice(0);
    for (const callback of pending) callback(now);
    return pending.length;
  };
  const text = () => element.childNodes[0].data;
  const cursor = () => element.querySelector('.cursor');
  return { element, typewriter, frame, frames, text, cursor };
}

describe('Typewriter', () => {
  test('types a slow stream out at the calm speed, with a cursor', () => {
    const { typewriter, frame, text, cursor } = setup({ charsPerSecond: 62.5 });
    typewriter.append('hello');
    assert.ok(cursor(), 'a cursor while typing');
    frame(16);
    assert.equal(text(), 'h');
    frame(16);
    assert.equal(text(), 'he');
  });

  test('catches up adaptively: a 2,000-character burst is shown within catchUpMs', () => {
    const { typewriter, frame, text } = setup({ charsPerSecond: 30, catchUpMs: 400 });
    typewriter.append('x'.repeat(2000));
    let elapsed = 0;
    while (text().length < 2000) {
      frame(16);
      elapsed += 16;
      assert.ok(elapsed <= 400 + 16, `still ${2000 - text().length} behind after ${elapsed} ms`);
    }
    // A fixed 30 chars/s would have needed over a minute.
    assert.ok(elapsed < 2000 / 30 * 1000 / 20);
  });

  test('a steady fast stream is never shown more than catchUpMs late', () => {
    const { typewriter, frame, text } = setup({ charsPerSecond: 30, catchUpMs: 400 });
    const sent = [];
    for (let t = 0; t < 3000; t += 16) {
      typewriter.append('y'.repeat(8)); // 500 characters a second
      sent.push(typewriter.text.length);
      frame(16);
      const lagFrames = sent.length - 1 - sent.findIndex((length) => length > text().length);
      if (lagFrames < sent.length) assert.ok(lagFrames * 16 <= 400 + 16, `lag ${lagFrames * 16} ms`);
    }
  });

  test('renders at most once per animation frame however many appends arrive', () => {
    const { typewriter, frame, frames } = setup();
    for (let i = 0; i < 100; i++) typewriter.append('ab');
    assert.equal(frames.length, 1, 'one frame requested');
    frame();
    assert.equal(typewriter.renders, 1);
  });

  test('end() finishes the text, then removes the cursor and calls onDone', async () => {
    let done = false;
    const { typewriter, frame, text, cursor } = setup({ onDone: () => { done = true; } });
    typewriter.append('the end');
    typewriter.end();
    while (frame()) { /* until idle */ }
    assert.equal(text(), 'the end');
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(cursor(), null);
    assert.ok(done);
  });

  test('reduced motion shows text as it arrives', () => {
    const { typewriter, frame, text } = setup({ reducedMotion: true });
    typewriter.append('all at once');
    frame();
    assert.equal(text(), 'all at once');
  });

  test('never splits a surrogate pair', () => {
    const { typewriter, frame, text } = setup({ charsPerSecond: 62.5 });
    typewriter.append('👋👋');
    frame(16);
    assert.equal(text(), '👋');
  });

  test('set() with a text that does not extend the shown one restarts; start() clears', () => {
    const { typewriter, frame, text, cursor } = setup({ reducedMotion: true });
    typewriter.append('abc');
    frame();
    typewriter.set('xyz');
    frame();
    assert.equal(text(), 'xyz');
    typewriter.start();
    assert.equal(text(), '');
    assert.ok(cursor());
  });

  test('misuse gets a helpful error', () => {
    assert.throws(() => new Typewriter('#output'), /must be a DOM element/);
  });
});
