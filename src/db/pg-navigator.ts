/** Evaluated just before `pg` (see pg.ts): a global navigator as Node 21+ has one, for pg's import-time check. */
export const navigatorAdded = !('navigator' in globalThis);
if (navigatorAdded) Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` }, configurable: true });
