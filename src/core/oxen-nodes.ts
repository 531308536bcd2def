import { hashBuffer, normalizeHash } from './hash.js';
import { decodeMsgpack, MsgpackReader, MsgpackWriter, type MsgpackValue } from './msgpack.js';

/**
 * Oxen's merkle nodes as bytes (reference: oxen-internals §1.3–1.7), written from the format
 * description; no Oxen code is used.
 *
 * - A node payload is MessagePack with structs as positional arrays, wrapped in the version
 *   envelope: `[ {"V0_25_0": [field, …]} ]`, so every payload starts `91 81 a7 'V0_25_0'`.
 *   Ids (u128) are `bin 16` big-endian; unit enums are their variant name; `None` is nil.
 * - A node record is two blobs: `node` = type byte, parent id (16 bytes little-endian), u32 LE
 *   payload length, payload, then one 33-byte row per child (type, id LE, u64 LE offset and
 *   length into `children`); `children` = the children's payloads concatenated.
 *
 * This module is pure so that the same encoder serves the on-the-fly translation of Yoke trees
 * today and Oxen-format storage later.
 */

export type OxenNodeType = 'Commit' | 'Dir' | 'VNode' | 'File';
export type OxenDataType = 'dir' | 'text' | 'image' | 'video' | 'audio' | 'tabular' | 'binary';

/** The stable on-disk type codes (they never change in Oxen). */
export const NODE_TYPE_CODE: Readonly<Record<OxenNodeType, number>> = { Commit: 0, Dir: 1, VNode: 2, File: 3 };
const TYPE_BY_CODE: readonly OxenNodeType[] = ['Commit', 'Dir', 'VNode', 'File'];

export const NODE_ENVELOPE = 'V0_25_0';
/** The bytes every current payload starts with. */
export const PAYLOAD_PREFIX = Buffer.from([0x91, 0x81, 0xa7, ...Buffer.from(NODE_ENVELOPE, 'latin1')]);
/** Parent id to write when a node has none. */
export const NO_PARENT = '0';

export interface OxenCommitNode {
  type: 'Commit';
  hash: string;
  parentIds: string[];
  message: string;
  author: string;
  email: string;
  /** UTC instant; Oxen keeps nanoseconds, Yoke has milliseconds. */
  timestamp: { seconds: number; nanoseconds: number };
}

export interface OxenDirNode {
  type: 'Dir';
  /** Base name; the root directory is ''. */
  name: string;
  hash: string;
  /** Direct children (files and directories). */
  numEntries: number;
  /** Bytes of all files below, recursively. */
  numBytes: number;
  lastCommitId: string;
  lastModifiedSeconds: number;
  lastModifiedNanoseconds: number;
  /** Files below, recursively, by data type. */
  dataTypeCounts: Record<string, number>;
  dataTypeSizes: Record<string, number>;
}

export interface OxenVNode {
  type: 'VNode';
  hash: string;
  numEntries: number;
}

export interface OxenFileNode {
  type: 'File';
  name: string;
  metadataHash: string | null;
  /** Content hash: the id of a file node and the name of its blob. */
  hash: string;
  /** Equals `hash` when there is no metadata hash. */
  combinedHash: string;
  numBytes: number;
  lastCommitId: string;
  lastModifiedSeconds: number;
  lastModifiedNanoseconds: number;
  dataType: OxenDataType;
  /** Oxen's extracted metadata; Yoke extracts none, so it is always written as nil. */
  metadata: null;
  mimeType: string;
  extension: string;
  chunkHashes: string[];
  chunkType: 'SingleFile' | 'Chunked';
  storageBackend: 'Disk' | 'S3';
}

export type OxenNode = OxenCommitNode | OxenDirNode | OxenVNode | OxenFileNode;

// ---- ids ------------------------------------------------------------------------------------

function hashDigits(hash: string): string {
  const canonical = normalizeHash(hash);
  if (canonical === null) throw new Error(`Not a 128-bit hex id: ${JSON.stringify(hash)}`);
  return canonical.padStart(32, '0');
}

/**
 * The commit a member of a dir_hashes tarball belongs to (`history/{commit}/dir_hashes/…`, or the
 * legacy `dirs/`), or null when the member is anything else (a path climbing out included).
 */
export function dirHashesMemberCommit(name: string): string | null {
  const match = /^history\/([0-9a-fA-F]{1,32})(?:\/(?:dir_hashes|dirs)(?:\/[^/]+)*)?\/?$/.exec(name);
  return match && !name.split('/').includes('..') ? normalizeHash(match[1]) : null;
}

/** A u128 id as 16 big-endian bytes (inside msgpack payloads). */
export function idBytesBE(hash: string): Buffer {
  return Buffer.from(hashDigits(hash), 'hex');
}

/** A u128 id as 16 little-endian bytes (in record headers and child rows). */
export function idBytesLE(hash: string): Buffer {
  return idBytesBE(hash).reverse();
}

/** Oxen's display form: lower-case hex without leading zeros ('0' for zero). */
export function idFromBytesBE(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new Error(`An id has 16 bytes, got ${bytes.length}`);
  // One flat string from toString('hex'). Appending 16 two-digit pieces built a rope of 15 cons
  // strings, about 500 bytes per id instead of about 50, which every cached node kept for each
  // entry's hash and last commit (6 bytes of heap per stored byte under load); it was slower too.
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  let i = 0;
  while (i < 31 && hex.charCodeAt(i) === 48) i++;
  return i === 0 ? hex : hex.slice(i);
}

export function idFromBytesLE(bytes: Uint8Array): string {
  return idFromBytesBE(Buffer.from(bytes).reverse());
}

/** Where a node's `node` and `children` files live in Oxen's store and in node tarballs. */
export function nodeDirPath(hash: string): string {
  const hex = normalizeHash(hash);
  if (hex === null) throw new Error(`Not a 128-bit hex id: ${JSON.stringify(hash)}`);
  return `tree/nodes/${hex.slice(0, 3)}/${hex.slice(3)}`;
}

/** Oxen's OffsetDateTime instant from an ISO-8601 UTC string such as Yoke's commit timestamps. */
export function instantFromIso(iso: string): { seconds: number; nanoseconds: number } {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`Not a timestamp: ${JSON.stringify(iso)}`);
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanoseconds: (ms - seconds * 1000) * 1_000_000 };
}

// ---- vnode partition ------------------------------------------------------------------------

/**
 * The vnode (0-based, in the directory's child order) that holds the entry at `path` (full path from
 * the repository root): xxh3-128 of the UTF-8 path modulo the vnode count, which is where Oxen's
 * readers look for it.
 */
export function oxenVnodeIndex(path: string, count: number): number {
  if (count <= 1) return 0;
  return Number(BigInt(`0x${hashBuffer(path)}`) % BigInt(count));
}

/**
 * Oxen's order of entries inside a vnode: by name as UTF-8 bytes, which is code point order.
 * JavaScript's `<` compares UTF-16 code units, which disagrees only where a surrogate (a code
 * point above U+FFFF) meets a unit from U+E000 up; this handles that case without encoding.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xHigh = x >= 0xd800 && x <= 0xdfff;
    const yHigh = y >= 0xd800 && y <= 0xdfff;
    if (xHigh !== yHigh) return xHigh ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

// ---- node payloads ----------------------------------------------------------------------------

/** A node's MessagePack payload, in the `V0_25_0` envelope, fields in Oxen's declaration order. */
export function encodeOxenNode(node: OxenNode): Buffer {
  const w = new MsgpackWriter().array(1).map(1).str(NODE_ENVELOPE);
  switch (node.type) {
    case 'Commit': {
      const t = utcParts(node.timestamp);
      w.array(7).bin(idBytesBE(node.hash)).str('Commit').array(node.parentIds.length);
      for (const parent of node.parentIds) w.bin(idBytesBE(parent));
      w.str(node.message).str(node.author).str(node.email);
      // time's compact OffsetDateTime: (year, ordinal day, hour, minute, second, nanosecond, offset h/m/s).
      w.array(9).int(t.year).uint(t.ordinal).uint(t.hour).uint(t.minute).uint(t.second).uint(t.nanosecond).int(0).int(0).int(0);
      break;
    }
    case 'Dir':
      w.array(10).str('Dir').str(node.name).bin(idBytesBE(node.hash)).uint(node.numEntries).uint(node.numBytes).bin(idBytesBE(node.lastCommitId));
      w.int(node.lastModifiedSeconds).uint(node.lastModifiedNanoseconds).countMap(node.dataTypeCounts).countMap(node.dataTypeSizes);
      break;
    case 'VNode':
      w.array(3).bin(idBytesBE(node.hash)).str('VNode').uint(node.numEntries);
      break;
    case 'File':
      w.array(16).str('File').str(node.name);
      if (node.metadataHash === null) w.nil();
      else w.bin(idBytesBE(node.metadataHash));
      w.bin(idBytesBE(node.hash)).bin(idBytesBE(node.combinedHash)).uint(node.numBytes).bin(idBytesBE(node.lastCommitId));
      w.int(node.lastModifiedSeconds).uint(node.lastModifiedNanoseconds).str(node.dataType).nil();
      w.str(node.mimeType).str(node.extension).array(node.chunkHashes.length);
      for (const chunk of node.chunkHashes) w.bin(idBytesBE(chunk));
      w.str(node.chunkType).str(node.storageBackend);
      break;
  }
  return w.bytes();
}

function utcParts({ seconds, nanoseconds }: { seconds: number; nanoseconds: number }) {
  const d = new Date(seconds * 1000);
  const ordinal = Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  return {
    year: d.getUTCFullYear(),
    ordinal,
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanosecond: nanoseconds,
  };
}

const asArray = (v: MsgpackValue, what: string, length: number): MsgpackValue[] => {
  if (!Array.isArray(v) || v.length !== length) throw new Error(`${what}: expected an array of ${length}`);
  return v;
};
const asStr = (v: MsgpackValue, what: string): string => {
  if (typeof v !== 'string') throw new Error(`${what}: expected a string`);
  return v;
};
const asNum = (v: MsgpackValue, what: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${what}: expected an integer`);
  return v;
};
const asId = (v: MsgpackValue, what: string): string => {
  if (!Buffer.isBuffer(v) || v.length !== 16) throw new Error(`${what}: expected a 16-byte id`);
  return idFromBytesBE(v);
};
const DATA_TYPES: ReadonlySet<string> = new Set<OxenDataType>(['dir', 'text', 'image', 'video', 'audio', 'tabular', 'binary']);
const asDataType = (v: MsgpackValue, what: string): OxenDataType => {
  const type = asStr(v, what);
  if (!DATA_TYPES.has(type)) throw new Error(`${what}: unknown data type ${JSON.stringify(type)}`);
  return type as OxenDataType;
};
const asCounts = (v: MsgpackValue, what: string): Record<string, number> => {
  if (!(v instanceof Map)) throw new Error(`${what}: expected a map`);
  const out: Record<string, number> = {};
  for (const [k, n] of v) {
    const count = asNum(n, what);
    if (count < 0) throw new Error(`${what}: negative`);
    out[asDataType(k, what)] = count;
  }
  return out;
};

/** What a listing needs of a file payload inside a vnode. */
export interface FileSummary {
  name: string;
  hash: string;
  numBytes: number;
  lastCommitId: string;
  dataType: string;
}

/**
 * The leading fields of a File payload, read without decoding the rest: a vnode of a large
 * directory holds thousands of them and a listing reads every one. Payloads are checked in full
 * (`decodeOxenNode`) when they arrive from a client; this trusts the fields it skips.
 */
export function readFileSummary(payload: Buffer): FileSummary {
  if (payload.length < PAYLOAD_PREFIX.length || payload.compare(PAYLOAD_PREFIX, 0, PAYLOAD_PREFIX.length, 0, PAYLOAD_PREFIX.length) !== 0) {
    throw new Error(`payload: expected the ${NODE_ENVELOPE} envelope`);
  }
  const r = new MsgpackReader(payload);
  r.at = PAYLOAD_PREFIX.length;
  if (r.arrayHeader() !== 16) throw new Error('file: unexpected number of fields');
  if (r.read() !== 'File') throw new Error('file: wrong type tag');
  const name = asStr(r.read(), 'file.name');
  r.read(); // metadata hash
  const hash = asId(r.read(), 'file.hash');
  r.read(); // combined hash
  const numBytes = asNum(r.read(), 'file.num_bytes');
  const lastCommitId = asId(r.read(), 'file.last_commit_id');
  r.read();
  r.read(); // modification time
  return { name, hash, numBytes, lastCommitId, dataType: asStr(r.read(), 'file.data_type') };
}

/** Reads a current-format (`V0_25_0`) payload back; the inverse of `encodeOxenNode`. */
export function decodeOxenNode(type: OxenNodeType, payload: Uint8Array): OxenNode {
  const outer = asArray(decodeMsgpack(payload), 'payload', 1)[0];
  if (!(outer instanceof Map) || outer.size !== 1 || !outer.has(NODE_ENVELOPE)) throw new Error(`payload: expected the ${NODE_ENVELOPE} envelope`);
  const body = outer.get(NODE_ENVELOPE)!;
  switch (type) {
    case 'Commit': {
      const f = asArray(body, 'commit', 7);
      const parents = f[2];
      if (!Array.isArray(parents)) throw new Error('commit.parent_ids: expected an array');
      const t = asArray(f[6], 'commit.timestamp', 9).map((x) => asNum(x, 'commit.timestamp'));
      const [year, ordinal, hour, minute, second, nanosecond, oh, om, os] = t;
      const inRange = year >= 1 && year <= 9999 && ordinal >= 1 && ordinal <= 366 && hour < 24 && minute < 60 && second < 61 && nanosecond >= 0 && nanosecond < 1e9;
      if (!inRange || Math.abs(oh) > 25 || Math.abs(om) > 59 || Math.abs(os) > 59 || [hour, minute, second].some((x) => x < 0)) throw new Error('commit.timestamp: out of range');
      const ms = Date.UTC(year, 0, ordinal, hour, minute, second) - ((oh * 60 + om) * 60 + os) * 1000;
      return {
        type,
        hash: asId(f[0], 'commit.hash'),
        parentIds: parents.map((p) => asId(p, 'commit.parent_ids')),
        message: asStr(f[3], 'commit.message'),
        author: asStr(f[4], 'commit.author'),
        email: asStr(f[5], 'commit.email'),
        timestamp: { seconds: ms / 1000, nanoseconds: nanosecond },
      };
    }
    case 'Dir': {
      const f = asArray(body, 'dir', 10);
      return {
        type,
        name: asStr(f[1], 'dir.name'),
        hash: asId(f[2], 'dir.hash'),
        numEntries: asNum(f[3], 'dir.num_entries'),
        numBytes: asNum(f[4], 'dir.num_bytes'),
        lastCommitId: asId(f[5], 'dir.last_commit_id'),
        lastModifiedSeconds: asNum(f[6], 'dir.last_modified_seconds'),
        lastModifiedNanoseconds: asNum(f[7], 'dir.last_modified_nanoseconds'),
        dataTypeCounts: asCounts(f[8], 'dir.data_type_counts'),
        dataTypeSizes: asCounts(f[9], 'dir.data_type_sizes'),
      };
    }
    case 'VNode': {
      const f = asArray(body, 'vnode', 3);
      return { type, hash: asId(f[0], 'vnode.hash'), numEntries: asNum(f[2], 'vnode.num_entries') };
    }
    case 'File': {
      const f = asArray(body, 'file', 16);
      const chunks = f[13];
      if (!Array.isArray(chunks)) throw new Error('file.chunk_hashes: expected an array');
      return {
        type,
        name: asStr(f[1], 'file.name'),
        metadataHash: f[2] === null ? null : asId(f[2], 'file.metadata_hash'),
        hash: asId(f[3], 'file.hash'),
        combinedHash: asId(f[4], 'file.combined_hash'),
        numBytes: asNum(f[5], 'file.num_bytes'),
        lastCommitId: asId(f[6], 'file.last_commit_id'),
        lastModifiedSeconds: asNum(f[7], 'file.last_modified_seconds'),
        lastModifiedNanoseconds: asNum(f[8], 'file.last_modified_nanoseconds'),
        dataType: asDataType(f[9], 'file.data_type'),
        metadata: null,
        mimeType: asStr(f[11], 'file.mime_type'),
        extension: asStr(f[12], 'file.extension'),
        chunkHashes: chunks.map((c) => asId(c, 'file.chunk_hashes')),
        chunkType: asStr(f[14], 'file.chunk_type') as OxenFileNode['chunkType'],
        storageBackend: asStr(f[15], 'file.storage_backend') as OxenFileNode['storageBackend'],
      };
    }
  }
}

// ---- node records ---------------------------------------------------------------------------

/** One node as Oxen's store keeps it: its own payload plus its children's, ready to be written out. */
export interface NodeRecord {
  id: string;
  type: OxenNodeType;
  /** The `node` blob. */
  node: Buffer;
  /** The `children` blob. */
  children: Buffer;
}

export interface RecordChild {
  type: OxenNodeType;
  /** The child's id (for a file, its content hash). */
  hash: string;
  payload: Buffer;
}

const CHILD_ROW = 33;

/** Builds the `node` and `children` blobs of a node from its payload and its children's payloads (in order). */
export function encodeNodeRecord(
  id: string,
  type: OxenNodeType,
  parentId: string,
  payload: Buffer,
  children: readonly RecordChild[],
): NodeRecord {
  const node = Buffer.alloc(1 + 16 + 4 + payload.length + CHILD_ROW * children.length);
  let at = node.writeUInt8(NODE_TYPE_CODE[type], 0);
  at += idBytesLE(parentId).copy(node, at);
  at = node.writeUInt32LE(payload.length, at);
  at += payload.copy(node, at);
  let offset = 0;
  for (const child of children) {
    at = node.writeUInt8(NODE_TYPE_CODE[child.type], at);
    at += idBytesLE(child.hash).copy(node, at);
    at = node.writeBigUInt64LE(BigInt(offset), at);
    at = node.writeBigUInt64LE(BigInt(child.payload.length), at);
    offset += child.payload.length;
  }
  return { id, type, node, children: Buffer.concat(children.map((c) => c.payload), offset) };
}

export interface DecodedRecord {
  type: OxenNodeType;
  parentId: string;
  payload: Buffer;
  children: Array<RecordChild & { offset: number }>;
}

/** Splits a `node` blob and its `children` blob back into payloads; the inverse of `encodeNodeRecord`. */
export function decodeNodeRecord(node: Uint8Array, children: Uint8Array): DecodedRecord {
  const buf = Buffer.from(node.buffer, node.byteOffset, node.byteLength);
  const kids = Buffer.from(children.buffer, children.byteOffset, children.byteLength);
  if (buf.length < 21) throw new Error('node blob shorter than its header');
  const typeOf = (code: number) => {
    const t = TYPE_BY_CODE[code];
    if (t === undefined) throw new Error(`Unknown node type code ${code}`);
    return t;
  };
  const type = typeOf(buf[0]);
  const parentId = idFromBytesLE(buf.subarray(1, 17));
  const length = buf.readUInt32LE(17);
  if (21 + length > buf.length || (buf.length - 21 - length) % CHILD_ROW !== 0) throw new Error('node blob has a malformed payload or child table');
  const payload = buf.subarray(21, 21 + length);
  const rows: DecodedRecord['children'] = [];
  for (let at = 21 + length; at < buf.length; at += CHILD_ROW) {
    const offset = Number(buf.readBigUInt64LE(at + 17));
    const size = Number(buf.readBigUInt64LE(at + 25));
    if (offset + size > kids.length) throw new Error('child row points past the children blob');
    rows.push({ type: typeOf(buf[at]), hash: idFromBytesLE(buf.subarray(at + 1, at + 17)), offset, payload: kids.subarray(offset, offset + size) });
  }
  return { type, parentId, payload, children: rows };
}
