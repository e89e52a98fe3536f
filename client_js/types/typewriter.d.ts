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
    constructor(element: Element, options?: TypewriterOptions);
    element: Element;
    charsPerSecond: number;
    catchUpMs: number;
    cursorLingerMs: number;
    reducedMotion: boolean;
    _requestFrame: (callback: (now: number) => void) => unknown;
    _now: () => number;
    _onDone: () => void;
    _onRender: (shown: string) => void;
    _cursorClass: string;
    _cursorText: string;
    /** The whole text received so far. */
    text: string;
    /** How many UTF-16 units of `text` are on screen. */
    shown: number;
    /** Number of renders done (at most one per frame). */
    renders: number;
    ended: boolean;
    _framePending: boolean;
    /** @type {{end: number, at: number}[]} when each appended piece arrived */
    _arrivals: {
        end: number;
        at: number;
    }[];
    /** @type {number | null} */
    _lastFrame: number | null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    _lingerTimer: ReturnType<typeof setTimeout> | undefined;
    _textNode: Text;
    /** @type {HTMLElement | null} */
    _cursor: HTMLElement | null;
    /** What is on screen now. */
    get displayed(): string;
    /** Characters received but not yet shown. */
    get backlog(): number;
    /**
     * Add text to the end.
     * @param {string} delta
     */
    append(delta: string): void;
    /**
     * Replace the target text (e.g. with `total_content`). A text that does not extend what is
     * shown restarts the display.
     * @param {string} text
     */
    set(text: string): void;
    /** The stream ended: finish the backlog quickly, then remove the cursor. */
    end(): void;
    /** Clear the element and show the cursor: a new text is on its way. */
    start(): void;
    /** Clear everything, ready for a new text. */
    reset(): void;
    _reopen(): void;
    _schedule(): void;
    _frame(): void;
    /**
     * Characters to reveal this frame.
     * @param {number} elapsed ms since the previous frame @param {number} backlog
     */
    _step(elapsed: number, backlog: number): number;
    /**
     * How far the text must be shown by `now`: every piece older than the catch-up time.
     * @param {number} now
     */
    _due(now: number): number;
    /**
     * Never split a surrogate pair.
     * @param {number} index @param {number} limit
     */
    _advance(index: number, limit: number): number;
    _finish(): void;
    _showCursor(): void;
    _removeCursor(): void;
}
export type TypewriterOptions = {
    /**
     * the calm typing speed (default 60)
     */
    charsPerSecond?: number;
    /**
     * the most the display lags behind the text (default 400)
     */
    catchUpMs?: number;
    /**
     * the cursor stays this long after the end (default 500)
     */
    cursorLingerMs?: number;
    /**
     * class of the cursor element (default 'cursor')
     */
    cursorClass?: string;
    /**
     * text of the cursor element (default '▍')
     */
    cursorText?: string;
    /**
     * default: the `prefers-reduced-motion` media query
     */
    reducedMotion?: boolean;
    /**
     * default requestAnimationFrame
     */
    requestFrame?: (callback: (now: number) => void) => unknown;
    /**
     * clock in ms (default performance.now)
     */
    now?: () => number;
    /**
     * called once the text is fully shown and the cursor removed
     */
    onDone?: () => void;
    /**
     * called after each render (e.g. to scroll)
     */
    onRender?: (shown: string) => void;
};
