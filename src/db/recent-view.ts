import type { Column } from '../ui/output.js';
import type { MessageRecord } from './queries.js';

/** How `query recent` lays out messages: fixed columns when piped, payload fields as columns on a terminal. */

/** Piped (TSV, CSV): stable columns a script can rely on. */
export const MESSAGE_COLUMNS: Column<MessageRecord>[] = [
  { header: 'ts', get: (m) => m.ts },
  { header: 'device_id', get: (m) => m.device_id },
  { header: 'topic', get: (m) => m.topic },
  { header: 'message_id', get: (m) => m.message_id },
  { header: 'payload', get: (m) => m.payload },
  { header: 'received_at', get: (m) => m.received_at },
];

/** Fields already shown in their own column (or the same for every row of one device). */
const HIDDEN_FIELDS = new Set(['ts', 'device_id', 'message_id', 'topic']);
const MAX_FIELD_COLUMNS = 12;

/**
 * On a terminal: TS, TOPIC (when any row has one), then each top-level payload field as a column
 * when the fields are scalars and all fit in `width`; otherwise one PAYLOAD column.
 */
export function terminalColumns(rows: readonly MessageRecord[], width: number): Column<MessageRecord>[] {
  const columns: Column<MessageRecord>[] = [{ header: 'ts', get: (m) => m.ts }];
  if (rows.some((r) => r.topic)) columns.push({ header: 'topic', get: (m) => m.topic });
  const fields: string[] = [];
  const widths = new Map<string, number>();
  let scalar = true;
  for (const row of rows) {
    for (const [key, value] of Object.entries(row.payload ?? {})) {
      if (HIDDEN_FIELDS.has(key)) continue;
      if (value !== null && typeof value === 'object') scalar = false;
      if (!widths.has(key)) fields.push(key);
      widths.set(key, Math.max(widths.get(key) ?? key.length, String(value).length));
    }
  }
  const fixedWidth = 20 + 2 + (columns.length > 1 ? Math.max(5, ...rows.map((r) => r.topic?.length ?? 0)) + 2 : 0);
  const fieldsWidth = fields.reduce((sum, f) => sum + widths.get(f)! + 2, 0);
  if (scalar && fields.length > 0 && fields.length <= MAX_FIELD_COLUMNS && fixedWidth + fieldsWidth <= width) {
    for (const field of fields) columns.push({ header: field, get: (m) => m.payload?.[field] });
  } else {
    columns.push({ header: 'payload', get: (m) => m.payload });
  }
  return columns;
}
