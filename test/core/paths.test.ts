import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ancestors, basename, dirname, joinRepoPath, normalizeRepoPath, splitRepoPath } from '../../src/core/paths.js';
import { assertBranchName, assertRepoName, isValidBranchName } from '../../src/core/names.js';
import { BadRequest, InvalidPath } from '../../src/core/errors.js';

function assertInvalidPath(fn: () => unknown, label: string) {
  assert.throws(
    fn,
    (err: unknown) => err instanceof InvalidPath && err instanceof BadRequest && err.httpStatus === 400,
    label,
  );
}

describe('normalizeRepoPath', () => {
  test('accepts and normalises relative POSIX paths', () => {
    const cases: Array<[string, string]> = [
      ['a', 'a'],
      ['a/b', 'a/b'],
      ['./a/./b', 'a/b'],
      ['a/b/', 'a/b'],
      ['./a/b/./', 'a/b'],
      ['a/b/c.txt', 'a/b/c.txt'],
      ['.hidden/file', '.hidden/file'],
      ['...', '...'],
      ['a..b/c', 'a..b/c'],
      ['with space/ü.csv', 'with space/ü.csv'],
    ];
    for (const [raw, expected] of cases) assert.equal(normalizeRepoPath(raw), expected, raw);
  });

  test('rejects traversal, absolute paths, empty segments, backslashes and NUL', () => {
    const bad = ['..', '../a', 'a/..', 'a/../b', './..', '/etc/passwd', '/', 'a//b', '//a', 'a/b//', 'a\\b', '..\\a', 'a\0b', '\0'];
    for (const raw of bad) assertInvalidPath(() => normalizeRepoPath(raw), JSON.stringify(raw));
    for (const raw of bad) assertInvalidPath(() => normalizeRepoPath(raw, { allowRoot: true }), JSON.stringify(raw));
  });

  test('the root is rejected unless allowRoot', () => {
    for (const raw of ['', '.', './', './.']) {
      assertInvalidPath(() => normalizeRepoPath(raw), JSON.stringify(raw));
      assert.equal(normalizeRepoPath(raw, { allowRoot: true }), '', JSON.stringify(raw));
    }
    assert.equal(normalizeRepoPath('a/b', { allowRoot: true }), 'a/b');
  });

  test('rejects non-strings', () => {
    for (const bad of [undefined, null, 1, {}]) assertInvalidPath(() => normalizeRepoPath(bad as unknown as string), String(bad));
  });

  test('normalisation is idempotent', () => {
    for (const raw of ['./a/./b/', 'a/b', 'x/./y/z/']) {
      const once = normalizeRepoPath(raw);
      assert.equal(normalizeRepoPath(once), once);
    }
  });
});

describe('path helpers', () => {
  test('joinRepoPath skips empty parts', () => {
    assert.equal(joinRepoPath('', 'a'), 'a');
    assert.equal(joinRepoPath('a', 'b', 'c'), 'a/b/c');
    assert.equal(joinRepoPath('a', '', 'c'), 'a/c');
    assert.equal(joinRepoPath(), '');
  });

  test('splitRepoPath', () => {
    assert.deepEqual(splitRepoPath(''), []);
    assert.deepEqual(splitRepoPath('a'), ['a']);
    assert.deepEqual(splitRepoPath('a/b/c'), ['a', 'b', 'c']);
  });

  test('basename and dirname', () => {
    assert.equal(basename('a'), 'a');
    assert.equal(basename('a/b/c.txt'), 'c.txt');
    assert.equal(dirname('a'), '');
    assert.equal(dirname('a/b/c.txt'), 'a/b');
    assert.equal(joinRepoPath(dirname('a/b/c'), basename('a/b/c')), 'a/b/c');
  });

  test('ancestors', () => {
    assert.deepEqual(ancestors(''), []);
    assert.deepEqual(ancestors('a'), []);
    assert.deepEqual(ancestors('a/b'), ['a']);
    assert.deepEqual(ancestors('a/b/c'), ['a', 'a/b']);
  });
});

describe('assertRepoName', () => {
  test('accepts valid names', () => {
    for (const name of ['my-repo', 'ab', 'a1', 'Repo_1.0', 'ox', '1data', 'MNIST', 'a.b', 'a-b_c.d']) {
      assert.equal(assertRepoName('repository', name), name);
      assert.equal(assertRepoName('namespace', name), name);
    }
  });

  test('rejects invalid names with a 400', () => {
    const bad: unknown[] = ['', '-repo', '_repo', '.repo', '..', 'a..b', 'a/b', 'a b', 'a\\b', 'a:b', 'ä-repo', 'repo!', 'a\0b', undefined, null, 42];
    for (const name of bad) {
      assert.throws(
        () => assertRepoName('repository', name),
        (err: unknown) => err instanceof BadRequest && err.httpStatus === 400 && /repository/.test(err.message),
        String(name),
      );
    }
    assert.throws(() => assertRepoName('namespace', 'a/b'), /namespace/);
  });
});

describe('branch names', () => {
  test('valid branch names', () => {
    const good = ['main', 'dev', 'feature/x', 'feature/x/y', 'release/v1.2', 'a-b_c', 'user@host', 'x.y', 'v1.0.0', 'a.lockx', 'lock', 'b'.repeat(255)];
    for (const name of good) {
      assert.ok(isValidBranchName(name), JSON.stringify(name));
      assert.equal(assertBranchName(name), name);
    }
  });

  test('invalid branch names', () => {
    const bad: unknown[] = [
      '',
      '..',
      'a..b',
      'a/../b',
      '~',
      'a~1',
      'a^',
      'a:b',
      'a?',
      'a[0]',
      'a*',
      'a\\b',
      'a b',
      ' main',
      'main ',
      'a\tb',
      'a\nb',
      'a\x00b',
      'a\x1fb',
      'a\x7fb',
      '@',
      'a@{1}',
      '@{upstream}',
      'x.lock',
      'a/b.lock',
      'a.',
      'a/b.',
      '.hidden',
      'a/.b',
      'a/.b/c',
      '.',
      'a/',
      '/a',
      'a//b',
      'b'.repeat(256),
      undefined,
      null,
      7,
      ['main'],
    ];
    for (const name of bad) {
      assert.equal(isValidBranchName(name), false, JSON.stringify(name));
      assert.throws(
        () => assertBranchName(name),
        (err: unknown) => err instanceof BadRequest && err.httpStatus === 400,
        JSON.stringify(name),
      );
    }
  });
});
