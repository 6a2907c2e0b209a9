/**
 * `pg`, imported so that Node 20 does not load undici for nothing. At import, pg asks whether it runs on
 * Cloudflare Workers: without a global `navigator` (Node 20 has none; Node 21+ has one) it builds a fetch
 * `Response`, which loads undici, about 15% of `query recent`'s start-up. pg-navigator.ts, evaluated first,
 * gives pg the answer Node 21+ gives; the navigator goes once pg is loaded. No top-level await: the
 * Lambda templates bundle this as CommonJS.
 */
import { navigatorAdded } from './pg-navigator.js';
import pg from 'pg';

if (navigatorAdded) delete (globalThis as { navigator?: unknown }).navigator;

export const { Client } = pg;
