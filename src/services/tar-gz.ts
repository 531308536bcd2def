import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { BadRequest, PayloadTooLarge } from '../core/errors.js';
import { drained, gzipFailure } from './gzip-failure.js';

/** One archive member: a directory (no data, name ending in '/') or a regular file. */
export interface TarMember {
  name: string;
  data?: Buffer;
}

/**
 * A gzip'd ustar archive (level 1) of `members`, pulled one at a time as the consumer reads
 * (gzip's backpressure), so memory stays bounded by one member whatever the archive's size. If
 * producing a member fails, or the consumer goes away (it destroys the returned stream), the output
 * is destroyed, the producer stops, and `onFailure` says which; the client sees a truncated body.
 * The tar bytes are written here rather than through tar-stream, whose streams emit unhandled
 * errors when the output is destroyed under them.
 */
export function tarGzStream(members: AsyncIterable<TarMember>, onFailure: (err: Error, consumerGone: boolean) => void): Readable {
  const gzip = createGzip({ level: 1 });
  const { fail, failed } = gzipFailure(gzip, onFailure);
  gzip.on('error', (err) => fail(err));
  gzip.on('close', () => {
    if (!gzip.writableFinished) fail(new Error('The tarball was closed before it was complete'));
  });
  const write = async (chunk: Buffer) => {
    if (!failed() && !gzip.write(chunk)) await drained(gzip);
  };
  // Small members are gathered into one write: each write into zlib is a thread-pool round trip.
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    if (batched === 0) return;
    const chunk = Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    await write(chunk);
  };
  const put = async (chunk: Buffer) => {
    batch.push(chunk);
    batched += chunk.length;
    if (batched >= BATCH_BYTES) await flush();
  };
  (async () => {
    for await (const member of members) {
      if (failed()) return;
      if (member.data === undefined) {
        await put(tarHeader(member.name, 0, 'directory'));
        continue;
      }
      await put(tarHeader(member.name, member.data.length, 'file'));
      await put(member.data);
      if (member.data.length % BLOCK !== 0) await put(Buffer.alloc(BLOCK - (member.data.length % BLOCK)));
    }
    await put(Buffer.alloc(2 * BLOCK)); // end of archive
    await flush();
    if (!failed()) gzip.end();
  })().catch((err: Error) => fail(err));
  return gzip;
}

const BLOCK = 512;
const BATCH_BYTES = 64 * 1024;

/** A ustar header: mode 0755 (directory) or 0644 (file), uid/gid 0, mtime 0. Names here are short ASCII. */
function tarHeader(name: string, size: number, type: 'file' | 'directory'): Buffer {
  if (name.length > 100) throw new Error(`tar entry name too long: ${name}`);
  if (size >= 8 ** 11) throw new Error(`tar entry too large: ${size} bytes`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'latin1');
  h.write(type === 'directory' ? '0000755\0' : '0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1'); // uid
  h.write('0000000\0', 116, 'latin1'); // gid
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1'); // mtime
  h.write('        ', 148, 'latin1'); // checksum, counted as spaces
  h.write(type === 'directory' ? '5' : '0', 156, 'latin1');
  h.write('ustar\0' + '00', 257, 'latin1');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** One member of an archive being read: its header and its bytes, to consume (or `resume()`) before the next. */
export type TarEntry = Readable & { header: { name: string; type?: string | null } };

/**
 * Reads a gzip'd tar as it streams, handing each member to `onEntry` in turn (with its name
 * without a leading './'); the unpacked size is capped against gzip bombs (413). A body that is not
 * a tar.gz is the client's mistake: 400 naming `what`. Errors from `onEntry` pass through as they are.
 */
export async function readTarGz(body: AsyncIterable<Uint8Array>, maxUnpackedBytes: number, what: string, onEntry: (entry: TarEntry, name: string) => Promise<unknown>): Promise<void> {
  const extract = tar.extract();
  const unpacking = pipeline(Readable.from(body), createGunzip(), capBytes(maxUnpackedBytes), extract);
  // The pipeline may fail while an entry is being consumed, before anything awaits it: mark it handled
  // now (it is awaited below), or Node takes it for an unhandled rejection and stops the process.
  unpacking.catch(() => {});
  try {
    for await (const entry of extract) await onEntry(entry as unknown as TarEntry, entry.header.name.replace(/^\.\//, ''));
    await unpacking;
  } catch (err) {
    extract.destroy();
    await unpacking.catch(() => {});
    if (err instanceof BadRequest || err instanceof PayloadTooLarge) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_') || /tar|header|unexpected end/i.test((err as Error).message)) {
      throw new BadRequest(`${what} is not a valid tar.gz: ${(err as Error).message}`);
    }
    throw err;
  }
}

/** Passes bytes through, failing (413) once more than `limit` have gone by. */
export function capBytes(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.byteLength;
      if (seen > limit) done(new PayloadTooLarge(`Unpacked data exceeds the limit of ${limit} bytes`));
      else done(null, chunk);
    },
  });
}
