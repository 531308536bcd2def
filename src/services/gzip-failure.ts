import type { Gzip } from 'node:zlib';

/** Resolves once `gzip` drains, or at once (and on close) when it is destroyed: a writer waits on it under backpressure. */
export function drained(gzip: Gzip): Promise<void> {
  return new Promise<void>((resolve) => {
    if (gzip.destroyed) return resolve();
    const done = () => {
      gzip.off('drain', done);
      gzip.off('close', done);
      resolve();
    };
    gzip.on('drain', done);
    gzip.on('close', done);
  });
}

/**
 * How a streamed gzip response fails, shared by the tarball writers: the first failure destroys the
 * output and is reported once, saying whether the consumer (the HTTP response) had gone away first.
 * `failed()` tells the writer to stop feeding.
 */
export function gzipFailure(gzip: Gzip, onFailure: (err: Error, consumerGone: boolean) => void) {
  let failed = false;
  return {
    failed: () => failed,
    fail(err: Error) {
      if (failed) return;
      failed = true;
      // Destroyed before we failed: whoever reads the output went away first.
      const consumerGone = gzip.destroyed;
      gzip.destroy();
      onFailure(err, consumerGone);
    },
  };
}
