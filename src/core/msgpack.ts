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
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw new Error(`MessagePack ends early at byte ${at}`);
  };
  const int64 = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const take = (n: number) => {
    need(n);
    const out = buf.subarray(at, at + n);
    at += n;
    return out;
  };
  const read = (): MsgpackValue => {
    need(1);
    const m = buf[at++];
    if (m < 0x80) return m;
    if (m >= 0xe0) return m - 0x100;
    if ((m & 0xf0) === 0x80) return readMap(m & 0x0f);
    if ((m & 0xf0) === 0x90) return readArray(m & 0x0f);
    if ((m & 0xe0) === 0xa0) return take(m & 0x1f).toString('utf8');
    switch (m) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return Buffer.from(take(take(1).readUInt8(0)));
      case 0xc5:
        return Buffer.from(take(take(2).readUInt16BE(0)));
      case 0xc6:
        return Buffer.from(take(take(4).readUInt32BE(0)));
      case 0xca:
        return take(4).readFloatBE(0);
      case 0xcb:
        return take(8).readDoubleBE(0);
      case 0xcc:
        return take(1).readUInt8(0);
      case 0xcd:
        return take(2).readUInt16BE(0);
      case 0xce:
        return take(4).readUInt32BE(0);
      case 0xcf:
        return int64(take(8).readBigUInt64BE(0));
      case 0xd0:
        return take(1).readInt8(0);
      case 0xd1:
        return take(2).readInt16BE(0);
      case 0xd2:
        return take(4).readInt32BE(0);
      case 0xd3:
        return int64(take(8).readBigInt64BE(0));
      case 0xd9:
        return take(take(1).readUInt8(0)).toString('utf8');
      case 0xda:
        return take(take(2).readUInt16BE(0)).toString('utf8');
      case 0xdb:
        return take(take(4).readUInt32BE(0)).toString('utf8');
      case 0xdc:
        return readArray(take(2).readUInt16BE(0));
      case 0xdd:
        return readArray(take(4).readUInt32BE(0));
      case 0xde:
        return readMap(take(2).readUInt16BE(0));
      case 0xdf:
        return readMap(take(4).readUInt32BE(0));
      default:
        throw new Error(`Unsupported MessagePack marker 0x${m.toString(16)} at byte ${at - 1}`);
    }
  };
  const readArray = (n: number): MsgpackValue[] => {
    const out: MsgpackValue[] = [];
    for (let i = 0; i < n; i++) out.push(read());
    return out;
  };
  const readMap = (n: number): Map<MsgpackValue, MsgpackValue> => {
    const out = new Map<MsgpackValue, MsgpackValue>();
    for (let i = 0; i < n; i++) {
      const key = read();
      out.set(key, read());
    }
    return out;
  };
  const value = read();
  if (at !== buf.length) throw new Error(`${buf.length - at} bytes after the MessagePack value`);
  return value;
}
