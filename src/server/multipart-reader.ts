import type { Readable } from 'node:stream';
import { BadRequest, PayloadTooLarge } from '../core/errors.js';
import { decodeText, MAX_PART_HEADER_BYTES, parsePartHeaders } from './multipart-headers.js';

/**
 * A streaming multipart/form-data reader (RFC 7578), pulled one part at a time.
 *
 * It replaces busboy under @fastify/multipart (issue 15): busboy made a stream, a header parser's
 * state, event closures and an async iterator for every part, and a body of 100,000 small files
 * left some 100 MiB of promoted garbage in the server. Here a part costs one small object, and its
 * data are views on the socket's own chunks. The body is read only as fast as parts are consumed.
 *
 * Framing: the delimiter is `CRLF--boundary`, searched over the whole body with a CRLF assumed before
 * its first byte (a body may begin with `--boundary`); `--` right after a delimiter ends the body and
 * what follows (the epilogue) is read and dropped. A part's header section ends at the first blank
 * line. Anything this reader cannot read whole (headers too large or malformed, a part that is not
 * form-data, a body that ends early) fails the read with a 4xx: a part is never silently cut or lost.
 */

/** Epilogue bytes read (and dropped) after the closing delimiter, so a kept-alive connection stays usable. */
const MAX_EPILOGUE_BYTES = 64 * 1024;

export interface MultipartLimits {
  /** Text fields. */
  fields: number;
  /** Bytes of one text field. */
  fieldSize: number;
  /** File parts. */
  files: number;
  /** Parts of any kind. */
  parts: number;
  /** Bytes of one file part: past it the part is marked `truncated` and the rest dropped. */
  fileSize: number;
}

/** Decides whether a part is a file (read as a stream) or a text field (read whole). */
export type IsFilePart = (name: string, contentType: string, filename: string | undefined) => boolean;

/** As browsers and busboy: a part with a filename, or of type application/octet-stream, is a file. */
export const defaultIsFilePart: IsFilePart = (_name, contentType, filename) => filename !== undefined || contentType === 'application/octet-stream';

export interface FieldPart {
  type: 'field';
  name: string;
  value: string;
  /** The part's media type, lower case (`text/plain` when it has none). */
  contentType: string;
}

const CR = 0x0d;
const CRLF = Buffer.from('\r\n');
const CRLF2 = Buffer.from('\r\n\r\n');
const DONE: IteratorResult<Buffer> = Object.freeze({ done: true, value: undefined });

/** A file part: its data are read with `next()` (or `for await`), chunk by chunk, as the body arrives. */
export class FilePart implements AsyncIterableIterator<Buffer> {
  readonly type = 'file';
  /** Set once the data went past `fileSize`: what was read is only the start of the part. */
  truncated = false;
  /** Bytes read so far. */
  size = 0;
  /** The reader has reached this part's end. */
  ended = false;

  constructor(
    private readonly reader: MultipartReader,
    readonly name: string,
    readonly filename: string | undefined,
    /** The part's media type, lower case (`text/plain` when it has none). */
    readonly contentType: string,
    private readonly maxBytes: number,
  ) {}

  async next(): Promise<IteratorResult<Buffer>> {
    while (!this.ended) {
      const data = await this.reader.readData();
      if (data === null) {
        this.ended = true;
        break;
      }
      if (this.truncated) continue;
      this.size += data.length;
      if (this.size > this.maxBytes) {
        this.truncated = true;
        const kept = data.length - (this.size - this.maxBytes);
        this.size = this.maxBytes;
        if (kept > 0) return { done: false, value: data.subarray(0, kept) };
        continue;
      }
      return { done: false, value: data };
    }
    return DONE;
  }

  /** Leaving a `for await` early: the reader skips the rest of the part when the next one is asked for. */
  async return(): Promise<IteratorResult<Buffer>> {
    return DONE;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export type Part = FilePart | FieldPart;

export class MultipartReader {
  private readonly delimiter: Buffer;
  /** The chunk being parsed and the position in it. */
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes at the end of the chunks parsed so far that begin a delimiter: always its first `held` bytes. */
  private held: number;
  private state: 'preamble' | 'part' | 'end' = 'preamble';
  private current: FilePart | null = null;
  private headerBuffer = Buffer.allocUnsafe(1024);
  private counts = { parts: 0, files: 0, fields: 0 };

  // The source, read in paused mode: one chunk is taken at a time, when the parser needs it.
  private readonly queue: Buffer[] = [];
  private sourceEnded = false;
  private sourceError: Error | null = null;
  private wake: (() => void) | null = null;
  private readonly onData = (chunk: Buffer) => {
    this.queue.push(chunk);
    this.source.pause();
    this.notify();
  };
  private readonly onEnd = () => {
    this.sourceEnded = true;
    this.notify();
  };
  private readonly onClose = () => {
    if (!this.sourceEnded) this.sourceError ??= new BadRequest('Malformed multipart body: the request ended before its closing boundary');
    this.notify();
  };
  private readonly onError = (err: Error) => {
    this.sourceError ??= new BadRequest(`Malformed multipart body: the request failed (${err.message})`);
    this.notify();
  };

  constructor(
    private readonly source: Readable,
    boundary: string,
    private readonly limits: MultipartLimits,
    private readonly isFile: IsFilePart = defaultIsFilePart,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    // The CRLF assumed before the body's first byte.
    this.held = 2;
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    source.on('close', this.onClose);
    source.on('error', this.onError);
  }

  /** Stops reading the source (its listeners are removed; what is left of the body stays unread). */
  release(): void {
    this.source.removeListener('data', this.onData);
    this.source.removeListener('end', this.onEnd);
    this.source.removeListener('close', this.onClose);
    this.source.removeListener('error', this.onError);
  }

  /**
   * The next part, or null after the closing delimiter. Whatever is left unread of the part before
   * is skipped. A text field is read whole; a file part's data are read from it.
   */
  async nextPart(): Promise<Part | null> {
    if (this.state === 'end') return null;
    if (this.state === 'preamble') {
      if (!(await this.startBody())) {
        this.state = 'end';
        return null;
      }
      while ((await this.readData()) !== null);
    } else if (this.current && !this.current.ended) {
      while ((await this.readData()) !== null);
    }
    this.current = null;
    if (await this.atClosingDelimiter()) {
      this.state = 'end';
      await this.dropEpilogue();
      return null;
    }
    this.state = 'part';
    return this.readPart();
  }

  private async readPart(): Promise<Part> {
    const head = parsePartHeaders(await this.readHeaderSection());
    if (++this.counts.parts > this.limits.parts) throw new PayloadTooLarge(`Too many parts in the multipart body: at most ${this.limits.parts}`);
    if (this.isFile(head.name, head.contentType, head.filename)) {
      if (++this.counts.files > this.limits.files) throw new PayloadTooLarge(`Too many file parts in the multipart body: at most ${this.limits.files}`);
      this.current = new FilePart(this, head.name, head.filename, head.contentType, this.limits.fileSize);
      return this.current;
    }
    if (++this.counts.fields > this.limits.fields) throw new PayloadTooLarge(`Too many fields in the multipart body: at most ${this.limits.fields}`);
    const chunks: Buffer[] = [];
    let size = 0;
    for (let data = await this.readData(); data !== null; data = await this.readData()) {
      size += data.length;
      if (size > this.limits.fieldSize) throw new PayloadTooLarge(`Multipart field '${head.name}' is too large: at most ${this.limits.fieldSize} bytes`);
      chunks.push(data);
    }
    return { type: 'field', name: head.name, value: decodeText(Buffer.concat(chunks), head.charset), contentType: head.contentType };
  }

  /** Takes the body's first chunk; false for an empty body, which is read as an empty form (as @fastify/multipart did). */
  private async startBody(): Promise<boolean> {
    const first = await this.pull();
    if (first === null) return false;
    this.chunk = first;
    this.pos = 0;
    return true;
  }

  /**
   * The next data bytes of the current section, as a view on the source's chunk, or null at the
   * delimiter that ends it.
   */
  async readData(): Promise<Buffer | null> {
    const d = this.delimiter;
    for (;;) {
      if (this.pos >= this.chunk.length) await this.nextChunk();
      const chunk = this.chunk;
      if (this.held > 0) {
        // Does the delimiter begun at the end of the last chunk go on here?
        const n = Math.min(d.length - this.held, chunk.length - this.pos);
        if (chunk.compare(d, this.held, this.held + n, this.pos, this.pos + n) === 0) {
          this.pos += n;
          this.held += n;
          if (this.held < d.length) continue;
          this.held = 0;
          return null;
        }
        // It does not: the held bytes were data. (The delimiter's only CR is its first byte, so no
        // delimiter can start inside them.)
        const data = Buffer.from(d.subarray(0, this.held));
        this.held = 0;
        return data;
      }
      const at = chunk.indexOf(d, this.pos);
      if (at === this.pos) {
        this.pos += d.length;
        return null;
      }
      if (at !== -1) {
        const data = chunk.subarray(this.pos, at);
        this.pos = at;
        return data;
      }
      // Hold back the chunk's last bytes if they begin a delimiter.
      let end = chunk.length;
      for (let k = Math.max(this.pos, chunk.length - d.length + 1); k < chunk.length; k++) {
        if (chunk[k] === CR && chunk.compare(d, 0, chunk.length - k, k) === 0) {
          end = k;
          break;
        }
      }
      this.held = chunk.length - end;
      const start = this.pos;
      this.pos = chunk.length;
      if (end > start) return chunk.subarray(start, end);
    }
  }

  /** Reads past the two bytes after a delimiter when they are `--`, the end of the body. */
  private async atClosingDelimiter(): Promise<boolean> {
    if ((await this.byte()) !== 0x2d) {
      // Still in the chunk the byte came from.
      this.pos -= 1;
      return false;
    }
    if ((await this.byte()) === 0x2d) return true;
    throw afterBoundary();
  }

  /**
   * The header section after a delimiter, as latin1 text: the rest of the boundary line (transport
   * padding only) is dropped, then everything up to the blank line that ends the headers.
   */
  private async readHeaderSection(): Promise<string> {
    for (let b = await this.byte(); b !== CR; b = await this.byte()) {
      if (b !== 0x20 && b !== 0x09) throw afterBoundary();
    }
    if ((await this.byte()) !== 0x0a) throw afterBoundary();
    // Kept in front of the section, so a part without headers (CRLF CRLF) ends at once.
    this.pos -= CRLF.length;
    if (this.pos < 0) {
      // The CR ended the last chunk.
      this.pos += CRLF.length;
      return this.readHeaderSectionAcrossChunks(CRLF);
    }
    // Most sections lie whole in the chunk at hand: read them there, without copying.
    const chunk = this.chunk;
    const end = chunk.indexOf(CRLF2, this.pos);
    if (end !== -1 && end - this.pos - CRLF.length <= MAX_PART_HEADER_BYTES) {
      const delimiter = chunk.subarray(this.pos, end).indexOf(this.delimiter);
      if (delimiter !== -1) throw headersUnterminated();
      const section = chunk.toString('latin1', this.pos + CRLF.length, end);
      this.pos = end + CRLF2.length;
      return section;
    }
    return this.readHeaderSectionAcrossChunks(Buffer.alloc(0));
  }

  /** The header section, gathered over chunks into a buffer (from `start`, the bytes already read). */
  private async readHeaderSectionAcrossChunks(start: Buffer): Promise<string> {
    const limit = MAX_PART_HEADER_BYTES + CRLF.length + CRLF2.length;
    let length = start.copy(this.headerBuffer, 0);
    for (;;) {
      if (this.pos >= this.chunk.length) await this.nextChunk();
      const before = length;
      const take = Math.min(this.chunk.length - this.pos, limit - length);
      if (length + take > this.headerBuffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(length + take, this.headerBuffer.length * 2)));
        this.headerBuffer.copy(grown, 0, 0, length);
        this.headerBuffer = grown;
      }
      this.chunk.copy(this.headerBuffer, length, this.pos, this.pos + take);
      length += take;
      const section = this.headerBuffer.subarray(0, length);
      const end = section.indexOf(CRLF2, Math.max(0, before - CRLF2.length + 1));
      const delimiter = section.indexOf(this.delimiter, Math.max(0, before - this.delimiter.length + 1));
      if (delimiter !== -1 && (end === -1 || delimiter < end)) throw headersUnterminated();
      if (end !== -1) {
        if (end - CRLF.length > MAX_PART_HEADER_BYTES) throw headersTooLarge();
        this.pos += end + CRLF2.length - before;
        return section.toString('latin1', CRLF.length, end);
      }
      if (length >= limit) throw headersTooLarge();
      this.pos += take;
    }
  }

  /** Moves on to the source's next chunk; the body may not end here. */
  private async nextChunk(): Promise<void> {
    const next = await this.pull();
    if (next === null) throw endedEarly();
    this.chunk = next;
    this.pos = 0;
  }

  /** The next byte of the body. */
  private async byte(): Promise<number> {
    if (this.pos >= this.chunk.length) await this.nextChunk();
    return this.chunk[this.pos++];
  }

  /** Reads and drops what follows the closing delimiter, up to a limit (past it the rest stays unread). */
  private async dropEpilogue(): Promise<void> {
    let dropped = this.chunk.length - this.pos;
    this.pos = this.chunk.length;
    while (dropped <= MAX_EPILOGUE_BYTES) {
      const next = await this.pull().catch(() => null);
      if (next === null) return;
      dropped += next.length;
    }
  }

  /** The source's next chunk, or null at its end. */
  private async pull(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk !== undefined) return chunk;
      if (this.sourceError) throw this.sourceError;
      if (this.sourceEnded) return null;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.source.resume();
      });
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

function endedEarly(): Error {
  return new BadRequest('Malformed multipart body: the body ended before its closing boundary');
}

function afterBoundary(): Error {
  return new BadRequest('Malformed multipart body: unexpected characters after a boundary');
}

function headersUnterminated(): Error {
  return new BadRequest("Malformed multipart body: a part's headers do not end before the next boundary");
}

function headersTooLarge(): Error {
  return new PayloadTooLarge(`A multipart part's headers are too large: over ${MAX_PART_HEADER_BYTES} bytes`);
}
