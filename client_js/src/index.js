export { TokenmuxError } from './errors.js';
export { PROTOCOL_VERSION, SUBPROTOCOLS, EventType, jsonCodec, loadCodec, newSessionId } from './protocol.js';
export { createParser } from './sse-parser.js';
export { streamSSE } from './sse-client.js';
export { Session } from './session.js';
export { TokenmuxClient } from './ws-client.js';
export { UniversalStreamClient } from './universal.js';
export { Typewriter } from './typewriter.js';
export { createStreamState, reduceStreamState, resumeStream, runStream } from './stream-state.js';

/** @typedef {import('./rich.js').ToolCall} ToolCall */
/** @typedef {import('./rich.js').Source} Source */
/** @typedef {import('./session.js').SessionCallbacks} SessionCallbacks */
