/**
 * `pg`, imported so that Node 20 does not load undici for nothing. At import, pg asks whether it runs on
 * Cloudflare Workers: without a global `navigator` (Node 20 has none; Node 21+ has one) it builds a fetch
 * `Response`, which loads undici, about 15% of `query recent`'s start-up. A navigator present for the
 * import alone gives pg the answer Node 21+ gives.
 */
const missing = !('navigator' in globalThis);
if (missing) Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` }, configurable: true });
const { default: pg } = await import('pg');
if (missing) delete (globalThis as { navigator?: unknown }).navigator;

export const { Client } = pg;
