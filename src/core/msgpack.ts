/**
 * The subset of MessagePack that Oxen's merkle nodes use (positional arrays, maps, strings, bin,
 * unsigned and signed integers, nil, booleans), written from the MessagePack specification.
 */

// ---- MessagePack writer -----------------------------------------------------------------------

/** A growable buffer with the few MessagePack forms Oxen's nodes use, each in its shortest encoding. */
export class MsgpackWriter {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private byte(b: number): this {
    this.room(1);
    this.buf[this.len++] = b;
    return this;
  }

  nil(): this {
    return this.byte(0xc0);
  }

  /** Non-negative integer (u8…u64). */
  uint(value: number | bigint): this {
    const v = BigInt(value);
    if (v < 0n) throw new Error(`uint cannot be negative: ${v}`);
    if (v < 0x80n) return this.byte(Number(v));
    if (v <= 0xffn) return this.byte(0xcc).byte(Number(v));
    this.room(9);
    if (v <= 0xffffn) {
      this.buf[this.len++] = 0xcd;
      this.len = this.buf.writeUInt16BE(Number(v), this.len);
    } else if (v <= 0xffff_ffffn) {
      this.buf[this.len++] = 0xce;
      this.len = this.buf.writeUInt32BE(Number(v), this.len);
    } else if (v <= 0xffff_ffff_ffff_ffffn) {
      this.buf[this.len++] = 0xcf;
      this.len = this.buf.writeBigUInt64BE(v, this.len);
    } else {
      throw new Error(`uint out of range: ${v}`);
    }
    return this;
  }

  /** Signed integer (i8…i64); non-negative values take the unsigned forms, as rmp does. */
  int(value: number | bigint): this {
    const v = BigInt(value);
    if (v >= 0n) return this.uint(v);
    if (v >= -32n) return this.byte(0x100 + Number(v));
    this.room(9);
    if (v >= -0x80n) {
      this.buf[this.len++] = 0xd0;
      this.len = this.buf.writeInt8(Number(v), this.len);
    } else if (v >= -0x8000n) {
      this.buf[this.len++] = 0xd1;
      this.len = this.buf.writeInt16BE(Number(v), this.len);
    } else if (v >= -0x8000_0000n) {
      this.buf[this.len++] = 0xd2;
      this.len = this.buf.writeInt32BE(Number(v), this.len);
    } else if (v >= -0x8000_0000_0000_0000n) {
      this.buf[this.len++] = 0xd3;
      this.len = this.buf.writeBigInt64BE(v, this.len);
    } else {
      throw new Error(`int out of range: ${v}`);
    }
    return this;
  }

  str(value: string): this {
    const n = Buffer.byteLength(value, 'utf8');
    this.room(5 + n);
    if (n < 32) this.buf[this.len++] = 0xa0 | n;
    else if (n <= 0xff) {
      this.buf[this.len++] = 0xd9;
      this.buf[this.len++] = n;
    } else if (n <= 0xffff) {
      this.buf[this.len++] = 0xda;
      this.len = this.buf.writeUInt16BE(n, this.len);
    } else {
      this.buf[this.len++] = 0xdb;
      this.len = this.buf.writeUInt32BE(n, this.len);
    }
    this.len += this.buf.write(value, this.len, 'utf8');
    return this;
  }

  bin(value: Uint8Array): this {
    const n = value.length;
    this.room(5 + n);
    if (n <= 0xff) {
      this.buf[this.len++] = 0xc4;
      this.buf[this.len++] = n;
    } else if (n <= 0xffff) {
      this.buf[this.len++] = 0xc5;
      this.len = this.buf.writeUInt16BE(n, this.len);
    } else {
      this.buf[this.len++] = 0xc6;
      this.len = this.buf.writeUInt32BE(n, this.len);
    }
    this.buf.set(value, this.len);
    this.len += n;
    return this;
  }

  array(length: number): this {
    return this.header(length, 0x90, 0xdc, 0xdd);
  }

  map(length: number): this {
    return this.header(length, 0x80, 0xde, 0xdf);
  }

  private header(n: number, fix: number, m16: number, m32: number): this {
    this.room(5);
    if (n < 16) this.buf[this.len++] = fix | n;
    else if (n <= 0xffff) {
      this.buf[this.len++] = m16;
      this.len = this.buf.writeUInt16BE(n, this.len);
    } else {
      this.buf[this.len++] = m32;
      this.len = this.buf.writeUInt32BE(n, this.len);
    }
    return this;
  }

  /** A string → u64 map, keys sorted so that equal maps give equal bytes (Rust's HashMap order is arbitrary). */
  countMap(counts: Record<string, number>): this {
    const keys = Object.keys(counts).sort();
    this.map(keys.length);
    for (const key of keys) this.str(key).uint(counts[key]);
    return this;
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

// ---- MessagePack reader -----------------------------------------------------------------------

/** Decoded MessagePack: maps keep their entries in order; `bin` is a Buffer; big u64/i64 are bigints. */
export type MsgpackValue = null | boolean | number | bigint | string | Buffer | MsgpackValue[] | Map<MsgpackValue, MsgpackValue>;

/** Decodes exactly one MessagePack value filling `bytes` (trailing bytes are an error). */
export function decodeMsgpack(bytes: Uint8Array): MsgpackValue {
  const reader = new MsgpackReader(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const value = reader.read();
  if (reader.at !== reader.buf.length) throw new Error(`${reader.buf.length - reader.at} bytes after the MessagePack value`);
  return value;
}

/**
 * A cursor over one buffer. Written for speed, since a listing of a large directory decodes one
 * payload per entry: methods rather than closures made per call, short ASCII strings built without
 * `toString`, and binary values returned as views of the input, not copies.
 */
export class MsgpackReader {
  at = 0;
  constructor(readonly buf: Buffer) {}

  /** Reads an array header and returns its length (for reading a struct field by field). */
  arrayHeader(): number {
    this.need(1);
    const m = this.buf[this.at++];
    if ((m & 0xf0) === 0x90) return m & 0x0f;
    if (m === 0xdc) return this.uint(2);
    if (m === 0xdd) return this.uint(4);
    throw new Error(`Expected a MessagePack array at byte ${this.at - 1}`);
  }

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw new Error(`MessagePack ends early at byte ${this.at}`);
  }

  private bytes(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  private uint(n: 1 | 2 | 4): number {
    this.need(n);
    const { buf, at } = this;
    this.at += n;
    return n === 1 ? buf[at] : n === 2 ? buf.readUInt16BE(at) : buf.readUInt32BE(at);
  }

  private str(n: number): string {
    this.need(n);
    const { buf } = this;
    const start = this.at;
    this.at += n;
    // Short ASCII strings are built here; from 13 characters on, V8 would keep the appended pieces
    // as a rope (cons strings, ~32 bytes per character) in every cached node, so longer ones decode natively.
    if (n <= 12) {
      let ascii = '';
      for (let i = start; i < start + n; i++) {
        const c = buf[i];
        if (c >= 0x80) return buf.toString('utf8', start, start + n);
        ascii += String.fromCharCode(c);
      }
      return ascii;
    }
    return buf.toString('utf8', start, start + n);
  }

  read(): MsgpackValue {
    this.need(1);
    const m = this.buf[this.at++];
    if (m < 0x80) return m;
    if (m >= 0xe0) return m - 0x100;
    if ((m & 0xf0) === 0x80) return this.map(m & 0x0f);
    if ((m & 0xf0) === 0x90) return this.array(m & 0x0f);
    if ((m & 0xe0) === 0xa0) return this.str(m & 0x1f);
    switch (m) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bytes(this.uint(1));
      case 0xc5:
        return this.bytes(this.uint(2));
      case 0xc6:
        return this.bytes(this.uint(4));
      case 0xca:
        return this.bytes(4).readFloatBE(0);
      case 0xcb:
        return this.bytes(8).readDoubleBE(0);
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return safe(this.bytes(8).readBigUInt64BE(0));
      case 0xd0:
        return this.bytes(1).readInt8(0);
      case 0xd1:
        return this.bytes(2).readInt16BE(0);
      case 0xd2:
        return this.bytes(4).readInt32BE(0);
      case 0xd3:
        return safe(this.bytes(8).readBigInt64BE(0));
      case 0xd9:
        return this.str(this.uint(1));
      case 0xda:
        return this.str(this.uint(2));
      case 0xdb:
        return this.str(this.uint(4));
      case 0xdc:
        return this.array(this.uint(2));
      case 0xdd:
        return this.array(this.uint(4));
      case 0xde:
        return this.map(this.uint(2));
      case 0xdf:
        return this.map(this.uint(4));
      default:
        throw new Error(`Unsupported MessagePack marker 0x${m.toString(16)} at byte ${this.at - 1}`);
    }
  }

  private array(n: number): MsgpackValue[] {
    const out: MsgpackValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.read();
    return out;
  }

  private map(n: number): Map<MsgpackValue, MsgpackValue> {
    const out = new Map<MsgpackValue, MsgpackValue>();
    for (let i = 0; i < n; i++) {
      const key = this.read();
      out.set(key, this.read());
    }
    return out;
  }
}

/** A 64-bit integer as a number when it fits, else as a bigint. */
const safe = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
