import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { formatScope, grants, parseDuration, parseScope } from '../../src/core/scopes.js';

describe('scopes', () => {
  it('parses and formats read|write|admin over everything, a namespace or a repository', () => {
    for (const text of ['read', 'write:ns', 'admin:ns/repo-1', 'read:a.b/c_d']) assert.equal(formatScope(parseScope(text)), text);
    assert.deepEqual(parseScope('write:ns/rr'), { level: 'write', namespace: 'ns', repo: 'rr' });
    for (const bad of ['', 'owner', 'read:', 'read:ns/', 'write:../x', 'admin:ns/a/b', 'READ', 'read:n s']) {
      assert.throws(() => parseScope(bad), { httpStatus: 400 } as never, bad);
    }
  });

  it('grants a level and the levels below it, on the scope\'s target and what it contains', () => {
    const on = (namespace: string | null, repo: string | null) => ({ namespace, repo });
    const scopes = [parseScope('write:ns'), parseScope('admin:other/one')];
    assert.equal(grants(scopes, 'read', on('ns', 'r')), true);
    assert.equal(grants(scopes, 'write', on('ns', 'r')), true);
    assert.equal(grants(scopes, 'write', on('ns', null)), true);
    assert.equal(grants(scopes, 'admin', on('ns', 'r')), false);
    assert.equal(grants(scopes, 'admin', on('other', 'one')), true);
    assert.equal(grants(scopes, 'read', on('other', 'two')), false);
    assert.equal(grants(scopes, 'read', on('other', null)), false, 'a repository scope does not cover its namespace');
    assert.equal(grants(scopes, 'read', on(null, null)), false, 'nor does a namespace scope cover the server');
    assert.equal(grants([parseScope('read')], 'read', on(null, null)), true);
    assert.equal(grants([parseScope('read')], 'write', on('ns', 'r')), false);
    assert.equal(grants([], 'read', on('ns', 'r')), false);
  });

  it('reads durations written 30d, 12h, 10m or 5s', () => {
    assert.equal(parseDuration('30d'), 30 * 86_400_000);
    assert.equal(parseDuration('12h'), 12 * 3_600_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('5s'), 5000);
    for (const bad of ['', '0s', '5', 'd', '1.5h', '-1d', '3w', '10 m']) assert.throws(() => parseDuration(bad), { httpStatus: 400 } as never, bad);
  });
});
