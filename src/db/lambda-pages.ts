import type { DatabaseOpsPort } from '../ports.js';
import type { Page } from './pages.js';

/**
 * The query function's pages (templates/query-rds, src/db/pages.ts), one invocation each, following the cursor
 * until the last: the caller writes each page out before the next is asked for, so memory holds one page
 * (under Lambda's 6 MB response limit) whatever the result's size.
 */
/** A page as the query function's handler returns it (JSON over Invoke). */
export type FunctionPage = Page;

export async function* functionPages(ops: DatabaseOpsPort, event: Record<string, unknown>): AsyncGenerator<FunctionPage> {
  let cursor: string | null = null;
  do {
    const page = (await ops.invokeQuery({ ...event, ...(cursor ? { cursor } : {}) })) as unknown as FunctionPage;
    yield page;
    cursor = page.cursor;
  } while (cursor);
}
