import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { filterSql, InvalidFrameParam, mirrored, optionsView, orderSql, parseFilter, parseFrameOptions, readsBackwards, requestedRows, unknownColumns } from '../../src/core/frame-options.js';

const refused = (query: Record<string, unknown>, param: string) =>
  assert.throws(() => parseFrameOptions(query), (error: unknown) => error instanceof InvalidFrameParam && error.extra.type === 'invalid_data_frame_param' && error.message.startsWith(`The ${param} parameter`), JSON.stringify(query));

describe('data frame view options (Oxen\'s DFOptsQuery)', () => {
  it('defaults to page 1 of 100 rows and clamps the page and its size as Oxen does', () => {
    const options = parseFrameOptions({});
    assert.deepEqual([options.page, options.pageSize, options.rows, requestedRows(options)], [1, 100, null, { start: 0, end: 100 }]);
    assert.deepEqual(requestedRows(parseFrameOptions({ page: '0', page_size: '0' })), { start: 0, end: 1 });
    assert.deepEqual(requestedRows(parseFrameOptions({ page: '3', page_size: '10' })), { start: 20, end: 30 });
    assert.equal(parseFrameOptions({ page_size: '1000000' }).pageSize, 10_000);
  });

  it('takes slice over row over the page; an empty parameter asks for nothing', () => {
    assert.deepEqual(parseFrameOptions({ slice: '330..333', row: '7' }).rows, { start: 330, end: 333 });
    assert.deepEqual(parseFrameOptions({ row: '7' }).rows, { start: 7, end: 8 });
    assert.equal(parseFrameOptions({ slice: 'all' }).rows, null);
    const empty = parseFrameOptions({ slice: '', take: '', sql: '', filter: '', columns: '', sort_by: '' });
    assert.deepEqual([empty.rows, empty.take, empty.sql, empty.filter, empty.columns, empty.sortBy], [null, null, null, null, null, null]);
  });

  it('refuses what it cannot use, naming the parameter', () => {
    for (const slice of ['5', '1..2..3', 'a..b', '..', '0..', '..10', '10..3', '3..3', '0..10001']) refused({ slice }, 'slice');
    for (const take of ['abc', '1,,2', '1,-2', '4294967296']) refused({ take }, 'take');
    refused({ take: Array.from({ length: 10_001 }, () => '1').join(',') }, 'take');
    refused({ page: '-1' }, 'page');
    refused({ page_size: '1.5' }, 'page_size');
    refused({ row: '99999999999999999999' }, 'row');
    refused({ reverse: '1' }, 'reverse');
    refused({ randomize: 'True' }, 'randomize');
    refused({ delimiter: ';;' }, 'delimiter');
    refused({ filter: 'label' }, 'filter');
    refused({ filter: '== x' }, 'filter');
    refused({ columns: ['a', 'b'] }, 'columns');
  });

  it('parses filters with the longest operator first and joins them left to right', () => {
    assert.deepEqual(parseFilter('label == person'), { conditions: [{ column: 'label', op: '==', value: 'person' }], joins: [] });
    const chained = parseFilter('a >= 1 && b != x y || c < 2');
    assert.deepEqual(chained.conditions.map((c) => [c.column, c.op, c.value]), [['a', '>=', '1'], ['b', '!=', 'x y'], ['c', '<', '2']]);
    assert.equal(filterSql(chained), `(("a" >= '1') AND "b" <> 'x y') OR "c" < '2'`);
    assert.equal(filterSql(parseFilter(`it's == "q"`)), `"it's" = '"q"'`);
    assert.equal(filterSql(parseFilter('x"y == a\'b')), `"x""y" = 'a''b'`);
  });

  it('orders, reverses and mirrors pages', () => {
    assert.equal(orderSql(parseFrameOptions({ sort_by: 'a b' })), 'ORDER BY "a b" ASC NULLS FIRST');
    assert.equal(orderSql(parseFrameOptions({ sort_by: 'a', reverse: 'true' })), 'ORDER BY "a" DESC NULLS LAST');
    assert.equal(orderSql(parseFrameOptions({ randomize: 'true', sort_by: 'a' })), 'ORDER BY random()');
    assert.equal(readsBackwards(parseFrameOptions({ reverse: 'true' })), true);
    assert.equal(readsBackwards(parseFrameOptions({ reverse: 'true', sort_by: 'a' })), false);
    assert.deepEqual(mirrored({ start: 0, end: 10 }, 95), { start: 85, end: 95 });
    assert.deepEqual(mirrored({ start: 90, end: 100 }, 95), { start: 0, end: 5 });
    assert.deepEqual(mirrored({ start: 100, end: 110 }, 95), { start: 0, end: 0 });
  });

  it('names the columns it refers to that a frame lacks, and lists the options as Oxen does', () => {
    const options = parseFrameOptions({ columns: 'a,z', sort_by: 'y', filter: 'x == 1 && a == 2', take: '1,2', slice: '5..9' });
    assert.deepEqual(unknownColumns(options, ['a', 'b']), ['z', 'y', 'x']);
    assert.deepEqual(
      optionsView(options).map((o) => [o.name, o.value]),
      [['text2sql', null], ['sql', null], ['filter', 'x == 1 && a == 2'], ['unique', null], ['should_randomize', false], ['sort_by', 'y'], ['should_reverse', false], ['take', '1,2'], ['slice', '5..9'], ['head', null], ['tail', null]],
    );
  });
});
