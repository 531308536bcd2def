import { BadRequest, PayloadTooLarge } from '../core/errors.js';

/**
 * The header side of multipart/form-data (RFC 7578): a part's header section, the parameters of a
 * header value (Content-Disposition's name and filename, a Content-Type's charset or boundary), and
 * the text encodings they arrive in. ./multipart-reader.ts frames the body and calls these.
 */

/** Largest header section of one part (its header lines and the line breaks between them). */
export const MAX_PART_HEADER_BYTES = 64 * 1024;
/** Most header lines (not counting folded continuation lines) one part may have. */
export const MAX_PART_HEADERS = 100;

export interface PartHead {
  name: string;
  filename: string | undefined;
  contentType: string;
  charset: string | undefined;
}

/** Parses a part's header section (latin1 text, lines separated by CRLF, without the blank line). */
export function parsePartHeaders(section: string): PartHead {
  const malformed = (why: string) => new BadRequest(`Malformed multipart part headers: ${why}`);
  let disposition: string | undefined;
  let contentType: string | undefined;
  let last: 'disposition' | 'type' | null = null;
  let count = 0;
  for (const line of section === '' ? [] : section.split('\r\n')) {
    if (line.includes('\r') || line.includes('\n')) throw malformed('a bare line break in a header');
    if (line[0] === ' ' || line[0] === '\t') {
      // A folded line continues the header before it.
      if (count === 0) throw malformed('a continuation line before any header');
      if (last === 'disposition') disposition += line;
      else if (last === 'type') contentType += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || /[ \t]/.test(line.slice(0, colon))) throw malformed('a header line without a name and colon');
    if (++count > MAX_PART_HEADERS) throw new PayloadTooLarge(`A multipart part has too many headers: at most ${MAX_PART_HEADERS}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1);
    last = null;
    // The first of each counts.
    if (name === 'content-disposition' && disposition === undefined) {
      disposition = value;
      last = 'disposition';
    } else if (name === 'content-type' && contentType === undefined) {
      contentType = value;
      last = 'type';
    }
  }
  if (disposition === undefined) throw malformed('a part without a Content-Disposition header');
  const parsedDisposition = parseHeaderValue(disposition);
  if (parsedDisposition.value.toLowerCase() !== 'form-data') throw malformed(`Content-Disposition is '${parsedDisposition.value.slice(0, 100)}', not form-data`);
  const name = parsedDisposition.params.get('name') ?? '';
  const filename = parsedDisposition.params.get('filename');
  if (/[\r\n]/.test(name) || (filename !== undefined && /[\r\n]/.test(filename))) throw malformed('a line break in the part name or filename');
  const type = contentType === undefined ? undefined : parseHeaderValue(contentType);
  return {
    name,
    filename,
    contentType: type?.value ? type.value.toLowerCase() : 'text/plain',
    charset: type?.params.get('charset'),
  };
}

/**
 * A header value `token *(; param=value)`. Values may be quoted (a backslash escapes `"` and `\`
 * only, so Windows paths keep theirs); `param*=charset'lang'%XX…` (RFC 5987: how some HTTP libraries
 * send a non-ASCII filename) is decoded and wins over the plain `param`. Raw non-ASCII bytes are
 * read as UTF-8. Parameter names are lower case.
 */
export function parseHeaderValue(text: string): { value: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const extended = new Set<string>();
  let i = text.indexOf(';');
  const value = (i === -1 ? text : text.slice(0, i)).trim();
  while (i !== -1 && i < text.length) {
    i += 1;
    const eq = text.indexOf('=', i);
    const semi = text.indexOf(';', i);
    if (eq === -1 || (semi !== -1 && semi < eq)) {
      i = semi;
      continue;
    }
    let key = text.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (text[i] === ' ' || text[i] === '\t') i++;
    let raw: string;
    if (text[i] === '"') {
      raw = '';
      for (i += 1; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i++;
        raw += text[i];
      }
      i = text.indexOf(';', i);
    } else {
      const end = text.indexOf(';', i);
      raw = (end === -1 ? text.slice(i) : text.slice(i, end)).trim();
      i = end;
    }
    if (key.endsWith('*')) {
      key = key.slice(0, -1);
      const decoded = decodeExtended(raw);
      if (decoded === null) continue;
      params.set(key, decoded);
      extended.add(key);
    } else if (!extended.has(key) && !params.has(key)) {
      params.set(key, utf8(raw));
    }
  }
  return { value, params };
}

/** `charset'language'percent-encoded` (RFC 5987); null when it is not that. */
function decodeExtended(raw: string): string | null {
  const first = raw.indexOf("'");
  const second = first === -1 ? -1 : raw.indexOf("'", first + 1);
  if (second === -1) return null;
  const bytes = Buffer.from(raw.slice(second + 1).replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  return decodeText(bytes, raw.slice(0, first));
}

/**
 * Header text arrives as latin1 (one char per byte); a value with bytes over 0x7f was sent as UTF-8. Always a new
 * string: a slice would keep the part's whole header section alive as long as the value (a filename, to the
 * request's end), and 10,000 of those reach the old generation.
 */
function utf8(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString(/[^\x00-\x7f]/.test(latin1) ? 'utf8' : 'latin1');
}

/** Bytes in a named charset (UTF-8 when none is named or the name is unknown). */
export function decodeText(bytes: Buffer, charset: string | undefined): string {
  if (charset === undefined || /^utf-?8$/i.test(charset)) return bytes.toString('utf8');
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** Whether a Content-Type is multipart/form-data (with or without its parameters). */
export function isMultipartType(contentType: string | undefined): contentType is string {
  return contentType !== undefined && /^multipart\/form-data/i.test(contentType);
}

/**
 * The boundary of a multipart/form-data Content-Type, or null when there is none (the body cannot be read).
 * The first `boundary` parameter counts; it may be quoted.
 */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!isMultipartType(contentType)) return null;
  const boundary = parseHeaderValue(contentType).params.get('boundary');
  // RFC 2046: 1 to 70 characters; longer ones are accepted, an empty or non-ASCII one is not.
  return boundary !== undefined && boundary !== '' && /^[\x20-\x7e]+$/.test(boundary) ? boundary : null;
}
