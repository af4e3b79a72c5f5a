/** Plain-text formatting for the CLI: aligned tables (sizes and counts are core/units.ts). */

/** Rows as aligned columns; columns listed in `right` are right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string {
  const widths = header.map((h) => h.length);
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i], c.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (right.includes(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Lines for per-item notes: `<item>: <note>`, or `<n> items: <note>` when several share one. */
export function notes(items: readonly (readonly [string, string | undefined])[]): string[] {
  const byNote = new Map<string, string[]>();
  for (const [name, note] of items) if (note !== undefined) byNote.set(note, [...(byNote.get(note) ?? []), name]);
  return [...byNote].map(([note, names]) => (names.length === 1 ? `${names[0]}: ${note}` : `${names.length} layers: ${note}`));
}
