import { hashBuffer } from './hash.js';
import { decodeNodeRecord, idBytesBE, idFromBytesBE, type NodeRecord } from './oxen-nodes.js';

/**
 * How node records are stored (what goes on the wire stays Oxen's `node` and `children` blobs).
 *
 * A directory's or vnode's record holds every child's payload, so one changed child would store a
 * whole new record (a vnode of 200 entries and a directory of 512 vnodes are about 35 KB each). A
 * record with many children is therefore stored as a small head plus its children cut into chunks,
 * each stored under the hash of its bytes and shared by every version that holds it. The cuts are
 * content-defined: after a child whose key (an entry's name; a vnode row's position) hashes to a
 * boundary, as in prolly trees, so a change rewrites only the chunk around it. Reads reassemble
 * Oxen's blobs byte for byte.
 *
 * Plain form (every record before chunking, and small ones still): u32 LE length of `node`, `node`, `children`.
 * Chunked form: u32 LE CHUNKED_MARK, u32 LE length of the head (the `node` blob up to its child table:
 * type, parent, payload), the head, u32 LE chunk count, each chunk's hash (16 bytes, big-endian).
 * A chunk: per child, its type code and id as in the child table (17 bytes), u32 LE payload length, payload.
 */

/** Records with fewer children are stored plain: chunking them saves less than a chunk list costs. */
export const MIN_CHUNKED_CHILDREN = 32;
/** One name in this many ends a chunk (entries of about 150 bytes: chunks of about 1.2 KB). */
const NAME_BOUNDARY = 8;
/** Vnode rows (58 bytes each) are cut every this many positions: positions only move when the vnode count changes. */
const POSITION_RUN = 16;
/** A run of names that never hits a boundary is cut here anyway. */
const MAX_RUN = 4 * NAME_BOUNDARY;
/** A length no plain record can have (the `node` blob would be 4 GiB). */
const CHUNKED_MARK = 0xffffffff;
const CHILD_ROW = 33;
/** Chunk ids are not hex, so no node id (a client's included) can take one. */
const CHUNK_PREFIX = 'k';

/** A stored record names a chunk that is not stored. */
export class MissingChunk extends Error {
  constructor(readonly chunkId: string) {
    super(`chunk ${chunkId} of the record is not stored`);
  }
}

/** Stored chunks by id (undefined: not at hand). */
export type ChunkLookup = (id: string) => Uint8Array | undefined;

export const noChunks: ChunkLookup = () => undefined;

/** A record in plain form. */
export function frameRecord(record: Pick<NodeRecord, 'node' | 'children'>): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(record.node.length, 0);
  return Buffer.concat([head, record.node, record.children]);
}

/** The `node` and `children` blobs of a record in plain form. */
export function unframeRecord(bytes: Uint8Array): { node: Buffer; children: Buffer } {
  const buf = asBuffer(bytes);
  if (buf.length < 4) throw new Error('stored node shorter than its frame');
  const length = buf.readUInt32LE(0);
  if (length === CHUNKED_MARK) throw new Error('stored node is chunked: read it with its chunks');
  if (4 + length > buf.length) throw new Error('stored node frame is longer than the record');
  return { node: buf.subarray(4, 4 + length), children: buf.subarray(4 + length) };
}

/**
 * The rows that store `record`: its head (under its id) and those of its chunks not in `stored`, or
 * the record in plain form. `keys` are the children's names, or 'position' for vnode rows.
 */
export function storedRows(record: NodeRecord, keys: readonly string[] | 'position', stored?: ReadonlySet<string>): Array<[string, Uint8Array]> {
  const count = (record.node.length - 21 - record.node.readUInt32LE(17)) / CHILD_ROW;
  if (count < MIN_CHUNKED_CHILDREN) return [[record.id, frameRecord(record)]];
  const rows: Array<[string, Uint8Array]> = [];
  const chunkIds: string[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const last = i === count - 1 || i + 1 - start >= MAX_RUN || (keys === 'position' ? (i + 1) % POSITION_RUN === 0 : mixKey(keys[i]) % NAME_BOUNDARY === 0);
    if (!last) continue;
    const chunk = encodeChunk(record.node, count, start, i + 1, record.children);
    const id = CHUNK_PREFIX + hashBuffer(chunk);
    chunkIds.push(id);
    if (!stored?.has(id)) rows.push([id, chunk]);
    start = i + 1;
  }
  const headLength = record.node.length - CHILD_ROW * count;
  const head = Buffer.alloc(12 + headLength + 16 * chunkIds.length);
  let at = head.writeUInt32LE(CHUNKED_MARK, 0);
  at = head.writeUInt32LE(headLength, at);
  at += record.node.copy(head, at, 0, headLength);
  at = head.writeUInt32LE(chunkIds.length, at);
  for (const id of chunkIds) at += idBytesBE(id.slice(CHUNK_PREFIX.length)).copy(head, at);
  rows.push([record.id, head]);
  return rows;
}

/**
 * The rows that store a record as a client sent it: chunked (`keys` as for storedRows) when its blobs
 * are what reassembly gives back (payloads in row order, end to end), else plain.
 */
export function storedRowsOfBlobs(id: string, node: Buffer, children: Buffer, keys: readonly string[] | 'position'): Array<[string, Uint8Array]> {
  const decoded = decodeNodeRecord(node, children);
  const record: NodeRecord = { id, type: decoded.type, node, children };
  let offset = 0;
  for (const child of decoded.children) {
    if (child.offset !== offset) return [[id, frameRecord(record)]];
    offset += child.payload.length;
  }
  if (offset !== children.length || decoded.children.length < MIN_CHUNKED_CHILDREN) return [[id, frameRecord(record)]];
  return storedRows(record, keys);
}

/** The chunks a stored record lists (none for a plain one). */
export function storedChunkIds(bytes: Uint8Array): string[] {
  const buf = asBuffer(bytes);
  if (buf.length < 8 || buf.readUInt32LE(0) !== CHUNKED_MARK) return [];
  const { chunkIds } = readHead(buf);
  return chunkIds;
}

/** Oxen's `node` and `children` blobs of a stored record; a chunked one's chunks come from `chunk`, checked against their ids. */
export function storedBlobs(bytes: Uint8Array, chunk: ChunkLookup): { node: Buffer; children: Buffer } {
  const buf = asBuffer(bytes);
  if (buf.length < 8 || buf.readUInt32LE(0) !== CHUNKED_MARK) return unframeRecord(buf);
  const { head, chunkIds } = readHead(buf);
  // Two passes: check each chunk and size the blobs, then copy straight into them.
  const chunks = chunkIds.map((id) => {
    const found = chunk(id);
    if (found === undefined) throw new MissingChunk(id);
    const bytes = asBuffer(found);
    if (CHUNK_PREFIX + hashBuffer(bytes) !== id) throw new Error(`chunk ${id} does not match its hash`);
    return bytes;
  });
  let rows = 0;
  let payloadBytes = 0;
  chunks.forEach((bytes, k) => {
    for (let at = 0; at < bytes.length; rows++) {
      if (at + 21 > bytes.length) throw new Error(`chunk ${chunkIds[k]} ends inside a child`);
      const length = bytes.readUInt32LE(at + 17);
      if (at + 21 + length > bytes.length) throw new Error(`chunk ${chunkIds[k]} ends inside a payload`);
      payloadBytes += length;
      at += 21 + length;
    }
  });
  const node = Buffer.allocUnsafe(head.length + CHILD_ROW * rows);
  const children = Buffer.allocUnsafe(payloadBytes);
  let row = head.copy(node, 0);
  let offset = 0;
  for (const bytes of chunks) {
    for (let at = 0; at < bytes.length; ) {
      const length = bytes.readUInt32LE(at + 17);
      bytes.copy(node, row, at, at + 17);
      // u64 LE offset and length, as two u32 halves (no BigInt).
      node.writeUInt32LE(offset % 2 ** 32, row + 17);
      node.writeUInt32LE(Math.floor(offset / 2 ** 32), row + 21);
      node.writeUInt32LE(length, row + 25);
      node.writeUInt32LE(0, row + 29);
      bytes.copy(children, offset, at + 21, at + 21 + length);
      row += CHILD_ROW;
      offset += length;
      at += 21 + length;
    }
  }
  return { node, children };
}

function readHead(buf: Buffer): { head: Buffer; chunkIds: string[] } {
  const headLength = buf.readUInt32LE(4);
  if (12 + headLength > buf.length) throw new Error('chunked record shorter than its head');
  const count = buf.readUInt32LE(8 + headLength);
  const listAt = 12 + headLength;
  if (listAt + 16 * count !== buf.length) throw new Error('chunked record has a malformed chunk list');
  const chunkIds = Array.from({ length: count }, (_, i) => CHUNK_PREFIX + idFromBytesBE(buf.subarray(listAt + 16 * i, listAt + 16 * (i + 1))));
  return { head: buf.subarray(8, 8 + headLength), chunkIds };
}

/** Children [from, to) of a record: each one's child-table type and id, then its payload. */
function encodeChunk(node: Buffer, count: number, from: number, to: number, children: Buffer): Buffer {
  const tableAt = node.length - CHILD_ROW * count;
  const parts: Buffer[] = [];
  for (let i = from; i < to; i++) {
    const row = tableAt + CHILD_ROW * i;
    const offset = Number(node.readBigUInt64LE(row + 17));
    const length = Number(node.readBigUInt64LE(row + 25));
    const head = Buffer.alloc(21);
    node.copy(head, 0, row, row + 17);
    head.writeUInt32LE(length, 17);
    parts.push(head, children.subarray(offset, offset + length));
  }
  return Buffer.concat(parts);
}

/**
 * FNV-1a of a key's UTF-16 units with murmur3's finalizer: cheap, stable, well spread in its low bits.
 * `salt` gives an unrelated hash for each level of a tree (name-index.ts); salt 0 is the chunks'.
 */
export function mixKey(key: string, salt = 0): number {
  let h = 0x811c9dc5 ^ Math.imul(salt, 0x9e3779b9);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** `bytes` as a Buffer over the same memory. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
