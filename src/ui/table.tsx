import { Box, Text, render } from 'ink';
import { type Column, formatCell } from './output.js';

export function Table<Row>({ rows, columns, title, footer }: { rows: Row[]; columns: Column<Row>[]; title?: string; footer?: string }) {
  const width = process.stdout.columns || 120;
  const cells = rows.map((r) => columns.map((c) => formatCell(c.get(r), true)));
  const max = Math.max(12, Math.floor((width - columns.length * 2) / Math.max(columns.length, 1)));
  const widths = columns.map((c, i) => Math.min(max, Math.max(c.header.length, ...cells.map((row) => row[i]!.length))));
  const fit = (s: string, w: number) => (s.length > w ? s.slice(0, w - 1) + '…' : s.padEnd(w));
  return (
    <Box flexDirection="column">
      {title ? <Text bold>{title}</Text> : null}
      <Text bold>{columns.map((c, i) => fit(c.header.toUpperCase(), widths[i]!)).join('  ')}</Text>
      {cells.map((row, r) => (
        <Text key={r}>{row.map((cell, i) => fit(cell, widths[i]!)).join('  ')}</Text>
      ))}
      {rows.length === 0 ? <Text dimColor>(no rows)</Text> : null}
      {footer ? <Text dimColor>{footer}</Text> : null}
    </Box>
  );
}

export async function renderTable<Row>(rows: Row[], columns: Column<Row>[], opts: { title?: string; footer?: string }): Promise<void> {
  const app = render(<Table rows={rows} columns={columns} title={opts.title} footer={opts.footer} />, { stdout: process.stdout, patchConsole: false });
  app.unmount();
  await app.waitUntilExit();
}
