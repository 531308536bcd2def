import type { Gzip } from 'node:zlib';

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
