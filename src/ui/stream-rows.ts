import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { formatCell } from './output.js';
import { writeNewFileStream, type WriteOptions } from '../services/files.js';

/**
 * Query results written row by row (`athena run --out` / `--format csv|json`), on either target: rows are
 * pulled from an async iterable only as fast as the destination drains, so memory holds one batch of
 * lines, not the result. The cells are formatted as toCsv formats them.
 */

export type RowFormat = 'csv' | 'json';

/** Lines are joined into chunks of about this size before a write: one write per row would cost more than the rows. */
const CHUNK_CHARS = 64 * 1024;

export function csvField(value: unknown): string {
  const s = formatCell(value, false);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Writes the rows to `out` (not ended); resolves with the number of rows once the last chunk is accepted. */
export async function streamRows(out: Writable, format: RowFormat, columns: readonly string[], rows: AsyncIterable<readonly unknown[]>): Promise<number> {
  let chunk = '';
  let count = 0;
  const flush = async () => {
    if (!chunk) return;
    const ok = out.write(chunk);
    chunk = '';
    // Backpressure: wait for the destination instead of buffering the whole result in its queue.
    // (once() rejects if the stream errors meanwhile.)
    if (!ok) await once(out, 'drain');
  };
  if (format === 'csv') chunk = columns.map(csvField).join(',') + '\n';
  else chunk = '[';
  for await (const row of rows) {
    if (format === 'csv') chunk += row.map(csvField).join(',') + '\n';
    else chunk += (count ? ',\n' : '\n') + JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, row[i] ?? null])));
    count++;
    if (chunk.length >= CHUNK_CHARS) await flush();
  }
  if (format === 'json') chunk += count ? '\n]\n' : ']\n';
  await flush();
  return count;
}

/**
 * streamRows into a new file (see writeNewFileStream: created exclusively beside `path`, moved into place
 * when complete, so a failed query leaves nothing and an existing file is replaced only with `force`).
 */
export async function writeRowsToFile(
  path: string,
  format: RowFormat,
  columns: readonly string[],
  rows: AsyncIterable<readonly unknown[]>,
  opts: WriteOptions = {},
): Promise<{ rows: number; bytes: number }> {
  const { result, bytes } = await writeNewFileStream(path, { flag: '--out', ...opts }, (file) => streamRows(file, format, columns, rows));
  return { rows: result, bytes };
}
