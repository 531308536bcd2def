// The worker behind BlobFileWriter (blob-file-writer.ts): plain CommonJS, so that it loads without the
// TypeScript loader. The cheap calls (utimes, open, write, close, rename) are synchronous here, one system call
// each; only fsync, which waits for the disk, goes through the thread pool, so that many run at once.
'use strict';
const { closeSync, fsync, openSync, renameSync, rmSync, utimesSync, writeSync } = require('node:fs');
const { parentPort } = require('node:worker_threads');

let replies = [];
function reply(message) {
  // One message for everything answered in this turn of the loop.
  if (replies.length === 0) setImmediate(() => {
    parentPort.postMessage(replies);
    replies = [];
  });
  replies.push(message);
}

function fail(id, err, fd, tmp) {
  if (fd !== undefined) try { closeSync(fd); } catch {}
  if (tmp !== undefined) try { rmSync(tmp, { force: true }); } catch {}
  reply({ id, error: { message: err.message, code: err.code, errno: err.errno, syscall: err.syscall, path: err.path } });
}

/**
 * Stores `bytes` at `target` unless a file is there already (then only marks it reused, as gc expects): written to
 * `tmp`, fsynced and closed, then renamed into place. The caller syncs the target's directory.
 */
function write({ id, tmp, target, bytes }) {
  const now = new Date();
  try {
    utimesSync(target, now, now);
    return reply({ id, created: false });
  } catch (err) {
    if (err.code !== 'ENOENT') return fail(id, err);
  }
  let fd;
  try {
    fd = openSync(tmp, 'wx');
    for (let at = 0; at < bytes.length; ) {
      const written = writeSync(fd, bytes, at, bytes.length - at, at);
      if (written === 0) throw Object.assign(new Error(`write at ${at} made no progress`), { code: 'EIO', syscall: 'write' });
      at += written;
    }
  } catch (err) {
    return fail(id, err, fd, tmp);
  }
  fsync(fd, (err) => {
    if (err) return fail(id, err, fd, tmp);
    try {
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, target);
      reply({ id, created: true });
    } catch (err) {
      fail(id, err, fd, tmp);
    }
  });
}

parentPort.on('message', (batch) => {
  for (const request of batch) write(request);
});
