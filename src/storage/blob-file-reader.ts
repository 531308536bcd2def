import { Worker } from 'node:worker_threads';

/** Most files one message to a worker names: a worker answers one message at a time. */
const FILES_PER_MESSAGE = 1024;

interface Pending {
  worker: Worker;
  resolve(result: Uint8Array | Float64Array): void;
  reject(err: Error): void;
}

/** A failure on one file of a request: `index` is its position, `code` the system's (ENOENT) or SHORT. */
export interface FileReadError extends Error {
  code?: string;
  index?: number;
}

/**
 * Stats and reads many small files on worker threads with synchronous calls. Every fs call of the main
 * thread is a trip through libuv's thread pool, which for a small file costs more CPU than the system
 * call itself: three trips per file read, one per stat (issue 15, batch download). Two workers, so that
 * a slow disk read holds up only half of the batches; started on first use, and holding the process open
 * only while they have work.
 */
export class BlobFileReader {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly busy = new Map<Worker, number>();
  private nextId = 0;

  constructor(private readonly workerCount = 2) {}

  /** Sizes of the files, -1 for an absent one. */
  async stat(paths: string[]): Promise<Float64Array> {
    const sizes = new Float64Array(paths.length);
    const parts = [];
    for (let at = 0; at < paths.length; at += FILES_PER_MESSAGE) {
      parts.push(this.send('stat', paths.slice(at, at + FILES_PER_MESSAGE)).then((part) => sizes.set(part as Float64Array, at)));
    }
    await Promise.all(parts);
    return sizes;
  }

  /**
   * The first `sizes[i]` bytes of each file, one after the other in one buffer (callers bound the count and
   * the total). Rejects with a FileReadError naming the file's index when one is absent or shorter.
   */
  async read(paths: string[], sizes: number[]): Promise<Buffer> {
    const bytes = (await this.send('read', paths, sizes)) as Uint8Array;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((worker) => worker.terminate()));
  }

  private send(op: 'stat' | 'read', paths: string[], sizes?: number[]): Promise<Uint8Array | Float64Array> {
    const id = this.nextId++;
    const worker = this.pick(id);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, resolve, reject });
      this.setBusy(worker, 1);
      worker.postMessage({ id, op, paths, sizes });
    });
  }

  private pick(id: number): Worker {
    if (this.workers.length === this.workerCount) return this.workers[id % this.workerCount];
    const worker = new Worker(new URL('./blob-file-reader-worker.cjs', import.meta.url));
    worker.unref();
    worker.on('message', ({ id, result, error }: { id: number; result?: Uint8Array | Float64Array; error?: { message: string; code?: string; index?: number } }) => {
      const waiting = this.pending.get(id);
      if (!waiting) return;
      this.pending.delete(id);
      this.setBusy(worker, -1);
      if (result) waiting.resolve(result);
      else waiting.reject(Object.assign(new Error(error!.message), { code: error!.code, index: error!.index }));
    });
    // A worker that dies fails what it was given; the next request starts another.
    const gone = (err: Error) => {
      const at = this.workers.indexOf(worker);
      if (at >= 0) this.workers.splice(at, 1);
      this.busy.delete(worker);
      for (const [id, waiting] of this.pending) {
        if (waiting.worker !== worker) continue;
        this.pending.delete(id);
        waiting.reject(err);
      }
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`blob reader worker exited (${code})`)));
    this.workers.push(worker);
    return worker;
  }

  /** A worker with work in hand keeps the process alive (a CLI awaiting it), an idle one does not. */
  private setBusy(worker: Worker, change: number): void {
    const count = (this.busy.get(worker) ?? 0) + change;
    this.busy.set(worker, count);
    if (count === 0) worker.unref();
    else if (count === change) worker.ref();
  }
}
