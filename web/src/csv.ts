/**
 * Rows of delimited text (RFC 4180 quoting: fields in double quotes may hold delimiters, newlines and
 * doubled quotes). `complete` false means the text was cut off: its last, possibly partial, row is dropped.
 */
export function parseDelimited(text: string, delimiter: string, complete: boolean): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === delimiter) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      if (c === '\r' && text[i + 1] === '\n') i++;
    } else field += c;
    i++;
  }
  if (complete && (field !== '' || row.length > 0)) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** JSON Lines: one object per line; `complete` false drops the last (cut) line. */
export function parseJsonLines(text: string, complete: boolean): { columns: string[]; rows: string[][] } {
  const lines = text.split('\n');
  if (!complete) lines.pop();
  const objects = lines.filter((l) => l.trim() !== '').map((l) => {
    try {
      const value = JSON.parse(l) as unknown;
      return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { value };
    } catch {
      return { line: l };
    }
  });
  const columns = [...new Set(objects.flatMap((o) => Object.keys(o)))];
  return { columns, rows: objects.map((o) => columns.map((c) => cellText(o[c]))) };
}

export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
