import type { DiffLine } from '../../src/client/index.js';

/** Unchanged lines kept around each change; longer unchanged runs fold into one line. */
const CONTEXT_LINES = 3;

export type Row = { kind: 'line'; line: DiffLine; old: number | null; new: number | null } | { kind: 'fold'; count: number };

/** Numbers the lines on both sides and folds long unchanged runs. */
export function diffRows(lines: DiffLine[]): Row[] {
  const numbered: Array<Extract<Row, { kind: 'line' }>> = [];
  let oldLine = 1;
  let newLine = 1;
  for (const line of lines) {
    numbered.push({ kind: 'line', line, old: line.modification === 'Added' ? null : oldLine++, new: line.modification === 'Removed' ? null : newLine++ });
  }
  const near = numbered.map(() => false);
  numbered.forEach((row, i) => {
    if (row.line.modification === 'Unchanged') return;
    for (let j = Math.max(0, i - CONTEXT_LINES); j <= Math.min(numbered.length - 1, i + CONTEXT_LINES); j++) near[j] = true;
  });
  const rows: Row[] = [];
  for (let i = 0; i < numbered.length; i++) {
    if (near[i]) {
      rows.push(numbered[i]);
      continue;
    }
    let j = i;
    while (j < numbered.length && !near[j]) j++;
    rows.push({ kind: 'fold', count: j - i });
    i = j - 1;
  }
  return rows;
}
