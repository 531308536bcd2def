import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { xxhash128 } from 'hash-wasm';
import {
  compareNames,
  decodeNodeRecord,
  decodeOxenNode,
  encodeNodeRecord,
  encodeOxenNode,
  idBytesBE,
  idBytesLE,
  idFromBytesBE,
  instantFromIso,
  NO_PARENT,
  nodeDirPath,
  oxenVnodeIndex,
  PAYLOAD_PREFIX,
  type OxenCommitNode,
  type OxenDirNode,
  type OxenFileNode,
  type OxenNode,
  type OxenVNode,
} from '../../src/core/oxen-nodes.js';
import { decodeMsgpack, MsgpackWriter } from '../../src/core/msgpack.js';

const HASH = '9f86d081884c7d659a2feaa0c55ad015';
const SHORT = '1f'; // Oxen prints ids without leading zeros

const commit: OxenCommitNode = {
  type: 'Commit',
  hash: 'c0ffee00112233445566778899aabbcc',
  parentIds: ['abc', HASH],
  message: 'add the data ✓',
  author: 'Ada Lovelace',
  email: 'ada@example.com',
  timestamp: instantFromIso('2024-03-01T12:34:56.789Z'),
};
const dir: OxenDirNode = {
  type: 'Dir',
  name: 'train',
  hash: HASH,
  numEntries: 3,
  numBytes: 5_000_000_000, // above 32 bits
  lastCommitId: commit.hash,
  lastModifiedSeconds: 0,
  lastModifiedNanoseconds: 0,
  dataTypeCounts: { text: 2, image: 40 },
  dataTypeSizes: { text: 300, image: 4_999_999_700 },
};
const vnode: OxenVNode = { type: 'VNode', hash: SHORT, numEntries: 200 };
const file: OxenFileNode = {
  type: 'File',
  name: 'cat 1.jpg',
  metadataHash: null,
  hash: HASH,
  combinedHash: HASH,
  numBytes: 3000,
  lastCommitId: commit.hash,
  lastModifiedSeconds: 1_709_296_496,
  lastModifiedNanoseconds: 789_000_000,
  dataType: 'image',
  metadata: null,
  mimeType: 'image/jpeg',
  extension: 'jpg',
  chunkHashes: [HASH],
  chunkType: 'SingleFile',
  storageBackend: 'Disk',
};

/** The fields inside the envelope, decoded generically. */
function fields(payload: Buffer): unknown[] {
  const outer = decodeMsgpack(payload) as unknown[];
  assert.equal(outer.length, 1);
  const envelope = outer[0] as Map<string, unknown>;
  assert.deepEqual([...envelope.keys()], ['V0_25_0']);
  return envelope.get('V0_25_0') as unknown[];
}

describe('Oxen node payloads (msgpack, V0_25_0)', () => {
  it('start with the envelope prefix 0x91 0x81 0xa7 "V0_25_0"', () => {
    assert.deepEqual([...PAYLOAD_PREFIX], [0x91, 0x81, 0xa7, ...Buffer.from('V0_25_0')]);
    for (const node of [commit, dir, vnode, file] as OxenNode[]) {
      const payload = encodeOxenNode(node);
      assert.deepEqual(payload.subarray(0, 10), PAYLOAD_PREFIX, node.type);
    }
  });

  it('decode back to what was encoded, for every node type', () => {
    for (const node of [commit, dir, vnode, file] as OxenNode[]) {
      assert.deepEqual(decodeOxenNode(node.type, encodeOxenNode(node)), node);
    }
  });

  it('write a vnode byte for byte: hash as bin 16 big-endian, the type as its name, the count as a uint', () => {
    const payload = encodeOxenNode({ type: 'VNode', hash: HASH, numEntries: 200 });
    const expected = Buffer.concat([
      PAYLOAD_PREFIX,
      Buffer.from([0x93, 0xc4, 0x10]),
      Buffer.from(HASH, 'hex'),
      Buffer.from([0xa5]),
      Buffer.from('VNode'),
      Buffer.from([0xcc, 200]),
    ]);
    assert.deepEqual(payload, expected);
    // A short id is left-padded to 16 bytes, and reads back without the padding.
    const short = fields(encodeOxenNode(vnode))[0] as Buffer;
    assert.deepEqual(short, Buffer.from('0000000000000000000000000000001f', 'hex'));
    assert.equal(idFromBytesBE(short), SHORT);
  });

  it('lay out the commit fields in order, with the timestamp as time’s 9-tuple', () => {
    const f = fields(encodeOxenNode(commit));
    assert.equal(f.length, 7);
    assert.deepEqual(f[0], idBytesBE(commit.hash));
    assert.equal(f[1], 'Commit');
    assert.deepEqual(f[2], [idBytesBE('abc'), idBytesBE(HASH)]);
    assert.deepEqual(f.slice(3, 6), [commit.message, commit.author, commit.email]);
    // 2024 is a leap year: 1 March is day 31 + 29 + 1 = 61.
    assert.deepEqual(f[6], [2024, 61, 12, 34, 56, 789_000_000, 0, 0, 0]);
  });

  it('lay out dir and file fields in Oxen’s declaration order', () => {
    const d = fields(encodeOxenNode(dir));
    assert.equal(d.length, 10);
    assert.deepEqual(d.slice(0, 2), ['Dir', 'train']);
    assert.equal(d[4], 5_000_000_000);
    assert.deepEqual([...(d[8] as Map<string, number>).entries()], [['image', 40], ['text', 2]]); // sorted keys
    const f = fields(encodeOxenNode(file));
    assert.equal(f.length, 16);
    assert.deepEqual([f[0], f[1], f[2], f[9], f[10], f[11], f[12], f[14], f[15]], ['File', 'cat 1.jpg', null, 'image', null, 'image/jpeg', 'jpg', 'SingleFile', 'Disk']);
    assert.deepEqual(f[13], [idBytesBE(HASH)]);
  });
});

describe('MessagePack writer and reader', () => {
  it('use the shortest form at every boundary and read each back', () => {
    const cases: Array<[(w: MsgpackWriter) => MsgpackWriter, number[], unknown]> = [
      [(w) => w.uint(127), [0x7f], 127],
      [(w) => w.uint(128), [0xcc, 0x80], 128],
      [(w) => w.uint(256), [0xcd, 0x01, 0x00], 256],
      [(w) => w.uint(65536), [0xce, 0, 1, 0, 0], 65536],
      [(w) => w.uint(2 ** 32), [0xcf, 0, 0, 0, 1, 0, 0, 0, 0], 2 ** 32],
      [(w) => w.uint(2n ** 64n - 1n), [0xcf, ...Array(8).fill(0xff)], 2n ** 64n - 1n],
      [(w) => w.int(-1), [0xff], -1],
      [(w) => w.int(-33), [0xd0, 0xdf], -33],
      [(w) => w.int(-129), [0xd1, 0xff, 0x7f], -129],
      [(w) => w.int(300), [0xcd, 0x01, 0x2c], 300],
      [(w) => w.str('x'.repeat(31)), [0xbf, ...Buffer.from('x'.repeat(31))], 'x'.repeat(31)],
      [(w) => w.str('x'.repeat(32)), [0xd9, 32, ...Buffer.from('x'.repeat(32))], 'x'.repeat(32)],
      [(w) => w.nil(), [0xc0], null],
    ];
    for (const [write, bytes, value] of cases) {
      const out = write(new MsgpackWriter()).bytes();
      assert.deepEqual([...out], bytes);
      assert.deepEqual(decodeMsgpack(out), value);
    }
    // 16 elements no longer fit a fixarray.
    const long = new MsgpackWriter().array(16);
    for (let i = 0; i < 16; i++) long.uint(i);
    assert.deepEqual(decodeMsgpack(long.bytes()), [...Array(16).keys()]);
    assert.equal(long.bytes()[0], 0xdc);
    const text = 'é'.repeat(40_000);
    assert.equal(decodeMsgpack(new MsgpackWriter().str(text).bytes()), text);
  });

  it('refuse truncated input and trailing bytes', () => {
    assert.throws(() => decodeMsgpack(Buffer.from([0x92, 0x01])), /ends early/);
    assert.throws(() => decodeMsgpack(Buffer.from([0x01, 0x02])), /after the MessagePack value/);
  });
});

describe('Oxen node records (node + children blobs)', () => {
  const dirPayload = encodeOxenNode(dir);
  const filePayload = encodeOxenNode(file);
  const subdir: OxenDirNode = { ...dir, name: 'sub', hash: 'abcdef' };
  const subPayload = encodeOxenNode(subdir);
  const record = encodeNodeRecord(SHORT, 'VNode', HASH, encodeOxenNode(vnode), [
    { type: 'File', hash: file.hash, payload: filePayload },
    { type: 'Dir', hash: subdir.hash, payload: subPayload },
  ]);

  it('write the header: type code, parent id little-endian, payload length u32 LE, payload', () => {
    const payload = encodeOxenNode(vnode);
    assert.equal(record.node[0], 2); // VNode
    assert.deepEqual(record.node.subarray(1, 17), idBytesLE(HASH));
    assert.deepEqual(record.node.subarray(1, 17), Buffer.from(HASH, 'hex').reverse());
    assert.equal(record.node.readUInt32LE(17), payload.length);
    assert.deepEqual(record.node.subarray(21, 21 + payload.length), payload);
  });

  it('write one 33-byte row per child (type, id LE, u64 LE offset and length), and concatenate the children', () => {
    const rows = record.node.subarray(21 + encodeOxenNode(vnode).length);
    assert.equal(rows.length, 2 * 33);
    assert.equal(rows[0], 3); // File
    assert.deepEqual(rows.subarray(1, 17), idBytesLE(file.hash));
    assert.equal(rows.readBigUInt64LE(17), 0n);
    assert.equal(rows.readBigUInt64LE(25), BigInt(filePayload.length));
    assert.equal(rows[33], 1); // Dir
    assert.deepEqual(rows.subarray(34, 50), idBytesLE('abcdef'));
    assert.equal(rows.readBigUInt64LE(33 + 17), BigInt(filePayload.length));
    assert.equal(rows.readBigUInt64LE(33 + 25), BigInt(subPayload.length));
    assert.deepEqual(record.children, Buffer.concat([filePayload, subPayload]));
  });

  it('decode back into the payloads and nodes', () => {
    const decoded = decodeNodeRecord(record.node, record.children);
    assert.equal(decoded.type, 'VNode');
    assert.equal(decoded.parentId, HASH);
    assert.deepEqual(decodeOxenNode('VNode', decoded.payload), vnode);
    assert.deepEqual(
      decoded.children.map((c) => [c.type, c.hash, decodeOxenNode(c.type, c.payload)]),
      [
        ['File', file.hash, file],
        ['Dir', 'abcdef', subdir],
      ],
    );
  });

  it('write an all-zero parent for a node without one, and a bare header when there are no children', () => {
    const alone = encodeNodeRecord(commit.hash, 'Commit', NO_PARENT, dirPayload, []);
    assert.deepEqual(alone.node.subarray(1, 17), Buffer.alloc(16));
    assert.equal(alone.node.length, 21 + dirPayload.length);
    assert.equal(alone.children.length, 0);
    assert.equal(decodeNodeRecord(alone.node, alone.children).parentId, '0');
  });

  it('reject a child table that does not fit', () => {
    assert.throws(() => decodeNodeRecord(record.node.subarray(0, record.node.length - 1), record.children), /malformed/);
    assert.throws(() => decodeNodeRecord(record.node, record.children.subarray(1)), /past the children blob/);
  });

  it('live under tree/nodes/{first 3 hex}/{rest}', () => {
    assert.equal(nodeDirPath(HASH), 'tree/nodes/9f8/6d081884c7d659a2feaa0c55ad015');
    assert.equal(nodeDirPath('00ABCD'), 'tree/nodes/abc/d');
  });
});

describe("Oxen's vnode partition", () => {
  it('puts an entry in xxh3-128(full path) mod count (checked against a second xxh3 implementation)', async () => {
    for (const path of ['a.txt', 'train/cats/1.jpg', 'ünï/cödé 😀.txt']) {
      assert.equal(oxenVnodeIndex(path, 1), 0);
      const digest = BigInt(`0x${await xxhash128(Buffer.from(path, 'utf8'))}`);
      for (const count of [2, 3, 7, 100]) assert.equal(oxenVnodeIndex(path, count), Number(digest % BigInt(count)), `${path} / ${count}`);
    }
  });

  it('orders names by UTF-8 bytes, as Rust compares paths', () => {
    // UTF-16 puts U+1F600 (a surrogate pair, 0xD83D…) before U+FB01; UTF-8 puts it after (F0… > EF…).
    assert.ok('😀' < 'ﬁ');
    assert.ok(compareNames('😀', 'ﬁ') > 0);
    assert.deepEqual(['b', 'é', 'a', '😀', 'ﬁ', 'B'].sort(compareNames), ['B', 'a', 'b', 'é', 'ﬁ', '😀']);
    // The edges of that case: U+E000 and U+FFFF against the first code point above U+FFFF; below U+D800 nothing changes.
    assert.ok(compareNames('\u{10000}', '\uFFFF') > 0 && compareNames('\uE000', '\u{10FFFF}') < 0);
    assert.ok(compareNames('\uD7FF', '\u{10000}') < 0);
    assert.ok(compareNames('a😀', 'a😀') === 0 && compareNames('a', 'a😀') < 0 && compareNames('😀', '😁') < 0);
  });
});
