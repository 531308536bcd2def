import { BadRequest, PayloadTooLarge } from '../core/errors.js';

/**
 * Checks the header block of every part of a multipart body as it arrives, ahead of busboy, and
 * refuses the blocks busboy mishandles without telling anyone:
 *
 * - A header block over busboy's `headerSize` (80 KiB) is cut there and the rest dropped, so a long
 *   filename arrives shortened and headers after the cut (often Content-Disposition) are lost.
 * - A part busboy skips (no Content-Disposition, a disposition other than form-data, a header line
 *   it cannot parse, a name with a line break) is resumed a tick too late: when that part's data
 *   (over 16 KiB) and its end arrive in one write, busboy's parser stays paused for ever, the
 *   request is never read to its end and no reply is ever sent.
 *
 * The scanner follows busboy's own framing (the delimiter `\r\n--boundary` searched over the whole
 * stream, a virtual CRLF before the first byte, `--` after a delimiter ending the body, a header
 * block ending at the first CRLFCRLF unless a delimiter starts first) so that it judges exactly
 * the blocks busboy will parse. It only reads: bytes reach busboy unchanged.
 */

/** Largest header section of one part (its header lines and the line breaks between them). */
export const MAX_PART_HEADER_BYTES = 64 * 1024;
/** Most header lines (not counting folded continuation lines) one part may have. */
export const MAX_PART_HEADERS = 100;

const CRLF2 = Buffer.from('\r\n\r\n');

export class PartHeaderScanner {
  private readonly delimiter: Buffer;
  private state: 'data' | 'header' | 'done' = 'data';
  /** Data state: the stream's last bytes (fewer than the delimiter), for a delimiter split across chunks. */
  private carry: Buffer;
  /** Header state: the bytes since the delimiter (grown as needed, up to `capacity`). */
  private header = Buffer.allocUnsafe(1024);
  private headerLength = 0;
  private readonly capacity: number;
  /** Header blocks checked so far (for tests). */
  blocks = 0;

  /** `fail` is called at most once, with the error to answer; scanning stops then. */
  constructor(boundary: string, private readonly fail: (err: Error) => void) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    // Busboy's parser starts with a CRLF of its own, so a body may begin with `--boundary`.
    this.carry = Buffer.from('\r\n');
    // Room to see a terminator or delimiter just past the limit.
    this.capacity = MAX_PART_HEADER_BYTES + 8 + this.delimiter.length;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.state !== 'done') {
      pos = this.state === 'data' ? this.scanData(chunk, pos) : this.scanHeader(chunk, pos);
    }
  }

  /** Looks for the next delimiter; returns where scanning goes on in `chunk`. */
  private scanData(chunk: Buffer, pos: number): number {
    const d = this.delimiter;
    // A delimiter that began in earlier bytes: search the carry and just enough of this chunk.
    const window = Buffer.concat([this.carry, chunk.subarray(pos, pos + d.length - 1)]);
    let i = window.indexOf(d);
    let end = i === -1 ? -1 : pos + i + d.length - this.carry.length;
    if (end === -1) {
      i = chunk.indexOf(d, pos);
      if (i !== -1) end = i + d.length;
    }
    if (end === -1) {
      const keep = d.length - 1;
      this.carry = chunk.length - pos >= keep ? Buffer.from(chunk.subarray(chunk.length - keep)) : Buffer.concat([this.carry, chunk.subarray(pos)]).subarray(-keep);
      return chunk.length;
    }
    this.carry = Buffer.alloc(0);
    this.state = 'header';
    this.headerLength = 0;
    return end;
  }

  /** Gathers the bytes after a delimiter until the header block ends (or another delimiter starts). */
  private scanHeader(chunk: Buffer, pos: number): number {
    const d = this.delimiter;
    const before = this.headerLength;
    const wanted = Math.min(this.capacity, before + chunk.length - pos);
    if (wanted > this.header.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.capacity, Math.max(wanted, this.header.length * 2)));
      this.header.copy(grown, 0, 0, before);
      this.header = grown;
    }
    const copied = chunk.copy(this.header, before, pos, pos + (wanted - before));
    this.headerLength += copied;
    const buf = this.header.subarray(0, this.headerLength);
    if (this.headerLength >= 2 && buf[0] === 0x2d && buf[1] === 0x2d) {
      // `--boundary--`: the body ends; busboy ignores whatever follows.
      this.state = 'done';
      return chunk.length;
    }
    const from = Math.max(0, before - d.length);
    const nextDelimiter = buf.indexOf(d, from);
    const terminator = buf.indexOf(CRLF2, from);
    // Busboy's header parser only sees the bytes before a delimiter: a block whose CRLFCRLF is not
    // complete by then never ends, and busboy drops that part (harmlessly).
    if (terminator !== -1 && (nextDelimiter === -1 || terminator + CRLF2.length <= nextDelimiter)) {
      this.checkBlock(buf.subarray(0, terminator));
      this.state = 'data';
      // A delimiter may start at the terminator's second CRLF (a part with no data and one line
      // break too few): busboy finds it there, so the search for the next one starts there too.
      this.carry = Buffer.from('\r\n');
      return pos + (terminator + CRLF2.length - before);
    }
    if (nextDelimiter !== -1) {
      this.headerLength = 0;
      return pos + (nextDelimiter + d.length - before);
    }
    // The header section so far (less the boundary line's CRLF and a possible partial terminator)
    // is already over the limit.
    if (this.headerLength - 2 - (CRLF2.length - 1) > MAX_PART_HEADER_BYTES) {
      this.stop(new PayloadTooLarge(`A multipart part's headers are too large: over ${MAX_PART_HEADER_BYTES} bytes`));
      return chunk.length;
    }
    return pos + copied;
  }

  private checkBlock(block: Buffer): void {
    this.blocks += 1;
    const problem = partHeaderProblem(block.toString('latin1'));
    if (problem) this.stop(problem);
  }

  private stop(err: Error): void {
    this.state = 'done';
    this.fail(err);
  }
}

/**
 * What is wrong with a part's header block (the bytes from the delimiter to the blank line), as the
 * error to answer, or null when busboy will parse it whole and hand the part over. Mirrors the
 * rules of @fastify/busboy's HeaderParser and multipart parser.
 */
export function partHeaderProblem(block: string): Error | null {
  const malformed = (why: string) => new BadRequest(`Malformed multipart part headers: ${why}`);
  const lines = block.split('\r\n');
  // The rest of the boundary line: busboy cannot read transport padding (or anything else) there.
  if (lines[0] !== '') return malformed('unexpected characters after the boundary');
  const size = Math.max(0, block.length - 2);
  if (size > MAX_PART_HEADER_BYTES) return new PayloadTooLarge(`A multipart part's headers are too large: ${size} bytes, at most ${MAX_PART_HEADER_BYTES}`);
  let count = 0;
  let disposition: string | undefined;
  let inDisposition = false;
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    if (line.includes('\r') || line.includes('\n')) return malformed('a bare line break in a header');
    if (line[0] === ' ' || line[0] === '\t') {
      if (count === 0) return malformed('a continuation line before any header');
      if (inDisposition) disposition += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return malformed(`a header line without a name and colon`);
    if (++count > MAX_PART_HEADERS) return new PayloadTooLarge(`A multipart part has too many headers: at most ${MAX_PART_HEADERS}`);
    inDisposition = disposition === undefined && line.slice(0, colon).toLowerCase() === 'content-disposition';
    if (inDisposition) disposition = line.slice(colon + 1 + (line[colon + 1] === ' ' || line[colon + 1] === '\t' ? 1 : 0));
  }
  if (disposition === undefined) return malformed('a part without a Content-Disposition header');
  // Busboy takes the value whole when it has no parameters, else the first token without blanks.
  const type = disposition.includes(';') ? disposition.slice(0, disposition.indexOf(';')).replace(/[ \t]/g, '') : disposition;
  if (type.toLowerCase() !== 'form-data') return malformed(`Content-Disposition is '${type.slice(0, 100)}', not form-data`);
  // An RFC 2231 name or filename (`filename*=utf-8''…`) decoding to a line break.
  if (/(?:^|;)[ \t]*(?:file)?name[ \t]*\*[^;]*%0[ad]/i.test(disposition)) return malformed('a line break in the part name or filename');
  return null;
}

/**
 * The boundary busboy will use for a Content-Type, or null when it is not one this scanner can be
 * sure to read the same way (then parts are not checked ahead: busboy alone decides).
 */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (contentType === undefined || !/^multipart\/form-data/i.test(contentType)) return null;
  // Outside quotes, busboy drops blanks; the first `boundary` parameter wins.
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq === -1) continue;
    const key = param.slice(0, eq).replace(/[ \t]/g, '').toLowerCase();
    // An RFC 2231 `boundary*=`: decoded by busboy, not here.
    if (key === 'boundary*') return null;
    if (key !== 'boundary') continue;
    const raw = param.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    let value: string;
    if (raw.startsWith('"')) {
      const close = raw.indexOf('"', 1);
      if (close === -1 || raw.slice(close + 1) !== '') return null;
      value = raw.slice(1, close);
    } else {
      value = raw.replace(/[ \t]/g, '');
    }
    // Escapes, quotes, non-ASCII: read differently by different parsers, so not checked ahead.
    return value !== '' && /^[\x20-\x7e]+$/.test(value) && !/["\\]/.test(value) ? value : null;
  }
  return null;
}
