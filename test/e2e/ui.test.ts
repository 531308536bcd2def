import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildWeb, type Manifest } from '../../web/build.js';
import { AUTHOR, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';
import { closeSharedBrowsers, DESKTOP, ENGINES, horizontalOverflow, openPage, PHONE, screenshot, sharedBrowser, type WatchedPage } from './browser.js';
import { png, wav, webm } from './fixtures.js';

/**
 * The web interface in headless Chromium and Firefox (each skipped when absent) against a real server: browsing,
 * each file preview, a directory of 100,000 entries, history, a commit, a diff, branches, workspaces, a folder
 * upload with progress and the token prompt, at desktop and phone widths, with no console errors. Screenshots go
 * to test/e2e/screenshots/ (Firefox's to its firefox/ folder).
 */

const WIDE_ENTRIES = 100_000;
/** Row diffs need the data-frame compare routes (issue 13). */
const noTableCompare = existsSync(new URL('../../src/server/routes/compare-data-frames.ts', import.meta.url)) ? undefined : 'needs the compare/data_frames routes';

after(closeSharedBrowsers);

for (const engine of ENGINES) describe(`web interface in ${engine.name}`, { skip: engine.missing }, () => {
  const metrics: Record<string, number> = {};
  // Firefox runs the tests of what a browser can change (rendering, media, events, uploads, keyboard, widths);
  // the rest is the same page logic and API in any browser, so it runs once, keeping the Firefox pass short.
  const chromiumOnly = engine.name === 'chromium' ? undefined : 'Chromium only: no browser changes what it tests, and the Firefox pass is kept short';
  let server: TestServer;
  let browser: Browser;
  let manifest: Manifest;
  const open: WatchedPage[] = [];

  /** A fresh page; its console must stay clean (checked when the test ends). */
  const watch = async (viewport = DESKTOP) => {
    const watched = await openPage(browser, viewport);
    open.push(watched);
    return watched;
  };
  const url = (path: string) => server.url + path;

  before(async () => {
    manifest = await buildWeb();
    [server, browser] = await Promise.all([startTestServer(), sharedBrowser(engine)]);
    const text = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}: ${'data '.repeat(8)}`).join('\n') + '\n';
    await createRepo(server, 'other', 'alpha');
    await createRepo(server, 'demo', 'empty');
    await createRepo(server, 'demo', 'dataset');
    const csv = ['id,name,score', ...Array.from({ length: 250 }, (_, i) => `${i + 1},"row ${i + 1}, quoted",${(i * 0.5).toFixed(1)}`)].join('\n') + '\n';
    const files = [
      { name: 'README.md', content: '# Demo dataset\n\nImages, sounds and tables for **testing**.\n\n- see [the data](data/train.csv)\n\n<script>window.pwned = true</script>\n' },
      { name: 'data/train.csv', content: csv },
      { name: 'data/events.jsonl', content: '{"event":"open","count":1}\n{"event":"close","count":2}\n' },
      { name: 'images/cat-1.png', content: png(64, [200, 80, 40]) },
      { name: 'images/cat-2.png', content: png(64, [40, 120, 200]) },
      { name: 'images/cat-3.png', content: png(64, [60, 160, 80]) },
      { name: 'media/tone.wav', content: wav(2) },
      { name: 'media/clip.webm', content: await webm(browser) },
      { name: 'src/main.py', content: 'def main():\n    print("hello")\n\nmain()\n' },
      { name: 'big/large.txt', content: text(12_000) },
      { name: 'bin/blob.bin', content: Buffer.from([0, 1, 2, 3, 0, 255]) },
    ].map((f) => ({ ...f, field: 'files[]' }));
    assert.equal((await putFiles(server, 'demo/dataset', 'main', files, { ...AUTHOR, message: 'Add the demo data' })).status, 200);
    const change = [{ name: 'main.py', content: 'def main():\n    print("hello, world")\n\nmain()\n', field: 'files[]' }];
    assert.equal((await putFiles(server, 'demo/dataset', 'main/src', change, { ...AUTHOR, message: 'Greet the world' })).status, 200);
    await server.json('/api/repos/demo/dataset/branches', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_name: 'feature', from_name: 'main' }) });
    assert.equal((await putFiles(server, 'demo/dataset', 'feature', [{ name: 'notes.txt', content: 'a note\n' }], { ...AUTHOR, message: 'Add notes on feature' })).status, 200);
    // A branch never merged, for the comparisons after 'feature' is merged.
    await server.json('/api/repos/demo/dataset/branches', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_name: 'experiment', from_name: 'main' }) });
    assert.equal((await putFiles(server, 'demo/dataset', 'experiment/src', [{ name: 'main.py', content: 'def main():\n    print("bonjour")\n\nmain()\n' }], { ...AUTHOR, message: 'Say it in French' })).status, 200);
    // On experiment the table gains a column, row 2's score changes, row 3 goes and row 251 arrives.
    const revised = csv
      .trimEnd()
      .split('\n')
      .filter((line) => !line.startsWith('3,'))
      .map((line, i) => (i === 0 ? `${line},flag` : line.startsWith('2,') ? '2,"row 2, quoted",9.9,y' : `${line},y`));
    const table = [{ name: 'train.csv', content: [...revised, '251,"row 251, quoted",125.0,n'].join('\n') + '\n' }];
    assert.equal((await putFiles(server, 'demo/dataset', 'experiment/data', table, { ...AUTHOR, message: 'Revise the table' })).status, 200);
    await server.json('/api/repos/demo/dataset/workspaces', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workspace_id: 'ws-review', branch_name: 'main', name: 'review' }) });
    await seedWideDirectory(server);
  });

  after(async () => {
    await server?.stop();
    await writeFile(join(engine.screenshots, 'metrics.json'), JSON.stringify({ ...metrics, assets: manifest?.sizes }, null, 2));
    console.log(`web interface metrics in ${engine.name}`, JSON.stringify(metrics));
  });

  const expectCleanConsole = async () => {
    const errors = open.flatMap((p) => p.errors);
    await Promise.all(open.splice(0).map((p) => p.close()));
    assert.deepEqual(errors, []);
  };

  it('is served small: the first page loads a script and a stylesheet, both compressed', { skip: chromiumOnly }, async () => {
    const html = await server.fetch('/');
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const script = await server.fetch(`/-/assets/${manifest.script}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(script.headers.get('content-encoding'), 'gzip');
    assert.match(script.headers.get('cache-control') ?? '', /immutable/);
    const initial = manifest.sizes[manifest.script].gzip + manifest.sizes[manifest.style].gzip;
    metrics.initialGzipBytes = initial;
    assert.ok(initial < 40 * 1024, `the first page's script and style are ${initial} bytes gzipped`);
    // The API keeps its own answers: unknown API addresses are still JSON 404s.
    const api = await server.json('/api/nothing/here');
    assert.equal(api.status, 404);
    assert.equal(api.body.status_message, 'resource_not_found');
  });

  it('lists repositories newest first, finds them by name and creates one', { skip: chromiumOnly }, async () => {
    const { page } = await watch();
    await page.goto(url('/'));
    await page.getByRole('link', { name: 'demo/dataset' }).waitFor();
    metrics.firstContentfulPaintMs = Math.round(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1));
    const names = await page.locator('.repo-name').allTextContents();
    assert.deepEqual(names.slice(-3), ['demo/dataset', 'demo/empty', 'other/alpha']);
    await screenshot(page, 'home');
    await page.getByLabel('Find a repository').fill('alp');
    assert.deepEqual(await page.locator('.repo-name').allTextContents(), ['other/alpha']);
    await page.getByRole('button', { name: 'New repository' }).click();
    await page.getByLabel('Namespace').fill('made');
    await page.getByLabel('Name', { exact: true }).fill('in-browser');
    await page.getByLabel('Your name').fill(AUTHOR.name);
    await page.getByLabel('Your email').fill(AUTHOR.email);
    await page.getByRole('button', { name: 'Create repository' }).click();
    await page.getByText('This repository is empty').waitFor();
    assert.equal(new URL(page.url()).pathname, '/made/in-browser');
    await expectCleanConsole();
  });

  it("opens the guide's address: the tree with sizes, last commits, breadcrumbs, a branch selector and the README", async () => {
    const { page } = await watch();
    await page.goto(url('/demo/dataset'));
    const readme = page.locator('.markdown');
    await readme.locator('h1', { hasText: 'Demo dataset' }).waitFor();
    // Raw HTML in a README is shown as text, never run.
    assert.equal(await readme.locator('script').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned), undefined);
    const row = page.locator('.entry', { hasText: 'README.md' });
    await row.waitFor();
    assert.match(await row.textContent() ?? '', /Add the demo data.*B/);
    await screenshot(page, 'tree');
    await page.getByRole('link', { name: 'data', exact: true }).click();
    await page.locator('.entry', { hasText: 'train.csv' }).waitFor();
    assert.deepEqual(await page.locator('.breadcrumbs a, .breadcrumbs [aria-current]').allTextContents(), ['dataset', 'data']);
    await page.locator('.branch-select select').selectOption('feature');
    await page.waitForURL(/\/demo\/dataset\/tree\/feature\/data$/);
    await page.locator('.breadcrumbs').getByRole('link', { name: 'dataset' }).click();
    await page.locator('.entry', { hasText: 'notes.txt' }).waitFor();
    await expectCleanConsole();
  });

  it('previews text with line numbers, and truncates a large file with a download link', async () => {
    const { page } = await watch();
    await page.goto(url('/demo/dataset/blob/main/src/main.py'));
    await page.locator('.code .lines', { hasText: 'hello, world' }).waitFor();
    assert.equal(await page.locator('.code .gutter').textContent(), '1\n2\n3\n4');
    await screenshot(page, 'blob-text');
    const download = await page.getByRole('link', { name: 'Download' }).getAttribute('href');
    assert.equal(await (await server.fetch(download!)).text(), 'def main():\n    print("hello, world")\n\nmain()\n');
    await page.goto(url('/demo/dataset/blob/main/big/large.txt'));
    await page.getByText('Download the whole file').waitFor();
    const shown = (await page.locator('.code .lines').textContent())!.split('\n');
    assert.ok(shown.length > 1000 && shown.length < 12_000, `${shown.length} lines shown`);
    assert.equal(shown[0], `line 1: ${'data '.repeat(8)}`);
    await page.goto(url('/demo/dataset/blob/main/bin/blob.bin'));
    await page.getByText('This file is binary').waitFor();
    await expectCleanConsole();
  });

  it('shows images inline and a directory of images as a gallery', async () => {
    const { page } = await watch();
    await page.goto(url('/demo/dataset/blob/main/images/cat-2.png'));
    const image = page.locator('.media img');
    await image.waitFor();
    await page.waitForFunction(() => (document.querySelector('.media img') as HTMLImageElement | null)?.naturalWidth === 64);
    await screenshot(page, 'blob-image');
    await page.goto(url('/demo/dataset/tree/main/images'));
    await page.getByRole('button', { name: 'Gallery' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('.gallery img')].filter((i) => i.complete && i.naturalWidth === 64).length === 3);
    await screenshot(page, 'gallery');
    await expectCleanConsole();
  });

  it('plays audio and video, seeking through Range requests', async () => {
    const { page } = await watch();
    const ranges: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/file/main/media/') && request.headers().range) ranges.push(request.headers().range);
    });
    await page.goto(url('/demo/dataset/blob/main/media/tone.wav'));
    await page.waitForFunction(() => (document.querySelector('audio') as HTMLAudioElement | null)?.duration === 2);
    await page.goto(url('/demo/dataset/blob/main/media/clip.webm'));
    await page.waitForFunction(() => {
      const video = document.querySelector('video');
      return video !== null && video.readyState >= 1;
    });
    await page.evaluate(() => {
      document.querySelector('video')!.currentTime = 0.3;
    });
    await page.waitForFunction(() => !document.querySelector('video')!.seeking);
    await screenshot(page, 'blob-video');
    assert.ok(ranges.length > 0, 'the media elements asked for byte ranges');
    const partial = await server.fetch('/api/repos/demo/dataset/file/main/media/tone.wav', { headers: { range: 'bytes=44-99' } });
    assert.equal(partial.status, 206);
    assert.equal((await partial.arrayBuffer()).byteLength, 56);
    await expectCleanConsole();
  });

  for (const dataFrames of [true, false]) {
    it(`shows CSV and JSON Lines as paged tables (${dataFrames ? 'through the data-frame routes when the server has them' : 'read from the file without them'})`, { skip: dataFrames ? undefined : chromiumOnly }, async () => {
      const { page } = await watch();
      // The page learns from its shell whether the server has data-frame routes; hide them to test the other path.
      if (!dataFrames) await page.addInitScript(() => new MutationObserver(() => document.body?.removeAttribute('data-features')).observe(document, { childList: true, subtree: true }));
      await showsTables(page, dataFrames);
    });
  }

  async function showsTables(page: Page, screenshots: boolean) {
    await page.goto(url('/demo/dataset/blob/main/data/train.csv'));
    const table = page.locator('table.data');
    await table.waitFor();
    assert.deepEqual(await table.locator('thead th').allTextContents(), ['#', 'id', 'name', 'score']);
    assert.equal(await table.locator('tbody tr').count(), 100);
    assert.equal(await table.locator('tbody tr').first().locator('td').nth(2).textContent(), 'row 1, quoted');
    await page.getByText('250 rows').waitFor();
    if (screenshots) await screenshot(page, 'blob-table');
    await page.getByRole('button', { name: 'Next →' }).click();
    await table.locator('tbody tr').first().locator('td', { hasText: 'row 101, quoted' }).waitFor();
    await page.goto(url('/demo/dataset/blob/main/data/events.jsonl'));
    await page.locator('table.data tbody tr').nth(1).waitFor();
    assert.deepEqual(await page.locator('table.data thead th').allTextContents(), ['#', 'event', 'count']);
    await expectCleanConsole();
  }

  it(`opens a directory of ${WIDE_ENTRIES.toLocaleString()} entries by its first page and pages through it while scrolling`, async () => {
    const { page } = await watch();
    // Warm: the first visit builds the listing's caches, as any earlier visitor would have.
    await page.goto(url('/big/wide/tree/main'));
    await page.locator('.entry', { hasText: 'many' }).waitFor();
    const open = async () => {
      const started = Date.now();
      await page.getByRole('link', { name: 'many', exact: true }).click();
      await page.locator('.entry', { hasText: 'f000000.txt' }).waitFor();
      return Date.now() - started;
    };
    // The first visit reads the whole directory from the store; later ones find it in the server's node cache.
    metrics.wideDirectoryFirstOpenMs = await open();
    await page.goBack();
    await page.locator('.entry', { hasText: 'many' }).waitFor();
    metrics.wideDirectoryOpenMs = await open();
    // The times are recorded (metrics.json, docs/UI.md), not asserted: a loaded machine would make a timed
    // test fail for nothing. What makes the open fast is asserted: rows drawn only for the view, below.
    await page.getByText(`${(WIDE_ENTRIES + 1).toLocaleString()} entries`).waitFor();
    // Its README is on the last of 501 pages: asked for by name, not by reading pages.
    await page.locator('.readme h1', { hasText: 'Many files' }).waitFor();
    assert.ok((await page.locator('.entry').count()) < 150, 'only the rows in view exist');
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const scrolled = Date.now();
    await page.locator('.entry', { hasText: 'f099999.txt' }).waitFor();
    metrics.wideDirectoryLastPageMs = Date.now() - scrolled;
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight / 2));
    await page.locator('.entry', { hasText: /f0(49|50)\d{3}\.txt/ }).first().waitFor();
    await screenshot(page, 'wide-directory');
    await expectCleanConsole();
  });

  it('shows history, a commit with its changed files, and a diff between two revisions', async () => {
    const { page } = await watch();
    await page.goto(url('/demo/dataset/commits/main'));
    await page.getByRole('link', { name: 'Greet the world' }).click();
    await page.locator('.commit-title', { hasText: 'Greet the world' }).waitFor();
    await page.locator('.changed-file', { hasText: 'src/main.py' }).waitFor();
    await page.locator('.diff-removed', { hasText: 'print("hello")' }).waitFor();
    await page.locator('.diff-added', { hasText: 'print("hello, world")' }).waitFor();
    await screenshot(page, 'commit');
    await page.goto(url('/demo/dataset/commits/main/src/main.py'));
    await page.getByText('2 commits').waitFor();
    assert.deepEqual(await page.locator('.commit-message').allTextContents(), ['Greet the world', 'Add the demo data']);
    await screenshot(page, 'history');
    await page.goto(url('/demo/dataset/compare/main..feature'));
    await page.locator('.changed-file', { hasText: 'notes.txt' }).waitFor();
    await page.locator('.diff-added', { hasText: 'a note' }).waitFor();
    await screenshot(page, 'compare');
    await expectCleanConsole();
  });

  it('shows a table changed between two revisions as a row diff: added, removed and modified rows, and new columns', { skip: noTableCompare ?? chromiumOnly }, async () => {
    const { page } = await watch();
    await page.goto(url('/demo/dataset/compare/main..experiment'));
    const diff = page.locator('.changed-file', { hasText: 'data/train.csv' }).locator('.table-diff');
    await diff.locator('tr.row-added').waitFor();
    // Rows are matched by the column that looks like an identity, so a changed score is a modified row.
    assert.equal(await diff.getByLabel('Match rows by').inputValue(), 'id');
    assert.equal((await diff.locator('.table-diff-head p').textContent())!.replace(/\s+/g, ' '), '1 added · 1 removed · 1 modified rows');
    await diff.getByText('Columns added: flag.').waitFor();
    assert.deepEqual(await diff.locator('thead th').allTextContents(), ['Change', 'id', 'name', 'score', 'flag (after)']);
    assert.deepEqual(await diff.locator('tr.row-added td').allTextContents(), ['+', '251', 'row 251, quoted', '125', 'n']);
    assert.deepEqual(await diff.locator('tr.row-removed td').allTextContents(), ['−', '3', 'row 3, quoted', '1', '']);
    assert.equal(await diff.locator('tr.row-modified del').textContent(), '0.5');
    assert.equal(await diff.locator('tr.row-modified ins').textContent(), '9.9');
    await screenshot(page, 'compare-table');
    // Matched by whole rows instead, a changed row is one removed and one added, and the new column changes every
    // other row: 252 changed rows, paged.
    await diff.getByLabel('Match rows by').selectOption('');
    await diff.locator('.table-diff-head p', { hasText: '2 added · 2 removed · 248 modified rows' }).waitFor();
    await diff.getByRole('button', { name: 'Next →' }).click();
    await diff.getByText('Page 2 of 3').waitFor();
    await expectCleanConsole();
  });

  it('lists branches with their compare and merge status, and workspaces', { skip: chromiumOnly }, async () => {
    const { page } = await watch();
    await page.goto(url('/demo/dataset/branches'));
    await page.locator('.branch-row', { hasText: 'feature' }).getByText('1 commit ahead of main').waitFor();
    await page.locator('.branch-row', { hasText: 'feature' }).getByText('merges cleanly').waitFor();
    await screenshot(page, 'branches');
    const feature = page.locator('.branch-row', { hasText: 'feature' });
    await feature.getByRole('button', { name: 'Merge into main' }).click();
    await feature.getByLabel('Your name').fill(AUTHOR.name);
    await feature.getByLabel('Your email').fill(AUTHOR.email);
    await feature.locator('.merge-form').getByRole('button', { name: 'Merge into main' }).click();
    await page.getByText('Merged (fast forward).').waitFor();
    await page.locator('.branch-row', { hasText: 'feature' }).getByText('nothing to merge').waitFor();
    assert.equal((await server.json('/api/repos/demo/dataset/branches/main')).body.branch.commit_id, (await server.json('/api/repos/demo/dataset/branches/feature')).body.branch.commit_id);
    await page.getByRole('link', { name: 'Workspaces' }).click();
    await page.getByRole('cell', { name: /review/ }).waitFor();
    await screenshot(page, 'workspaces');
    await expectCleanConsole();
  });

  it('uploads a folder from the browser with progress, then commits it', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'yoke-ui-upload-'));
    try {
      await mkdir(join(folder, 'batch/nested'), { recursive: true });
      // a.bin is over one request's worth (32 MiB): it goes in numbered parts (three of 16 MiB); b.bin and
      // c.txt go together in one multipart request.
      await writeFile(join(folder, 'batch/a.bin'), Buffer.alloc(40 * 1024 * 1024, 1));
      await writeFile(join(folder, 'batch/b.bin'), Buffer.alloc(20 * 1024 * 1024, 2));
      await writeFile(join(folder, 'batch/nested/c.txt'), 'nested file\n');
      const { page } = await watch();
      // Firefox's WebDriver BiDi cannot put a directory into a file input yet (153 ESR: "File error: Is
      // directory"), so there the folder's files are chosen as files at the folder's own address: the same
      // requests and progress, without the relative paths a folder gives (nested/c.txt lands beside a.bin).
      const folderPicker = engine.name === 'chromium';
      if (folderPicker) {
        await page.goto(url('/demo/dataset/upload/main/uploads'));
        await page.locator('input[webkitdirectory]').setInputFiles(join(folder, 'batch'));
      } else {
        await page.goto(url('/demo/dataset/upload/main/uploads/batch'));
        await page.locator('input[type=file][multiple]').setInputFiles(['a.bin', 'b.bin', 'nested/c.txt'].map((name) => join(folder, 'batch', name)));
      }
      await page.getByText('3 files, 60 MB').waitFor();
      const parts: string[] = [];
      page.on('request', (request) => {
        if (request.method() === 'PUT' && request.url().includes('/versions/uploads/')) parts.push(request.url().replace(/.*\/parts\//, ''));
      });
      await page.getByLabel('Commit message').fill('Upload a folder from the browser');
      await page.getByLabel('Your name').fill(AUTHOR.name);
      await page.getByLabel('Your email').fill(AUTHOR.email);
      // Record what the progress bar shows while the upload runs.
      await page.evaluate(() => {
        const seen: number[] = ((window as unknown as { progressSeen: number[] }).progressSeen = []);
        new MutationObserver(() => {
          const bar = document.querySelector('progress');
          if (bar) seen.push(bar.value / bar.max);
        }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
      });
      await page.getByRole('button', { name: 'Upload and commit' }).click();
      await page.waitForURL(folderPicker ? /\/demo\/dataset\/tree\/main\/uploads$/ : /\/demo\/dataset\/tree\/main\/uploads\/batch$/);
      await page.locator('.entry', { hasText: folderPicker ? 'batch' : 'a.bin' }).waitFor();
      const seen = await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
      assert.ok(seen.some((fraction) => fraction > 0 && fraction < 1), `progress seen: ${seen.join(', ')}`);
      const nested = await server.fetch(`/api/repos/demo/dataset/file/main/uploads/batch/${folderPicker ? 'nested/' : ''}c.txt`);
      assert.equal(await nested.text(), 'nested file\n');
      assert.deepEqual(parts, ['1', '2', '3']);
      const large = await server.fetch('/api/repos/demo/dataset/file/main/uploads/batch/a.bin', { method: 'HEAD' });
      assert.equal(large.headers.get('content-length'), String(40 * 1024 * 1024));
      const history = await server.json('/api/repos/demo/dataset/commits/history/main?page_size=1');
      assert.equal(history.body.commits[0].message, 'Upload a folder from the browser');
      await screenshot(page, 'upload-done');
      await expectCleanConsole();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('resumes a large upload interrupted by closing the page: the same file dropped again sends only the parts the server lacks', { skip: chromiumOnly }, async () => {
    const folder = await mkdtemp(join(tmpdir(), 'yoke-ui-resume-'));
    try {
      // 33 MiB: numbered parts of 16, 16 and 1 MiB (bytes no earlier test uploaded, so the server does not hold them whole).
      const size = 33 * 1024 * 1024;
      const file = join(folder, 'resumed.bin');
      await writeFile(file, Buffer.alloc(size, 7));
      const startUpload = async (page: Page) => {
        await page.goto(url('/demo/dataset/upload/main/resume'));
        await page.locator('input[type=file][multiple]').setInputFiles(file);
        await page.getByLabel('Commit message').fill('Resume a large upload');
        await page.getByLabel('Your name').fill(AUTHOR.name);
        await page.getByLabel('Your email').fill(AUTHOR.email);
        await page.getByRole('button', { name: 'Upload and commit' }).click();
      };
      // First visit: part 1 arrives, then the page is closed while part 2 is on its way.
      const first = await openPage(browser, DESKTOP);
      const partTwoStarted = new Promise<void>((resolve) => void first.page.route('**/parts/2', () => resolve()));
      const partOneStored = first.page.waitForResponse((response) => response.url().endsWith('/parts/1') && response.status() === 200);
      await startUpload(first.page);
      await partOneStored;
      await partTwoStarted;
      await first.close();
      const sent: string[] = [];
      const { page } = await watch();
      page.on('request', (request) => {
        if (request.method() === 'PUT' && request.url().includes('/versions/uploads/')) sent.push(request.url().replace(/.*\/parts\//, ''));
      });
      await startUpload(page);
      await page.waitForURL(/\/demo\/dataset\/tree\/main\/resume$/);
      await page.locator('.entry', { hasText: 'resumed.bin' }).waitFor();
      assert.deepEqual(sent, ['2', '3']);
      const stored = await server.fetch('/api/repos/demo/dataset/file/main/resume/resumed.bin', { headers: { range: `bytes=${size - 1}-${size - 1}` } });
      assert.deepEqual(new Uint8Array(await stored.arrayBuffer()), new Uint8Array([7]));
      assert.equal(stored.headers.get('content-range'), `bytes ${size - 1}-${size - 1}/${size}`);
      await expectCleanConsole();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('uploads chosen files into an empty repository, whose page then shows them', { skip: chromiumOnly }, async () => {
    const { page } = await watch();
    await page.goto(url('/demo/empty'));
    await page.getByRole('link', { name: 'Upload files' }).click();
    await page.locator('input[type=file][multiple]').setInputFiles([
      { name: 'first.txt', mimeType: 'text/plain', buffer: Buffer.from('first file\n') },
      { name: 'second.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') },
    ]);
    // A file dropped on the page joins them (a synthetic drop: its items have no file-system entries).
    await page.locator('.dropzone').evaluate((zone) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['dropped\n'], 'dropped.txt', { type: 'text/plain' }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    await page.getByText('3 files').waitFor();
    assert.equal(await page.getByLabel('Commit message').inputValue(), 'Add 3 files');
    await page.getByLabel('Your name').fill(AUTHOR.name);
    await page.getByLabel('Your email').fill(AUTHOR.email);
    await page.getByRole('button', { name: 'Upload and commit' }).click();
    await page.waitForURL(/\/demo\/empty\/tree\/main$/);
    await page.locator('.entry', { hasText: 'second.csv' }).waitFor();
    await page.locator('.entry', { hasText: 'dropped.txt' }).waitFor();
    await page.locator('.branch-select select').waitFor();
    await expectCleanConsole();
  });

  it('fits a phone: every page without sideways scrolling', async () => {
    const { page } = await watch(PHONE);
    const first = (await server.json('/api/repos/demo/dataset/commits/history/main?page_size=100')).body.commits.at(-1).id;
    const pages: Array<[string, string, string]> = [
      ['home', '/', '.repo-item'],
      ['tree', '/demo/dataset', '.entry'],
      ['blob-text', '/demo/dataset/blob/main/src/main.py', '.code'],
      ['blob-table', '/demo/dataset/blob/main/data/train.csv', 'table.data'],
      ['blob-image', '/demo/dataset/blob/main/images/cat-2.png', '.media img'],
      ['blob-video', '/demo/dataset/blob/main/media/clip.webm', 'video'],
      ['gallery', '/demo/dataset/tree/main/images', '.entry'],
      ['history', '/demo/dataset/commits/main', '.commit-message'],
      ['commit', `/demo/dataset/commit/${first}`, '.commit-title'],
      ['compare', '/demo/dataset/compare/main..experiment', '.diff'],
      ['compare-table', '/demo/dataset/compare/main..experiment', '.changed-file .table-diff, .changed-file .notice'],
      ['branches', '/demo/dataset/branches', '.branch-row'],
      ['workspaces', '/demo/dataset/workspaces', 'table.data'],
      ['upload', '/demo/dataset/upload/main', '.dropzone'],
      ['wide-directory', '/big/wide/tree/main/many', '.entry'],
    ];
    for (const [name, path, ready] of pages) {
      await page.goto(url(path));
      await page.locator(ready).first().waitFor();
      assert.ok((await horizontalOverflow(page)) <= 0, `${path} scrolls sideways on a phone`);
      await screenshot(page, name);
    }
    await expectCleanConsole();
  });

  it('is keyboard navigable from page to page: a skip link, links followed with Enter, focus on the new page', async () => {
    const { page } = await watch();
    /** Tabs until the focused element's text is `name`; fails after 80 stops. */
    const tabTo = async (name: string) => {
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press('Tab');
        if ((await page.evaluate(() => document.activeElement?.textContent?.trim())) === name) return;
      }
      assert.fail(`Tab never reached ${name}`);
    };
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim());
    await page.goto(url('/'));
    await page.locator('.repo-item').first().waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await focused(), 'main');
    await tabTo('demo/dataset');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/demo\/dataset$/);
    // Focus moved to the new page's content, so the next stops are its links, not the header's again.
    assert.equal(await focused(), 'main');
    await page.locator('.entry', { hasText: 'data' }).first().waitFor();
    await tabTo('data');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/tree\/main\/data$/);
    await page.locator('.entry', { hasText: 'train.csv' }).waitFor();
    await tabTo('train.csv');
    await page.keyboard.press('Enter');
    await page.locator('table.data tbody tr').first().waitFor();
    await tabTo('Branches');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/demo\/dataset\/branches$/);
    await page.locator('.branch-row').first().waitFor();
    await expectCleanConsole();
  });
});

for (const engine of ENGINES) describe(`web interface with authentication on, in ${engine.name}`, { skip: engine.missing }, () => {
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    await buildWeb();
    [server, browser] = await Promise.all([startTestServer({ auth: true }), sharedBrowser(engine)]);
    const admin = await server.yoke.auth.create({ name: 'Root', email: 'root@example.com', scopes: ['admin'] });
    const created = await server.json('/api/repos', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.secret}` },
      body: JSON.stringify({ namespace: 'secret', name: 'plans', user: AUTHOR }),
    });
    assert.equal(created.status, 200);
    const media = await server.json('/api/repos', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.secret}` },
      body: JSON.stringify({ namespace: 'open', name: 'media', user: AUTHOR }),
    });
    assert.equal(media.status, 200);
    const form = new FormData();
    for (const [key, value] of Object.entries({ ...AUTHOR, message: 'Add a tone' })) form.append(key, value);
    form.append('files[]', new Blob([new Uint8Array(wav(2))]), 'tone.wav');
    assert.equal((await server.json('/api/repos/open/media/file/main/sounds', { method: 'PUT', body: form, headers: { authorization: `Bearer ${admin.secret}` } })).status, 200);
    const readme = new FormData();
    for (const [key, value] of Object.entries({ ...AUTHOR, message: 'Add a README with a picture' })) readme.append(key, value);
    readme.append('files[]', new Blob(['# Sounds\n\n![cover](cover.png)\n']), 'README.md');
    readme.append('files[]', new Blob([new Uint8Array(png(64, [90, 30, 160]))]), 'cover.png');
    assert.equal((await server.json('/api/repos/open/media/file/main', { method: 'PUT', body: readme, headers: { authorization: `Bearer ${admin.secret}` } })).status, 200);
  });
  after(async () => {
    await server?.stop();
  });

  it('streams media and downloads through short-lived file links, never fetching a file whole into the page', async () => {
    const { secret } = await server.yoke.auth.create({ name: 'Listener', email: 'listener@example.com', scopes: ['read:open'] });
    const watched = await openPage(browser, DESKTOP, { token: secret });
    const { page } = watched;
    const fileRequests: Array<{ url: string; range?: string; authorization?: string }> = [];
    page.on('request', (request) => {
      if (request.url().includes('/file/')) fileRequests.push({ url: request.url(), range: request.headers().range, authorization: request.headers().authorization });
    });
    // A README's image is an img too: it loads through a file link.
    await page.goto(server.url + '/open/media');
    await page.waitForFunction(() => (document.querySelector('.markdown img') as HTMLImageElement | null)?.naturalWidth === 64);
    assert.match((await page.locator('.markdown img').getAttribute('src')) ?? '', /\/file\/[0-9a-f]+\/cover\.png\?link=/);
    fileRequests.length = 0;
    await page.goto(server.url + '/open/media/blob/main/sounds/tone.wav');
    await page.waitForFunction(() => (document.querySelector('audio') as HTMLAudioElement | null)?.duration === 2);
    const src = await page.locator('audio').getAttribute('src');
    assert.match(src ?? '', /\/api\/repos\/open\/media\/file\/[0-9a-f]+\/sounds\/tone\.wav\?link=/);
    // The player asked for ranges itself, with the link and no token; the page fetched no file bytes.
    assert.ok(fileRequests.length > 0 && fileRequests.every((r) => r.url.includes('?link=') && r.authorization === undefined), JSON.stringify(fileRequests));
    assert.ok(fileRequests.some((r) => r.range !== undefined), 'the player asked for byte ranges');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
    assert.equal(download.suggestedFilename(), 'tone.wav');
    assert.deepEqual(await readFile((await download.path())!), wav(2));
    await watched.close();
    assert.deepEqual(watched.errors, []);
  });

  it('asks for a token, shows nothing private without one, and uses the one given', async () => {
    const { secret } = await server.yoke.auth.create({ name: 'Reader', email: 'reader@example.com', scopes: ['read'] });
    const watched = await openPage(browser, DESKTOP);
    const { page } = watched;
    await page.goto(server.url + '/secret/plans');
    await page.getByRole('heading', { name: 'Sign in with a token' }).waitFor();
    assert.equal(await page.getByText('plans').count(), 0);
    await screenshot(page, 'token-prompt');
    await page.setViewportSize(PHONE);
    assert.ok((await horizontalOverflow(page)) <= 0, 'the token prompt scrolls sideways on a phone');
    await screenshot(page, 'token-prompt');
    await page.setViewportSize(DESKTOP);
    await page.getByLabel('Token').fill(secret);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('heading', { name: /secret\s*\/\s*plans/ }).waitFor();
    await page.getByText('This repository is empty').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in with a token' }).waitFor();
    await watched.close();
    assert.deepEqual(watched.errors, []);
  });
});

/** `big/wide`: one commit putting 100,000 entries into `many/`, all holding the same bytes, beside its README. */
async function seedWideDirectory(server: TestServer): Promise<void> {
  await createRepo(server, 'big', 'wide');
  // The README sorts after every f…txt, so it sits on the directory's last page.
  const first = await putFiles(server, 'big/wide', 'main', [{ name: 'seed.txt', content: 'x\n' }, { name: 'many/readme.md', content: '# Many files\n' }], { ...AUTHOR, message: 'Seed' });
  const { hash, size } = (await server.json('/api/repos/big/wide/meta/main/seed.txt')).body.entry as { hash: string; size: number };
  const repo = await server.yoke.repos.require('big', 'wide');
  const head = (await server.yoke.commitLog.find(repo, first.body.commit.id))!;
  const changes = new Map(Array.from({ length: WIDE_ENTRIES }, (_, i) => [`many/f${String(i).padStart(6, '0')}.txt`, { hash, size }]));
  await server.yoke.commits.commit({ repo, branch: 'main', base: head, changes, blobs: [{ hash, size }], author: AUTHOR, message: `Add ${WIDE_ENTRIES} files` });
}
