import { connect as tcpConnect } from 'node:net';
import type { Context } from '../context.js';
import type { DatabaseLocation, Target } from '../ports.js';
import { withTarget } from '../targets/index.js';
import { UserError } from '../ui/errors.js';
import { info } from '../ui/output.js';
import type { DatabaseRole } from './roles.js';

/**
 * How the query and db commands reach PostgreSQL (`--via`):
 * - direct: a pg connection from this machine (the local target always);
 * - lambda: on aws, the query function (query recent/sql) or the maintenance function (db migrate/retention),
 *   which run in the database's VPC: RDS in private subnets needs no tunnel;
 * - auto (the default): direct when the database's host accepts a TCP connection within 2 s, else lambda,
 *   saying which on stderr.
 */
export type Via = 'direct' | 'lambda';
export const VIA_OPTIONS = ['auto', 'direct', 'lambda'] as const;

export const REACH_TIMEOUT_MS = 2_000;

/** Whether the database's host:port accepts a TCP connection within the timeout (no login: nothing is sent). */
export async function reachable(location: DatabaseLocation, timeoutMs = REACH_TIMEOUT_MS): Promise<boolean> {
  const addr = addressOf(location);
  if (!addr) return true; // a socket path or the PG* variables: pg knows, and says so itself
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: addr.host, port: addr.port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function addressOf(location: DatabaseLocation): { host: string; port: number } | undefined {
  const c = location.clientConfig as { host?: unknown; port?: unknown } | undefined;
  if (typeof c?.host === 'string') return { host: c.host, port: Number(c.port ?? 5432) };
  if (!location.url) return undefined;
  try {
    const u = new URL(location.url);
    const host = u.hostname || u.searchParams.get('host') || '';
    if (!host || host.startsWith('/')) return undefined;
    return { host: host.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) };
  } catch {
    return undefined;
  }
}

/**
 * The way to reach the database for this command. `lambda` on the local target is refused (the local
 * platform's database is on this machine).
 */
export async function chooseVia(target: Target, flag: string | undefined, role: DatabaseRole): Promise<{ via: Via; location?: DatabaseLocation }> {
  const asked = (flag ?? 'auto') as (typeof VIA_OPTIONS)[number];
  if (asked === 'lambda') {
    if (!target.databaseOps) throw new UserError('--via lambda needs the aws target: the local platform reaches its database directly.', 'drop --via, or use --target aws.', 'VIA_UNAVAILABLE');
    return { via: 'lambda' };
  }
  if (asked === 'direct' || !target.databaseOps) return { via: 'direct', location: await target.database.locate(role) };
  const location = await target.database.locate(role);
  if (await reachable(location)) {
    info(`Reaching ${location.display} directly (--via direct).`);
    return { via: 'direct', location };
  }
  info(`${location.display} does not answer from here within ${REACH_TIMEOUT_MS / 1000} s: going through the function in its VPC (--via lambda).`);
  return { via: 'lambda' };
}

/** chooseVia with the command's target open for fn. */
export async function withVia<T>(ctx: Context, flag: string | undefined, role: DatabaseRole, fn: (via: Via, target: Target, location?: DatabaseLocation) => Promise<T>): Promise<T> {
  return withTarget(ctx, async (target) => {
    const { via, location } = await chooseVia(target, flag, role);
    return fn(via, target, location);
  });
}
