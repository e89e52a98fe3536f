/**
 * The sessions a TokenmuxClient keeps in `sessionStorage` (or any Storage) so that a page
 * reload can resume them: one JSON array of `{id, token, lastSeq}` under one key.
 *
 * A session is written when its `resume_token` is known and removed when it ended or its
 * resume was refused. `lastSeq` is written at most every `flushMs` and on `pagehide`:
 * storage writes are synchronous, and streamed events many.
 *
 * @module
 */

import { SESSION_ID_PATTERN } from './protocol.js';

/**
 * @typedef {object} PersistOptions
 * @property {Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>} [storage] default
 *   `sessionStorage`: one tab's sessions, kept across reloads of that tab
 * @property {string} [key] default `tokenmux:sessions:<the client's URL>`
 * @property {'all' | 'missed'} [replay] what a restored session asks the server for:
 *   `'all'` (default) replays from the start, so `session.text` is whole again after a
 *   reload; `'missed'` only what came after the stored `lastSeq`, for pages that keep the
 *   text themselves
 * @property {number} [flushMs] how often `lastSeq` is written at most (default 1000)
 */

/** @typedef {{id: string, token: string, lastSeq: number}} PersistedSession */

export class SessionStorageStore {
  /**
   * @param {true | PersistOptions} options
   * @param {string} url the client's URL, for the default key
   */
  constructor(options, url) {
    const settings = options === true ? {} : options;
    if (typeof settings !== 'object' || settings === null) {
      throw new TypeError('persist: give true or { storage, key, replay }');
    }
    this.storage = settings.storage ?? defaultStorage();
    this.key = settings.key ?? `tokenmux:sessions:${url}`;
    this.replay = settings.replay ?? 'all';
    if (this.replay !== 'all' && this.replay !== 'missed') {
      throw new TypeError(`persist.replay must be 'all' or 'missed', got ${JSON.stringify(this.replay)}`);
    }
    this.flushMs = settings.flushMs ?? 1000;
    /** @type {Map<string, PersistedSession>} in the order they were first written */
    this.entries = new Map(this._read().map((entry) => [entry.id, entry]));
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._timer = undefined;
    this._onPageHide = () => this.flush();
    globalThis.addEventListener?.('pagehide', this._onPageHide);
  }

  /** The sessions a previous page left, oldest first. @returns {PersistedSession[]} */
  list() {
    return [...this.entries.values()].map((entry) => ({ ...entry }));
  }

  /**
   * Record a session (now), or its newer `lastSeq` (soon).
   * @param {{id: string, resumeToken: string | null, lastSeq: number}} session
   */
  track(session) {
    if (session.resumeToken === null) return;
    const entry = this.entries.get(session.id);
    if (entry && entry.token === session.resumeToken) {
      entry.lastSeq = session.lastSeq;
      this._flushSoon();
      return;
    }
    this.entries.set(session.id, { id: session.id, token: session.resumeToken, lastSeq: session.lastSeq });
    this.flush();
  }

  /** @param {string} id @param {string | null} token forget it only while it is this life */
  remove(id, token) {
    const entry = this.entries.get(id);
    if (!entry || (token !== null && entry.token !== token)) return;
    this.entries.delete(id);
    this.flush();
  }

  flush() {
    clearTimeout(this._timer);
    this._timer = undefined;
    try {
      if (this.entries.size) this.storage.setItem(this.key, JSON.stringify([...this.entries.values()]));
      else this.storage.removeItem(this.key);
    } catch {
      // A full or disabled storage loses persistence, not the session itself.
    }
  }

  close() {
    this.flush();
    globalThis.removeEventListener?.('pagehide', this._onPageHide);
  }

  _flushSoon() {
    if (this._timer !== undefined) return;
    this._timer = setTimeout(() => this.flush(), this.flushMs);
    /** @type {any} */ (this._timer).unref?.(); // Node: a pending write never keeps the process up
  }

  /** The stored entries that are well formed; anything else is dropped. @returns {PersistedSession[]} */
  _read() {
    let stored;
    try {
      stored = JSON.parse(this.storage.getItem(this.key) ?? '[]');
    } catch {
      stored = [];
    }
    if (!Array.isArray(stored)) return [];
    return stored.filter(
      (entry) => typeof entry?.id === 'string' && SESSION_ID_PATTERN.test(entry.id)
        && typeof entry.token === 'string' && entry.token !== ''
        && Number.isInteger(entry.lastSeq) && entry.lastSeq >= -1,
    );
  }
}

function defaultStorage() {
  let storage;
  try {
    storage = globalThis.sessionStorage;
  } catch {
    storage = undefined; // a sandboxed frame throws on access
  }
  if (!storage) {
    throw new TypeError('persist: no sessionStorage here; pass one, e.g. { persist: { storage } }');
  }
  return storage;
}
