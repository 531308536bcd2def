import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { hashBuffer } from '../../src/core/hash.js';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { startRadosgw } from '../helpers/radosgw.js';
import { blobStoreConformance, chunksOf, isYokeError, readAll } from './blob-store-conformance.js';

const s3 = await startRadosgw();

if (s3.skip !== undefined) {
  it('S3BlobStore against radosgw', { skip: s3.skip }, () => {});
} else {
  const server = s3.server;
  blobStoreConformance('S3BlobStore (radosgw)', async () => {
    const store = await S3BlobStore.open(server.settings());
    return { store, cleanup: async () => {} };
  });

  describe('S3BlobStore specifics', () => {
    const client = () => new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    /** Every key in the store's bucket. */
    const keysOf = async (bucket: string) => {
      const admin = client();
      const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket }));
      admin.destroy();
      return (page.Contents ?? []).map((o) => o.Key!).sort();
    };
    /** Multipart uploads begun in the bucket and neither completed nor aborted. */
    const pendingUploads = async (bucket: string) => {
      const admin = client();
      const page = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      admin.destroy();
      return (page.Uploads ?? []).map((u) => u.Key);
    };

    it('a 20 MiB put goes multipart and reads back byte for byte (no aws-chunked framing); a mismatching one leaves no object', async () => {
      const settings = server.settings();
      const store = await S3BlobStore.open(settings);
      const data = randomBytes(20 * 1024 * 1024);
      const result = await store.put(chunksOf(data, 64 * 1024));
      assert.deepEqual(result, { hash: hashBuffer(data), size: data.length, created: true });
      assert.ok((await readAll(await store.get(result.hash))).equals(data));
      assert.ok((await readAll(await store.get(result.hash, { start: 10_000_000, end: 10_000_099 }))).equals(data.subarray(10_000_000, 10_000_100)));
      const other = randomBytes(20 * 1024 * 1024);
      await assert.rejects(store.put(chunksOf(other, 64 * 1024), { expectedHash: hashBuffer(randomBytes(8)) }), isYokeError('HashMismatch', 400));
      assert.deepEqual(await keysOf(settings.bucket), [`blobs/${result.hash.padStart(32, '0')}`], 'no partial, scratch or mismatching object');
      assert.deepEqual(await pendingUploads(settings.bucket), [], 'the mismatching multipart upload was aborted');
      await store.close();
    });

    it('a new small blob costs one request; the same bytes again two (a refused conditional PUT, then the touch)', async () => {
      // A pass-through proxy in front of radosgw counts what the store sends.
      const target = new URL(server.endpoint);
      const seen: string[] = [];
      const proxy: Server = createServer((req, res) => {
        seen.push(req.method!);
        const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        });
        req.pipe(upstream);
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      const settings = { ...server.settings(), endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
      const store = await S3BlobStore.open(settings);
      const data = randomBytes(4096);
      seen.length = 0;
      assert.deepEqual(await store.put([data]), { hash: hashBuffer(data), size: data.length, created: true });
      assert.deepEqual(seen, ['PUT']);
      seen.length = 0;
      assert.deepEqual(await store.put([data]), { hash: hashBuffer(data), size: data.length, created: false });
      assert.deepEqual(seen, ['PUT', 'PUT']);
      assert.ok((await readAll(await store.get(hashBuffer(data)))).equals(data));
      await store.close();
      await new Promise((resolve) => proxy.close(resolve));
    });

    it('staged parts of 6 MiB are published by server-side copy, and the staging objects are removed', async () => {
      const settings = server.settings();
      const store = await S3BlobStore.open(settings);
      const data = randomBytes(13 * 1024 * 1024);
      const cut = 6 * 1024 * 1024;
      const parts = [];
      for (const [offset, end] of [[0, cut], [cut, 2 * cut], [2 * cut, data.length]]) parts.push({ part: offset, offset, ...(await store.putPart('up-copy', offset, offset, chunksOf(data.subarray(offset, end), 256 * 1024))) });
      assert.equal((await keysOf(settings.bucket)).length, 3);
      assert.equal((await store.completeParts('up-copy', parts, data.length, hashBuffer(data), null)).hash, hashBuffer(data));
      assert.deepEqual(await keysOf(settings.bucket), [`blobs/${hashBuffer(data).padStart(32, '0')}`]);
      assert.ok((await readAll(await store.get(hashBuffer(data)))).equals(data));
      await store.close();
    });
  });
}
