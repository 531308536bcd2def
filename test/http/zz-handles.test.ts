import { it } from 'node:test';
import { startTestServer, createRepo } from '/work/main/test/helpers/server.js';
it('x', async () => {
  const s = await startTestServer();
  await createRepo(s, 'a', 'b');
  await s.stop();
  setTimeout(() => {
    for (const h of (process as any)._getActiveHandles()) console.log('HANDLE', h.constructor?.name, h.remoteAddress ?? '', h.remotePort ?? '', h._idleTimeout ?? '');
  }, 500).unref();
});
