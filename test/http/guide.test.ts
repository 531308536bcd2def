import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const GUIDE = join(here, '../fixtures/seeds/002_798ac8799acf746a.txt');
const SHARED_GUIDE = join(here, '../../../shared/seeds/002_798ac8799acf746a.txt');
const REPO = 'your-username/my-dataset';

/** The local files the guide's examples read, with random contents. */
const LOCAL_FILES = [
  'example.txt',
  'image_1.jpg',
  'image_2.jpg',
  'image_3.jpg',
  'data/file1.txt',
  'data/file2.csv',
  'images/photo.jpg',
  'experiment.txt',
];

/** Where each local file must end up, per branch, after the whole guide has run. */
const EXPECTED: Record<string, Record<string, string>> = {
  main: {
    'data/example.txt': 'example.txt',
    'images/image_1.jpg': 'image_1.jpg',
    'images/image_2.jpg': 'image_2.jpg',
    'images/image_3.jpg': 'image_3.jpg',
    'data/file1.txt': 'data/file1.txt',
    'data/file2.csv': 'data/file2.csv',
    'data/photo.jpg': 'images/photo.jpg',
    'images/photo.jpg': 'images/photo.jpg',
  },
  development: {
    'data/example.txt': 'example.txt',
    'images/image_1.jpg': 'image_1.jpg',
    'experiments/test1.txt': 'experiment.txt',
  },
};

async function pythonWithRequests(): Promise<string> {
  for (const candidate of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    try {
      await run(candidate, ['-c', 'import requests']);
      return candidate;
    } catch {}
  }
  throw new Error('No python3 with the requests package (set PYTHON, or install python3-requests)');
}

describe("the guide's Python client, unchanged", () => {
  let server: TestServer;
  let workDir: string;
  let output: string;
  const contents = new Map<string, Buffer>();

  before(async () => {
    server = await startTestServer();
    workDir = await mkdtemp(join(tmpdir(), 'yoke-guide-'));
    for (const file of LOCAL_FILES) {
      const bytes = randomBytes(1000 + Math.floor(Math.random() * 5000));
      contents.set(file, bytes);
      await mkdir(join(workDir, dirname(file)), { recursive: true });
      await writeFile(join(workDir, file), bytes);
    }
    const python = await pythonWithRequests();
    const result = await run(python, [join(here, '../fixtures/run_guide.py'), GUIDE, server.url, workDir], { timeout: 60_000 });
    output = result.stdout;
  });

  after(async () => {
    await server.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  it('uses the guide as published', { skip: !existsSync(SHARED_GUIDE) && 'shared seeds not beside the checkout' }, () => {
    assert.equal(readFileSync(GUIDE, 'utf8'), readFileSync(SHARED_GUIDE, 'utf8'));
  });

  it('reports success at every step, and a 409 only for the repeated repository creation', () => {
    assert.match(output, /--- guide done ---/);
    assert.doesNotMatch(output, /✗/, output);
    assert.equal(output.match(/✓ Repository created successfully/g)?.length, 1, output);
    assert.equal(output.match(/⚠ Repository already exists/g)?.length, 1, output);
    assert.match(output, /✓ Branch 'development' created/);
    assert.match(output, /✓ All files uploaded successfully/);
  });

  for (const [branch, files] of Object.entries(EXPECTED)) {
    it(`stored every file byte for byte on ${branch}`, async () => {
      for (const [remote, local] of Object.entries(files)) {
        const res = await server.fetch(`/api/repos/${REPO}/file/${branch}/${remote}`);
        assert.equal(res.status, 200, `${branch}/${remote}`);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), contents.get(local), `${branch}/${remote}`);
      }
    });
  }

  it('recorded one commit per upload request, in one linear history', async () => {
    const { status, body } = await server.json(`/api/repos/${REPO}/commits/history/main`);
    assert.equal(status, 200);
    const messages = body.commits.map((c: { message: string }) => c.message);
    // Newest first: the advanced multi-file upload, the multiple-files example, the single file.
    // Re-uploading identical files (the complete example and the one-at-a-time loop) adds only
    // the file that was new (images/photo.jpg).
    assert.deepEqual(messages, ['Add photo.jpg', 'Add multiple files', 'Adding images', 'Add example file']);
    for (let i = 0; i < body.commits.length - 1; i++) {
      assert.deepEqual(body.commits[i].parent_ids, [body.commits[i + 1].id]);
    }
    const dev = await server.json(`/api/repos/${REPO}/commits/history/development`);
    assert.deepEqual(
      dev.body.commits.map((c: { message: string }) => c.message),
      ['Add experimental data', 'Adding images', 'Add example file'],
    );
  });
});

describe("the guide's curl examples, unchanged", () => {
  let server: TestServer;
  let workDir: string;
  const example = randomBytes(2048);

  before(async () => {
    server = await startTestServer();
    workDir = await mkdtemp(join(tmpdir(), 'yoke-guide-curl-'));
    await writeFile(join(workDir, 'example.txt'), example);
  });

  after(async () => {
    await server.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  it('creates the repository, uploads the file and creates the branch', async () => {
    const guide = readFileSync(GUIDE, 'utf8');
    const blocks = [...guide.matchAll(/^[ \t]*```bash cURL[^\n]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm)].map((m) => m[1]);
    assert.equal(blocks.length, 3);
    for (const block of blocks) {
      const script = block.replaceAll('https://hub.oxen.ai', server.url);
      const { stdout } = await run('bash', ['-c', script], { cwd: workDir });
      assert.equal(JSON.parse(stdout).status, 'success', stdout);
    }
    const file = await server.fetch('/api/repos/your-username/my-dataset/file/development/data/example.txt');
    assert.equal(file.status, 200);
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), example);
    const history = await server.json('/api/repos/your-username/my-dataset/commits/history/main');
    assert.deepEqual(history.body.commits.map((c: { message: string }) => c.message), ['Add example file']);
  });
});
