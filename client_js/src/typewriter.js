/**
 * Typewriter: renders a growing text into an element with a blinking cursor, and removes
 * the cursor shortly after the stream ends.
 *
 * It never lags far behind the stream. A fixed delay per character leaves the display
 * seconds behind a fast model, so the speed adapts to the backlog: each frame reveals at
 * least `charsPerSecond` worth of characters, more as the backlog grows (a share of it
 * proportional to the frame time over `catchUpMs`), and always every character that arrived
 * more than `catchUpMs` ago. No character is shown later than `catchUpMs` after it arrived
 * (half that after `end()`). It renders at most once per animation frame, and with
 * `prefers-reduced-motion: reduce` it shows text as it arrives and the cursor does not blink.
 * It paces the answer's text only: append `content_chunk`s, and show reasoning
 * (`reasoning_chunk`, `onReasoning`) as it arrives, since it is read while the model thinks.
 *
 * ```js
 * const typewriter = new Typewriter(document.querySelector('#output'));
 * for await (const event of session) {
 *   if (event.type === 'content_chunk') typewriter.append(event.data.content);
 * }
 * typewriter.end();
 * ```
 *
 * @module
 */

/**
 * @typedef {object} TypewriterOptions
 * @property {number} [charsPerSecond] the calm typing speed (default 60)
 * @property {number} [catchUpMs] the most the display lags behind the text (default 400)
 * @property {number} [cursorLingerMs] the cursor stays this long after the end (default 500)
 * @property {string} [cursorClass] class of the cursor element (default 'cursor')
 * @property {string} [cursorText] text of the cursor element (default '▍')
 * @property {boolean} [reducedMotion] default: the `prefers-reduced-motion` media query
 * @property {(callback: (now: number) => void) => unknown} [requestFrame] default requestAnimationFrame
 * @property {() => number} [now] clock in ms (default performance.now)
 * @property {() => void} [onDone] called once the text is fully shown and the cursor removed
 * @property {(shown: string) => void} [onRender] called after each render (e.g. to scroll)
 */

export class Typewriter {
  /**
   * @param {Element} element where the text goes (its content is replaced)
   * @param {TypewriterOptions} [options]
   */
  constructor(element, options = {}) {
    if (!element || typeof element.appendChild !== 'function') {
      throw new TypeError('new Typewriter(element): element must be a DOM element, e.g. document.querySelector("#output")');
    }
    this.element = element;
    this.charsPerSecond = options.charsPerSecond ?? 60;
    this.catchUpMs = options.catchUpMs ?? 400;
    this.cursorLingerMs = options.cursorLingerMs ?? 500;
    this.reducedMotion = options.reducedMotion ?? prefersReducedMotion();
    this._requestFrame = options.requestFrame ?? defaultRequestFrame();
    this._now = options.now ?? (() => globalThis.performance.now());
    this._onDone = options.onDone;
    this._onRender = options.onRender;
    this._cursorClass = options.cursorClass ?? 'cursor';
    this._cursorText = options.cursorText ?? '▍';
    /** The whole text received so far. */
    this.text = '';
    /** How many UTF-16 units of `text` are on screen. */
    this.shown = 0;
    /** Number of renders done (at most one per frame). */
    this.renders = 0;
    this.ended = false;
    this._framePending = false;
    /** @type {{end: number, at: number}[]} when each appended piece arrived */
    this._arrivals = [];
    /** @type {number | null} */
    this._lastFrame = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._lingerTimer = undefined;
    const doc = element.ownerDocument;
    this._textNode = doc.createTextNode('');
    /** @type {HTMLElement | null} */
    this._cursor = null;
    element.replaceChildren(this._textNode);
  }

  /** What is on screen now. */
  get displayed() {
    return this.text.slice(0, this.shown);
  }

  /** Characters received but not yet shown. */
  get backlog() {
    return this.text.length - this.shown;
  }

  /**
   * Add text to the end.
   * @param {string} delta
   */
  append(delta) {
    if (!delta) return;
    this._reopen();
    this.text += delta;
    this._arrivals.push({ end: this.text.length, at: this._now() });
    this._schedule();
  }

  /**
   * Replace the target text (e.g. with `total_content`). A text that does not extend what is
   * shown restarts the display.
   * @param {string} text
   */
  set(text) {
    this._reopen();
    if (!text.startsWith(this.displayed)) {
      this.shown = 0;
      this._textNode.data = '';
    }
    this.text = text;
    this._arrivals = [{ end: text.length, at: this._now() }];
    this._schedule();
  }

  /** The stream ended: finish the backlog quickly, then remove the cursor. */
  end() {
    this.ended = true;
    this._showCursor();
    this._schedule();
  }

  /** Clear the element and show the cursor: a new text is on its way. */
  start() {
    this.reset();
    this._showCursor();
  }

  /** Clear everything, ready for a new text. */
  reset() {
    clearTimeout(this._lingerTimer);
    this.text = '';
    this.shown = 0;
    this.ended = false;
    this._arrivals = [];
    this._lastFrame = null;
    this._textNode.data = '';
    this._removeCursor();
  }

  // Frames.

  _reopen() {
    if (this.ended) {
      this.ended = false;
      clearTimeout(this._lingerTimer);
    }
    this._showCursor();
  }

  _schedule() {
    if (this._framePending) return;
    this._framePending = true;
    this._requestFrame(() => this._frame());
  }

  _frame() {
    this._framePending = false;
    const now = this._now();
    const elapsed = this._lastFrame === null ? 16 : Math.min(now - this._lastFrame, 250);
    this._lastFrame = now;
    const target = this.text.length;
    if (this.shown < target) {
      const due = this._due(now) - this.shown;
      const step = Math.max(this._step(elapsed, target - this.shown), due);
      this.shown = this._advance(this.shown + step, target);
      this._textNode.data = this.text.slice(0, this.shown);
      this.renders += 1;
      this._onRender?.(this._textNode.data);
    }
    if (this.shown < target) this._schedule();
    else if (this.ended) this._finish();
    else this._lastFrame = null; // idle: the next text starts a fresh frame clock
  }

  /**
   * Characters to reveal this frame.
   * @param {number} elapsed ms since the previous frame @param {number} backlog
   */
  _step(elapsed, backlog) {
    if (this.reducedMotion) return backlog;
    const calm = (this.charsPerSecond * elapsed) / 1000;
    const catchUp = this.ended ? this.catchUpMs / 2 : this.catchUpMs;
    const drain = (backlog * elapsed) / catchUp;
    return Math.max(1, Math.ceil(Math.max(calm, drain)));
  }

  /**
   * How far the text must be shown by `now`: every piece older than the catch-up time.
   * @param {number} now
   */
  _due(now) {
    const limit = now - (this.ended ? this.catchUpMs / 2 : this.catchUpMs);
    let due = 0;
    while (this._arrivals.length && this._arrivals[0].at <= limit) {
      due = /** @type {{end: number}} */ (this._arrivals.shift()).end;
    }
    while (this._arrivals.length && this._arrivals[0].end <= this.shown) this._arrivals.shift();
    return due;
  }

  /**
   * Never split a surrogate pair.
   * @param {number} index @param {number} limit
   */
  _advance(index, limit) {
    const end = Math.min(index, limit);
    const code = this.text.charCodeAt(end - 1);
    return code >= 0xd800 && code <= 0xdbff && end < limit ? end + 1 : end;
  }

  _finish() {
    clearTimeout(this._lingerTimer);
    this._lingerTimer = setTimeout(() => {
      this._removeCursor();
      this._onDone?.();
    }, this.cursorLingerMs);
  }

  // The cursor.

  _showCursor() {
    if (this._cursor) return;
    const cursor = this.element.ownerDocument.createElement('span');
    cursor.className = this._cursorClass;
    cursor.setAttribute('aria-hidden', 'true');
    cursor.textContent = this._cursorText;
    this.element.appendChild(cursor);
    if (!this.reducedMotion && typeof cursor.animate === 'function') {
      cursor.animate([{ opacity: 1 }, { opacity: 1, offset: 0.5 }, { opacity: 0.2, offset: 0.5 }, { opacity: 0.2 }], {
        duration: 1000,
        iterations: Infinity,
      });
    }
    this._cursor = cursor;
  }

  _removeCursor() {
    this._cursor?.remove();
    this._cursor = null;
  }
}

function prefersReducedMotion() {
  return Boolean(globalThis.matchMedia?.('(prefers-reduced-motion: reduce)').matches);
}

/** @returns {(callback: (now: number) => void) => unknown} */
function defaultRequestFrame() {
  if (typeof globalThis.requestAnimationFrame === 'function') {
    return (callback) => globalThis.requestAnimationFrame(callback);
  }
  return (callback) => setTimeout(() => callback(globalThis.performance.now()), 16);
}
