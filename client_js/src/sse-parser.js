/**
 * A pure server-sent events parser (the WHATWG "event stream" grammar): feed it chunks of
 * text or bytes as they arrive, get whole events back. It knows nothing about fetch.
 *
 * ```js
 * const parser = createParser({ onEvent: (event) => console.log(event.data) });
 * parser.feed('data: hel');
 * parser.feed('lo\n\n'); // logs "hello"
 * ```
 *
 * Lines may end with CRLF, LF or CR, split anywhere between chunks; byte chunks may split a
 * multi-byte UTF-8 character. A leading byte order mark is skipped.
 *
 * @module
 */

/**
 * @typedef {object} SSEEvent
 * @property {string} data the data lines joined with "\n"
 * @property {string | undefined} event the `event:` field, if the block had one
 * @property {string | undefined} id the last event id seen so far, if any
 */

/**
 * @typedef {object} ParseError
 * @property {'invalid-retry' | 'unknown-field'} type
 * @property {string} field
 * @property {string} value
 * @property {string} line
 */

/**
 * @typedef {object} ParserCallbacks
 * @property {(event: SSEEvent) => void} onEvent called for every dispatched event
 * @property {(error: ParseError) => void} [onError] a line that breaks the grammar (ignored by default)
 * @property {(comment: string) => void} [onComment] a `:` comment line, e.g. a keep-alive
 * @property {(retryMs: number) => void} [onRetry] a valid `retry:` field
 */

/**
 * @typedef {object} Parser
 * @property {(chunk: string | Uint8Array) => void} feed parse the next piece of the stream
 * @property {() => void} reset forget any partial line or event (e.g. after a reconnect)
 */

/**
 * Create a parser that calls `onEvent` for each complete event.
 * @param {ParserCallbacks} callbacks
 * @returns {Parser}
 */
export function createParser(callbacks) {
  if (typeof callbacks === 'function') {
    throw new TypeError('createParser() takes an object: did you mean `createParser({ onEvent: fn })`?');
  }
  const { onEvent, onError = noop, onComment = noop, onRetry = noop } = callbacks ?? {};
  if (typeof onEvent !== 'function') {
    throw new TypeError('createParser() needs an `onEvent` callback: `createParser({ onEvent(event) { … } })`');
  }

  /** @type {TextDecoder | undefined} */
  let decoder;
  let partial = ''; // an unterminated line
  let afterCR = false; // the last chunk ended with CR: a leading LF belongs to it
  let started = false; // a BOM is only skipped at the very start
  let data = '';
  let hasData = false;
  /** @type {string | undefined} */
  let eventType;
  /** @type {string | undefined} */
  let lastId;

  /** @param {string} line */
  function processLine(line) {
    if (line === '') return dispatch();
    if (line[0] === ':') return onComment(line.slice(line[1] === ' ' ? 2 : 1));
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'data':
        data = hasData ? `${data}\n${value}` : value;
        hasData = true;
        return;
      case 'event':
        eventType = value;
        return;
      case 'id':
        if (!value.includes('\0')) lastId = value;
        return;
      case 'retry':
        if (/^\d+$/.test(value)) onRetry(Number(value));
        else onError({ type: 'invalid-retry', field, value, line });
        return;
      default:
        onError({ type: 'unknown-field', field, value, line });
    }
  }

  function dispatch() {
    if (hasData) onEvent({ data, event: eventType || undefined, id: lastId });
    data = '';
    hasData = false;
    eventType = undefined;
  }

  /** @param {string} text */
  function feedText(text) {
    if (!text) return;
    let pos = 0;
    if (afterCR && text[0] === '\n') pos = 1;
    afterCR = false;
    if (!started) {
      started = true;
      if (text.charCodeAt(pos) === 0xfeff) pos += 1;
    }
    const breaks = /\r\n?|\n/g;
    breaks.lastIndex = pos;
    for (let match = breaks.exec(text); match; match = breaks.exec(text)) {
      const line = partial + text.slice(pos, match.index);
      partial = '';
      pos = breaks.lastIndex;
      if (match[0] === '\r' && pos === text.length) afterCR = true;
      processLine(line);
    }
    partial += text.slice(pos);
  }

  return {
    feed(chunk) {
      if (typeof chunk === 'string') return feedText(chunk);
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(`parser.feed() takes a string or a Uint8Array, not ${describe(chunk)}`);
      }
      // The decoder keeps an incomplete UTF-8 sequence for the next chunk; ignoreBOM keeps
      // the BOM in the text so the check above skips it once, for bytes and text alike.
      decoder ??= new TextDecoder('utf-8', { ignoreBOM: true });
      feedText(decoder.decode(chunk, { stream: true }));
    },
    reset() {
      decoder = undefined;
      partial = '';
      afterCR = false;
      started = false;
      data = '';
      hasData = false;
      eventType = undefined;
    },
  };
}

function noop() {}

/** @param {unknown} value */
function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return `a ${typeof value}`;
}
