import { Worker } from 'node:worker_threads';

interface Pending {
  resolve(created: boolean): void;
  reject(err: Error): void;
}

interface WriteRequest {
  id: number;
  tmp: string;
  target: string;
  bytes: Uint8Array;
}

type WriteReply = { id: number; created: boolean } | { id: number; error: { message: string; code?: string; errno?: number; syscall?: string; path?: string } };

/**
 * Writes small whole blobs on a worker thread (issue 15, ingest). On the main thread each of a blob's six fs calls
 * (existence check, open, write, fsync, close, rename) is a trip through libuv's thread pool, and with many in
 * flight the trips took more of the main thread than all else it did per blob (~210 µs a blob in a profile): it
 * queued work on the pool's one lock and lost its core to the pool threads it woke. The worker makes the cheap calls synchronously and sends only fsync to the pool;
 * requests and replies travel in one message per turn of each loop. Started on first use; holds the process open
 * only while it has work.
 */
export class BlobFileWriter {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private queued: WriteRequest[] = [];
  private nextId = 0;

  /**
   * Stores `bytes` at `target` through the temp file `tmp` (written, fsynced, closed, renamed), unless `target`
   * exists: then it is only marked as reused (its times) and the answer is false. The directory is not synced.
   * Rejects with the system's error (its code kept: ENOSPC is a 507); `tmp` is gone then.
   */
  write(tmp: string, target: string, bytes: Uint8Array): Promise<boolean> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.start().ref();
      // The worker takes the bytes after this turn: a copy, as they may share memory with the request's other parts.
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ id, tmp, target, bytes: new Uint8Array(bytes) });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    this.start().postMessage(batch, batch.map((request) => request.bytes.buffer as ArrayBuffer));
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./blob-file-writer-worker.cjs', import.meta.url));
    worker.unref();
    worker.on('message', (replies: WriteReply[]) => {
      for (const reply of replies) {
        const waiting = this.pending.get(reply.id);
        if (!waiting) continue;
        this.pending.delete(reply.id);
        if ('error' in reply) waiting.reject(Object.assign(new Error(reply.error.message), reply.error));
        else waiting.resolve(reply.created);
      }
      if (this.pending.size === 0) worker.unref();
    });
    // A worker that dies fails everything it was given (their temp files are left to the next start's cleanup);
    // the next write starts another.
    const gone = (err: Error) => {
      if (this.worker === worker) this.worker = null;
      this.queued = [];
      for (const [id, waiting] of this.pending) {
        this.pending.delete(id);
        waiting.reject(err);
      }
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`blob writer worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
