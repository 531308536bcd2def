/** core/frame-compare: the request as Oxen's clients send it, and the plan with Oxen's defaults. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { comparableType, parseCompareRequest, planComparison } from '../../src/core/frame-compare.js';
import { YokeError } from '../../src/core/errors.js';

const columns = (spec: string) => spec.split(',').map((c) => ({ name: c.split(':')[0], type: c.split(':')[1] ?? 'VARCHAR' }));
const refused = (work: () => unknown, pattern: RegExp) => assert.throws(work, (e: unknown) => e instanceof YokeError && e.httpStatus === 400 && pattern.test(e.message));

describe('parseCompareRequest', () => {
  const body = { compare_id: 'c', left: { path: 'a.csv', version: 'main' }, right: { path: './b.csv', version: 'dev' } };

  it('reads Oxen\'s TabularCompareBody, ignoring alias_as and compare_method, and deduplicating', () => {
    const request = parseCompareRequest(
      {
        ...body,
        keys: [{ left: 'id', right: 'id', alias_as: 'x', compare_method: null }, { left: 'id', right: 'id' }],
        compare: [{ left: 'a', right: 'a', compare_method: 'exact' }, { right: 'b' }],
        display: [{ left: 'c', right: 'c' }, { left: 'd', right: null }],
      },
      null,
    );
    assert.deepEqual(request, {
      compareId: 'c',
      left: { path: 'a.csv', version: 'main' },
      right: { path: 'b.csv', version: 'dev' },
      keys: ['id'],
      targets: ['a', 'b'],
      display: [
        { column: 'c', side: 'left' },
        { column: 'c', side: 'right' },
        { column: 'd', side: 'left' },
      ],
    });
    assert.equal(parseCompareRequest(body, 'from-url').compareId, 'from-url');
  });

  it('refuses what it cannot read, saying what is wrong', () => {
    refused(() => parseCompareRequest(null, null), /JSON object/);
    refused(() => parseCompareRequest({ ...body, compare_id: '' }, null), /compare_id/);
    refused(() => parseCompareRequest({ ...body, right: { path: 'b.csv' } }, null), /right must be/);
    refused(() => parseCompareRequest({ ...body, keys: [{ left: 'id', right: 'key' }] }, null), /'id' on the left and 'key' on the right/);
    refused(() => parseCompareRequest({ ...body, compare: [{ left: null, right: null }] }, null), /must name a column/);
    refused(() => parseCompareRequest({ ...body, display: [{ left: 3 }] }, null), /column name/);
    assert.throws(() => parseCompareRequest({ ...body, left: { path: '../x.csv', version: 'main' } }, null), (e: unknown) => e instanceof YokeError && e.httpStatus === 400);
  });
});

describe('planComparison', () => {
  const left = columns('id:BIGINT,name,score:DOUBLE,old');
  const right = columns('id:INTEGER,name,score,new');

  it('takes Oxen\'s defaults: keys alone compare the other common columns; display the rest from each side', () => {
    const plan = planComparison(left, right, { keys: ['id'], targets: [], display: [] });
    assert.deepEqual([plan.targets, plan.display], [
      ['name', 'score'],
      [
        { column: 'old', side: 'left' },
        { column: 'new', side: 'right' },
      ],
    ]);
    assert.deepEqual(plan.output.map((c) => c.name), ['id', 'name.left', 'name.right', 'score.left', 'score.right', 'old.left', 'new.right']);
    assert.deepEqual(plan.retyped, [
      { name: 'id', left: 'BIGINT', right: 'INTEGER' },
      { name: 'score', left: 'DOUBLE', right: 'VARCHAR' },
    ]);
  });

  it('with no keys compares rows whole: the common columns are keys, the one-sided ones compared', () => {
    const plan = planComparison(left, right, { keys: [], targets: [], display: [] });
    assert.deepEqual([plan.keys, plan.targets, plan.display], [['id', 'name', 'score'], ['new', 'old'], []]);
    assert.deepEqual(plan.output.map((c) => c.name), ['id', 'name', 'score', 'new.right', 'old.left']);
  });

  it('refuses missing columns, targets without keys, files with nothing in common and clashing names', () => {
    refused(() => planComparison(left, right, { keys: ['old'], targets: [], display: [] }), /Key column 'old' is not in the right file/);
    refused(() => planComparison(left, right, { keys: ['id'], targets: ['nope'], display: [] }), /in neither file/);
    refused(() => planComparison(left, right, { keys: ['id'], targets: [], display: [{ column: 'new', side: 'left' }] }), /not in the left file/);
    refused(() => planComparison(left, right, { keys: [], targets: ['name'], display: [] }), /at least one key/);
    refused(() => planComparison(columns('a'), columns('b'), { keys: [], targets: [], display: [] }), /no column in common/);
    refused(() => planComparison(columns('x,x.left'), columns('x,x.left'), { keys: ['x.left'], targets: ['x'], display: [] }), /both be named 'x.left'/);
  });
});

describe('comparableType', () => {
  it('compares integers as integers, a float at float precision, anything else as text', () => {
    assert.equal(comparableType('BIGINT', 'BIGINT'), null);
    assert.equal(comparableType('BIGINT', 'INTEGER'), 'HUGEINT');
    assert.equal(comparableType('DOUBLE', 'FLOAT'), 'FLOAT');
    assert.equal(comparableType('BIGINT', 'DECIMAL(10,2)'), 'DOUBLE');
    assert.equal(comparableType('DATE', 'VARCHAR'), 'VARCHAR');
  });
});
