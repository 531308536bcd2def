import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteMetaStore } from '../../src/storage/sqlite-meta-store.js';
import { metaStoreConformance } from './meta-store-conformance.js';

metaStoreConformance('SqliteMetaStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'yoke-meta-'));
  const store = new SqliteMetaStore(join(dir, 'meta.db'));
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
