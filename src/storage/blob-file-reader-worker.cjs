// The worker behind BlobFileReader (blob-file-reader.ts): plain CommonJS, so that it loads without the
// TypeScript loader. Synchronous calls on this thread cost one system call each, where every fs call of
// the main thread is a trip through libuv's thread pool.
'use strict';
const { closeSync, openSync, readSync, statSync } = require('node:fs');
const { parentPort } = require('node:worker_threads');

/** Sizes of the files, -1 for an absent one. */
function stat(paths) {
  const sizes = new Float64Array(paths.length);
  paths.forEach((path, i) => {
    try {
      sizes[i] = statSync(path).size;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
      sizes[i] = -1;
    }
  });
  return sizes;
}

/** The files' first `sizes[i]` bytes, one after the other in one buffer; a missing or shorter file is an error naming its index. */
function read(paths, sizes) {
  const out = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  paths.forEach((path, i) => {
    let fd;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw Object.assign(err, { index: i });
    }
    try {
      for (let filled = 0; filled < sizes[i]; ) {
        const n = readSync(fd, out, at + filled, sizes[i] - filled, filled);
        if (n === 0) throw Object.assign(new Error(`has ${filled} bytes, not ${sizes[i]}`), { index: i, code: 'SHORT' });
        filled += n;
      }
    } finally {
      closeSync(fd);
    }
    at += sizes[i];
  });
  return out;
}

parentPort.on('message', ({ id, op, paths, sizes }) => {
  try {
    const result = op === 'stat' ? stat(paths) : read(paths, sizes);
    parentPort.postMessage({ id, result }, [result.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: { message: err.message, code: err.code, index: err.index } });
  }
});
