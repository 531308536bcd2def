import type { Readable } from 'node:stream';
import type { StreamHasher } from '../core/hash.js';
import type { StagedPart } from './blob-store.js';

/** Bytes [start, end) of `part`, which land at `at` in the assembled file. */
export interface Segment {
  part: StagedPart;
  start: number;
  end: number;
  at: number;
}

/**
 * Where the bytes of an upload's assembled file come from: parts with an offset lie there, parts
 * without one follow the part before them in the given order (chunks). Parts may overlap (clients
 * that resend with another chunk size); each byte is taken from the first part, by position, that
 * covers it. `size`: how many bytes to lay out; null: every part's, which must lie back to back from 0.
 * `gap` is the first byte no part covers (before `size`, or before a later part, or with no part at all).
 */
export function layoutParts(parts: StagedPart[], size: number | null): { segments: Segment[]; size: number } | { gap: number } {
  const { segments, end, gapBeforeLast } = place(parts, size);
  if (parts.length === 0 || (size !== null && end < size) || (size === null && gapBeforeLast)) return { gap: end };
  return { segments, size: end };
}

/** The parts' bytes that lie back to back from byte 0 (all of them when there is no gap). */
export function contiguousPrefix(parts: StagedPart[]): { segments: Segment[]; size: number } {
  const { segments, end } = place(parts, null);
  return { segments, size: end };
}

function place(parts: StagedPart[], size: number | null): { segments: Segment[]; end: number; gapBeforeLast: boolean } {
  let cursor = 0;
  const placed = parts.map((part) => {
    const at = part.offset ?? cursor;
    cursor = at + part.size;
    return { part, at };
  });
  placed.sort((a, b) => a.at - b.at);
  const segments: Segment[] = [];
  let end = 0;
  for (const { part, at } of placed) {
    if (size !== null && end >= size) break;
    if (at > end) return { segments, end, gapBeforeLast: true };
    const until = size === null ? at + part.size : Math.min(at + part.size, size);
    if (until <= end) continue;
    segments.push({ part, start: end - at, end: until - at, at: end });
    end = until;
  }
  return { segments, end, gapBeforeLast: false };
}

/** Reads bytes [start, end) of a stored part. */
export type PartReader = (part: StagedPart, range: { start: number; end: number }) => Promise<Readable>;

/** Feeds the assembled file's bytes [from, to) to `hasher`, reading them from the parts `segments` names. */
export async function hashAssembled(segments: Segment[], from: number, to: number, hasher: StreamHasher, read: PartReader): Promise<void> {
  for (const segment of segments) {
    const segmentEnd = segment.at + (segment.end - segment.start);
    if (segmentEnd <= from || segment.at >= to) continue;
    const start = segment.start + Math.max(0, from - segment.at);
    const end = segment.end - Math.max(0, segmentEnd - to);
    for await (const chunk of await read(segment.part, { start, end })) hasher.update(chunk as Uint8Array);
  }
}
