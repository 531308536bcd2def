import { statfs } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Yoke } from '../../services/yoke.js';
import { MIN_OXEN_CLIENT_VERSION, ok } from '../envelope.js';
import { health, minVersion, serverVersion } from '../schemas/server.js';

const GB = 1024 ** 3;

export function metaRoutes(app: FastifyInstance, yoke: Yoke, dataDir = process.cwd()) {
  const tags = ['server'];
  app.get('/api/version', { schema: { tags, summary: 'Server version (also a liveness probe)', ...serverVersion } }, async () =>
    ok('resource_found', { version: '0.1.0' }),
  );
  app.get('/api/min_version', { schema: { tags, summary: 'Minimum supported Oxen client version', ...minVersion } }, async () =>
    ok('resource_found', { version: MIN_OXEN_CLIENT_VERSION }),
  );
  app.get('/api/health', { schema: { tags, summary: 'Health and disk usage', ...health } }, async () => {
    const fs = await statfs(dataDir);
    const total = fs.blocks * fs.bsize;
    // As df counts: free is what an unprivileged process may still write (the root reserve excluded), and the
    // share used is of what such a process can ever have, used + free.
    const free = fs.bavail * fs.bsize;
    const used = (fs.blocks - fs.bfree) * fs.bsize;
    return ok('resource_found', {
      disk_usage: {
        total_gb: total / GB,
        used_gb: used / GB,
        free_gb: free / GB,
        percent_used: used + free === 0 ? 0 : (used / (used + free)) * 100,
      },
    });
  });
}
