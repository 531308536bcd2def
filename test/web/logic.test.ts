import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseDelimited, parseJsonLines } from '../../web/src/csv.js';
import { diffRows } from '../../web/src/diff-rows.js';
import { parseRoute, repoHref, splitResource } from '../../web/src/router.js';

/** The web interface's pure pieces: addresses, revision/path splitting, table parsing, diff folding. */

describe('web interface: addresses', () => {
  it('parses every page address, decoding each segment', () => {
    assert.deepEqual(parseRoute('/'), { page: 'home' });
    assert.deepEqual(parseRoute('/me/data'), { page: 'repo', namespace: 'me', repo: 'data', view: 'tree', resource: '' });
    assert.deepEqual(parseRoute('/me/data/blob/feature/x/a%20b%2Fc.txt'), { page: 'repo', namespace: 'me', repo: 'data', view: 'blob', resource: 'feature/x/a b/c.txt' });
    assert.deepEqual(parseRoute('/me/data/compare/main..dev'), { page: 'repo', namespace: 'me', repo: 'data', view: 'compare', resource: 'main..dev' });
    assert.deepEqual(parseRoute('/me'), { page: 'not-found' });
    assert.deepEqual(parseRoute('/me/data/nonsense/main'), { page: 'not-found' });
    assert.deepEqual(parseRoute('/me/data/tree/%E0%A4%A'), { page: 'not-found' });
  });

  it('builds addresses that parse back to the same page', () => {
    const href = repoHref('me', 'data', 'blob', 'main/dir with space/#1?.txt');
    assert.equal(href, '/me/data/blob/main/dir%20with%20space/%231%3F.txt');
    assert.deepEqual(parseRoute(href), { page: 'repo', namespace: 'me', repo: 'data', view: 'blob', resource: 'main/dir with space/#1?.txt' });
  });

  it('takes the longest branch name that starts the resource, else the first segment as a commit', () => {
    const branches = ['main', 'feature', 'feature/x'];
    assert.deepEqual(splitResource('feature/x/data/a.csv', branches, 'main'), { revision: 'feature/x', path: 'data/a.csv' });
    assert.deepEqual(splitResource('feature/y.txt', branches, 'main'), { revision: 'feature', path: 'y.txt' });
    assert.deepEqual(splitResource('abc123/data', branches, 'main'), { revision: 'abc123', path: 'data' });
    assert.deepEqual(splitResource('', branches, 'main'), { revision: 'main', path: '' });
  });
});

describe('web interface: tables from text', () => {
  it('reads quoted fields with delimiters, quotes and newlines, and CRLF line ends', () => {
    assert.deepEqual(parseDelimited('a,b\r\n"x, y","say ""hi""\nthere"\r\n3,\n', ',', true), [
      ['a', 'b'],
      ['x, y', 'say "hi"\nthere'],
      ['3', ''],
    ]);
    assert.deepEqual(parseDelimited('a\tb\n1\t2', '\t', true), [['a', 'b'], ['1', '2']]);
  });

  it('drops the last row of a cut-off file, which may be partial', () => {
    assert.deepEqual(parseDelimited('a,b\n1,2\n3,', ',', false), [['a', 'b'], ['1', '2']]);
    assert.deepEqual(parseJsonLines('{"a":1}\n{"b":[2]}\n{"a":', false), { columns: ['a', 'b'], rows: [['1', ''], ['', '[2]']] });
  });
});

describe('web interface: line diffs', () => {
  it('numbers both sides and folds unchanged runs beyond three lines of context', () => {
    const unchanged = (n: number) => Array.from({ length: n }, (_, i) => ({ modification: 'Unchanged' as const, text: `same ${i}` }));
    const rows = diffRows([...unchanged(10), { modification: 'Removed', text: 'old' }, { modification: 'Added', text: 'new' }, ...unchanged(10)]);
    assert.deepEqual(rows[0], { kind: 'fold', count: 7 });
    const lines = rows.filter((r) => r.kind === 'line');
    assert.equal(lines.length, 3 + 2 + 3);
    assert.deepEqual(lines.map((r) => [r.old, r.new]).slice(2, 6), [[10, 10], [11, null], [null, 11], [12, 12]]);
    assert.deepEqual(rows.at(-1), { kind: 'fold', count: 7 });
  });
});
