import type { DatabaseOpsPort } from '../ports.js';

/**
 * The query function's pages (templates/query-rds, src/db/pages.ts), one invocation each, following the cursor
 * until the last: the caller writes each page out before the next is asked for, so memory holds one page
 * (under Lambda's 6 MB response limit) whatever the result's size.
 */
export interface FunctionPage {
  rows: Record<string, unknown>[];
  rowCount: number;
  bytes: number;
  cursor: string | null;
  ms: number;
  dbMs: number;
  columns?: Array<{ name: string; type: string }>;
  command?: string;
  resumed?: boolean;
  truncated?: boolean;
}

export async function* functionPages(ops: DatabaseOpsPort, event: Record<string, unknown>): AsyncGenerator<FunctionPage> {
  let cursor: string | null = null;
  do {
    const page = (await ops.invokeQuery({ ...event, ...(cursor ? { cursor } : {}) })) as unknown as FunctionPage;
    yield page;
    cursor = page.cursor;
  } while (cursor);
}
