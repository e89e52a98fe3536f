/**
 * A small MessagePack encoder and decoder, enough for tokenmux envelopes: nil, booleans,
 * integers (to 2^53), float64, strings, binary, arrays and maps with string keys.
 * Decoding also accepts float32, 64-bit integers and ext types (ext decodes to
 * `{type, data}`), so any valid message can be read.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Encode a value as MessagePack.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  const out = new Writer();
  write(out, value, 0);
  return out.bytes();
}

/**
 * Decode one MessagePack value that fills `bytes` exactly.
 * @param {ArrayBuffer | ArrayBufferView} bytes
 * @returns {any}
 */
export function decode(bytes) {
  const view = ArrayBuffer.isView(bytes)
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
  const reader = new Reader(view);
  const value = reader.read();
  if (reader.pos !== view.length) {
    throw new RangeError(`msgpack: ${view.length - reader.pos} extra bytes after the value`);
  }
  return value;
}

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  /** @param {number} n */
  reserve(n) {
    if (this.pos + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    bigger.set(this.buf);
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** @param {...number} values */
  u8(...values) {
    this.reserve(values.length);
    for (const v of values) this.buf[this.pos++] = v;
  }

  /** @param {number} tag @param {'setUint16'|'setUint32'|'setInt8'|'setInt16'|'setInt32'|'setFloat64'} method @param {number} size @param {number} v */
  typed(tag, method, size, v) {
    this.reserve(1 + size);
    this.buf[this.pos++] = tag;
    this.view[method](this.pos, v);
    this.pos += size;
  }

  /** @param {Uint8Array} bytes */
  raw(bytes) {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  bytes() {
    return this.buf.slice(0, this.pos);
  }
}

/** @param {Writer} out @param {unknown} value @param {number} depth */
function write(out, value, depth) {
  if (depth > 512) throw new RangeError('msgpack: nesting deeper than 512 levels');
  if (value === null || value === undefined) return out.u8(0xc0);
  if (value === false) return out.u8(0xc2);
  if (value === true) return out.u8(0xc3);
  if (typeof value === 'number') return writeNumber(out, value);
  if (typeof value === 'bigint') return writeBigInt(out, value);
  if (typeof value === 'string') return writeString(out, value);
  if (value instanceof Uint8Array) {
    writeLength(out, value.length, [0xc4, 0xc5, 0xc6]);
    return out.raw(value);
  }
  if (Array.isArray(value)) {
    writeHeader(out, value.length, 0x90, 0xdc, 0xdd);
    for (const item of value) write(out, item, depth + 1);
    return;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(/** @type {object} */ (value)).filter(([, v]) => v !== undefined);
    writeHeader(out, entries.length, 0x80, 0xde, 0xdf);
    for (const [key, item] of entries) {
      writeString(out, key);
      write(out, item, depth + 1);
    }
    return;
  }
  throw new TypeError(`msgpack: cannot encode a ${typeof value}`);
}

/** @param {Writer} out @param {number} n */
function writeNumber(out, n) {
  if (!Number.isSafeInteger(n)) return out.typed(0xcb, 'setFloat64', 8, n);
  if (n >= 0) {
    if (n < 0x80) return out.u8(n);
    if (n < 0x100) return out.u8(0xcc, n);
    if (n < 0x10000) return out.typed(0xcd, 'setUint16', 2, n);
    if (n < 0x100000000) return out.typed(0xce, 'setUint32', 4, n);
    return writeBigInt(out, BigInt(n));
  }
  if (n >= -32) return out.u8(n & 0xff);
  if (n >= -0x80) return out.typed(0xd0, 'setInt8', 1, n);
  if (n >= -0x8000) return out.typed(0xd1, 'setInt16', 2, n);
  if (n >= -0x80000000) return out.typed(0xd2, 'setInt32', 4, n);
  return writeBigInt(out, BigInt(n));
}

/** @param {Writer} out @param {bigint} n */
function writeBigInt(out, n) {
  out.reserve(9);
  out.buf[out.pos++] = n < 0n ? 0xd3 : 0xcf;
  if (n < 0n) out.view.setBigInt64(out.pos, n);
  else out.view.setBigUint64(out.pos, n);
  out.pos += 8;
}

/** @param {Writer} out @param {string} s */
function writeString(out, s) {
  const bytes = encoder.encode(s);
  if (bytes.length < 32) out.u8(0xa0 | bytes.length);
  else writeLength(out, bytes.length, [0xd9, 0xda, 0xdb]);
  out.raw(bytes);
}

/** @param {Writer} out @param {number} n @param {number[]} tags 8-, 16-, 32-bit length tags */
function writeLength(out, n, [t8, t16, t32]) {
  if (n < 0x100) out.u8(t8, n);
  else if (n < 0x10000) out.typed(t16, 'setUint16', 2, n);
  else out.typed(t32, 'setUint32', 4, n);
}

/** @param {Writer} out @param {number} n @param {number} fix @param {number} t16 @param {number} t32 */
function writeHeader(out, n, fix, t16, t32) {
  if (n < 16) out.u8(fix | n);
  else if (n < 0x10000) out.typed(t16, 'setUint16', 2, n);
  else out.typed(t32, 'setUint32', 4, n);
}

class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  /** @param {number} n */
  need(n) {
    if (this.pos + n > this.bytes.length) throw new RangeError('msgpack: truncated input');
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8() { return this.bytes[this.need(1)]; }
  u16() { return this.view.getUint16(this.need(2)); }
  u32() { return this.view.getUint32(this.need(4)); }

  /** @param {number} n */
  take(n) {
    const at = this.need(n);
    return this.bytes.subarray(at, at + n);
  }

  /** @param {number} n */
  str(n) { return decoder.decode(this.take(n)); }

  /** @param {number} n @param {number} depth */
  array(n, depth) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.read(depth + 1);
    return out;
  }

  /** @param {number} n @param {number} depth */
  map(n, depth) {
    /** @type {Record<string, any>} */
    const out = {};
    for (let i = 0; i < n; i++) {
      const key = this.read(depth + 1);
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw new TypeError('msgpack: map keys must be strings or numbers');
      }
      const value = this.read(depth + 1);
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true });
      else out[key] = value;
    }
    return out;
  }

  /** @param {number} n */
  ext(n) {
    const type = this.view.getInt8(this.need(1));
    return { type, data: this.take(n).slice() };
  }

  /** @param {bigint} n */
  int64(n) {
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  }

  /** @param {number} [depth] @returns {any} */
  read(depth = 0) {
    if (depth > 512) throw new RangeError('msgpack: nesting deeper than 512 levels');
    const tag = this.u8();
    if (tag < 0x80) return tag;
    if (tag < 0x90) return this.map(tag & 0x0f, depth);
    if (tag < 0xa0) return this.array(tag & 0x0f, depth);
    if (tag < 0xc0) return this.str(tag & 0x1f);
    if (tag >= 0xe0) return tag - 0x100;
    switch (tag) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.take(this.u8()).slice();
      case 0xc5: return this.take(this.u16()).slice();
      case 0xc6: return this.take(this.u32()).slice();
      case 0xc7: return this.ext(this.u8());
      case 0xc8: return this.ext(this.u16());
      case 0xc9: return this.ext(this.u32());
      case 0xca: return this.view.getFloat32(this.need(4));
      case 0xcb: return this.view.getFloat64(this.need(8));
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: return this.int64(this.view.getBigUint64(this.need(8)));
      case 0xd0: return this.view.getInt8(this.need(1));
      case 0xd1: return this.view.getInt16(this.need(2));
      case 0xd2: return this.view.getInt32(this.need(4));
      case 0xd3: return this.int64(this.view.getBigInt64(this.need(8)));
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16(), depth);
      case 0xdd: return this.array(this.u32(), depth);
      case 0xde: return this.map(this.u16(), depth);
      case 0xdf: return this.map(this.u32(), depth);
      default: throw new RangeError(`msgpack: invalid tag 0x${tag.toString(16)}`);
    }
  }
}
