/** The CLI's one text-table renderer (exceptions, search, dlq). */

/** A plain, aligned text table; whitespace in a cell is flattened, cells longer than `max` are cut with an ellipsis. */
export function table(headers: string[], rows: string[][], max: Record<number, number> = {}): string {
  const fit = (cell: string, i: number) => {
    const limit = max[i];
    const flat = cell.replace(/\s+/g, ' ');
    return limit !== undefined && flat.length > limit ? `${flat.slice(0, limit - 1)}…` : flat;
  };
  const cells = [headers, ...rows.map((r) => r.map(fit))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
