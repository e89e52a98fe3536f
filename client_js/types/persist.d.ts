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
    constructor(options: true | PersistOptions, url: string);
    storage: Pick<Storage, "getItem" | "setItem" | "removeItem">;
    key: string;
    replay: "all" | "missed";
    flushMs: number;
    /** @type {Map<string, PersistedSession>} in the order they were first written */
    entries: Map<string, PersistedSession>;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    _timer: ReturnType<typeof setTimeout> | undefined;
    _onPageHide: () => void;
    /** The sessions a previous page left, oldest first. @returns {PersistedSession[]} */
    list(): PersistedSession[];
    /**
     * Record a session (now), or its newer `lastSeq` (soon).
     * @param {{id: string, resumeToken: string | null, lastSeq: number}} session
     */
    track(session: {
        id: string;
        resumeToken: string | null;
        lastSeq: number;
    }): void;
    /** @param {string} id @param {string | null} token forget it only while it is this life */
    remove(id: string, token: string | null): void;
    flush(): void;
    close(): void;
    _flushSoon(): void;
    /** The stored entries that are well formed; anything else is dropped. @returns {PersistedSession[]} */
    _read(): PersistedSession[];
}
export type PersistOptions = {
    /**
     * default
     * `sessionStorage`: one tab's sessions, kept across reloads of that tab
     */
    storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
    /**
     * default `tokenmux:sessions:<the client's URL>`
     */
    key?: string;
    /**
     * what a restored session asks the server for:
     * `'all'` (default) replays from the start, so `session.text` is whole again after a
     * reload; `'missed'` only what came after the stored `lastSeq`, for pages that keep the
     * text themselves
     */
    replay?: "all" | "missed";
    /**
     * how often `lastSeq` is written at most (default 1000)
     */
    flushMs?: number;
};
export type PersistedSession = {
    id: string;
    token: string;
    lastSeq: number;
};
