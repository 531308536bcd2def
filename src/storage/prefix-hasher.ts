import type { StreamHasher } from '../core/hash.js';

/** Feeds bytes [start, end) of the staged file to `hasher`. */
export type RangeReader = (start: number, end: number, hasher: StreamHasher) => Promise<void>;

/** One catch-up read covers at most this much, so a long upload's hashing yields to new writes. */
const STEP_BYTES = 64 << 20;

/** A write under way, from `begin` to `end`. */
export interface PrefixWrite {
  readonly offset: number;
}

/**
 * Hashes an in-place upload's bytes from offset 0 upwards while the upload is still arriving,
 * so completing it only reads what has not been hashed yet (the last chunk, typically) instead
 * of the whole file.
 *
 * After each write finishes, the bytes from the hashed frontier up to the first gap or the
 * first write still under way are read back (from the page cache, just written) and hashed.
 * The state is the hash of the file's first `frontier` bytes only while nothing rewrites them,
 * so it is given up for good ("dead") as soon as a write begins below the frontier or inside
 * the range being read. Completion then reads everything back, as it would without this.
 *
 * Writers must call `begin` before their first byte reaches the file and `end` once none of
 * their writes is under way (also when they failed). Only writers of this process are seen;
 * the blob store keeps the state only for files this process created and no other touched.
 */
export class PrefixHasher {
  private frontier = 0;
  /** End of the range being read; writes below it would race the read. */
  private readingTo = 0;
  private dead = false;
  private readonly active = new Set<PrefixWrite>();
  /** Ranges written completely above the frontier, sorted and merged. */
  private written: Array<{ start: number; end: number }> = [];
  private running: Promise<void> | null = null;
  /** A write ended since the catch-up under way last looked. */
  private again = false;

  constructor(
    private readonly hasher: StreamHasher,
    private readonly read: RangeReader,
  ) {}

  begin(offset: number): PrefixWrite {
    if (offset < Math.max(this.frontier, this.readingTo)) this.dead = true;
    const write = { offset };
    this.active.add(write);
    return write;
  }

  /** `length`: the bytes the write put in place, or null if it failed (its range stays unhashed). */
  end(write: PrefixWrite, length: number | null): void {
    this.active.delete(write);
    if (length !== null && length > 0) this.addWritten(write.offset, write.offset + length);
    if (this.dead) return;
    this.again = true;
    this.running ??= this.drain();
  }

  /** Catches up until no write ended meanwhile; `running` is cleared in the same step as the last check. */
  private async drain(): Promise<void> {
    await null; // `running` is assigned before this resolves
    try {
      while (this.again && !this.dead) {
        this.again = false;
        await this.catchUp();
      }
    } catch {
      this.dead = true;
    }
    this.running = null;
  }

  /** Stops hashing for good (the upload was completed or discarded). */
  abandon(): void {
    this.dead = true;
  }

  /**
   * Waits for hashing under way, then hands over the hasher and the byte count it covers, or
   * null when the state cannot be trusted. Either way this hasher is finished with.
   */
  async settle(): Promise<{ hasher: StreamHasher; length: number } | null> {
    while (this.running !== null) await this.running;
    const trusted = !this.dead;
    this.dead = true;
    return trusted ? { hasher: this.hasher, length: this.frontier } : null;
  }

  private async catchUp(): Promise<void> {
    for (;;) {
      let end = Math.min(this.contiguousEnd(), this.frontier + STEP_BYTES);
      for (const write of this.active) end = Math.min(end, write.offset);
      if (this.dead || end <= this.frontier) return;
      this.readingTo = end;
      await this.read(this.frontier, end, this.hasher);
      if (this.dead) return;
      this.frontier = end;
      this.written = this.written.filter((range) => range.end > end);
    }
  }

  /** How far bytes are written without a gap from the frontier. */
  private contiguousEnd(): number {
    let end = this.frontier;
    for (const range of this.written) {
      if (range.start > end) break;
      end = Math.max(end, range.end);
    }
    return end;
  }

  private addWritten(start: number, end: number): void {
    const ranges = [...this.written, { start, end }].sort((a, b) => a.start - b.start);
    const merged: Array<{ start: number; end: number }> = [];
    for (const range of ranges) {
      const last = merged[merged.length - 1];
      if (last && range.start <= last.end) last.end = Math.max(last.end, range.end);
      else merged.push({ ...range });
    }
    this.written = merged;
  }
}
