/**
 * The output port: results go to stdout, everything else (progress, info, warnings) to stderr.
 * Tables render with ink on a TTY and as TSV when piped; ink is imported lazily because it costs ~0.6 s.
 */
export interface Column<Row> {
  header: string;
  get: (row: Row) => unknown;
}

export const isTTY = () => Boolean(process.stdout.isTTY);
export const isInteractive = () => Boolean(process.stdout.isTTY && process.stderr.isTTY);

export function formatCell(value: unknown, tty = isTTY()): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return tty ? value.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function toTsv<Row>(rows: Row[], columns: Column<Row>[], header = true): string {
  const clean = (s: string) => s.replace(/[\t\n\r]/g, ' ');
  const lines = rows.map((r) => columns.map((c) => clean(formatCell(c.get(r), false))).join('\t'));
  if (header) lines.unshift(columns.map((c) => c.header.toLowerCase()).join('\t'));
  return lines.join('\n') + (lines.length ? '\n' : '');
}

export function toCsv<Row>(rows: Row[], columns: Column<Row>[]): string {
  const quote = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [columns.map((c) => quote(c.header)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => quote(formatCell(c.get(r), false))).join(','));
  return lines.join('\n') + '\n';
}

export async function printTable<Row>(rows: Row[], columns: Column<Row>[], opts: { title?: string; footer?: string } = {}): Promise<void> {
  if (!isTTY()) {
    process.stdout.write(toTsv(rows, columns));
    if (opts.footer) info(opts.footer);
    return;
  }
  const { renderTable } = await import('./table.js');
  await renderTable(rows, columns, opts);
}

export function printJson(data: unknown): void {
  process.stdout.write(JSON.stringify(data, null, process.stdout.isTTY ? 2 : undefined) + '\n');
}

export function printLine(line: string): void {
  process.stdout.write(line + '\n');
}

/** Progress and informational messages: stderr only. */
export function info(message: string): void {
  process.stderr.write(message + '\n');
}

export function warn(message: string): void {
  process.stderr.write(`Warning: ${message}\n`);
}
