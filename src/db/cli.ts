import { existsSync } from 'node:fs';
import type pg from 'pg';
import type { Context } from '../context.js';
import type { Spec } from '../spec/schema.js';
import { withTarget } from '../targets/index.js';
import { UserError } from '../ui/errors.js';
import { connectionUserError, isConnectionError, resolveDatabaseUrl, withClient, type DatabaseRole, type DatabaseTarget } from './connection.js';

/**
 * What the db and query commands share: which server. With iotctl.yaml, the target's database port says
 * (embedded or configured locally; RDS on AWS); without one, DATABASE_URL or the PG* variables.
 */
export async function databaseTarget(ctx: Context, role: DatabaseRole): Promise<DatabaseTarget> {
  if (!existsSync(ctx.paths.specFile)) return resolveDatabaseUrl({ stateDir: ctx.paths.stateDir, role });
  return withTarget(ctx, (target) => target.database.locate(role));
}

/** The spec when iotctl.yaml exists (db commands also work with only DATABASE_URL and no spec). */
export function specIfPresent(ctx: Context): Spec | undefined {
  return existsSync(ctx.paths.specFile) ? ctx.spec.spec : undefined;
}

/**
 * Runs fn connected as `role` (on the embedded server: reader for queries, owner for migrations and retention).
 * A server that stops answering half-way (frozen, gone) is a user error too, like one that refuses to connect.
 */
export async function withDatabase<T>(
  ctx: Context,
  role: DatabaseRole,
  fn: (client: pg.Client, target: DatabaseTarget) => Promise<T>,
  extra: pg.ClientConfig = {},
): Promise<T> {
  const target = await databaseTarget(ctx, role);
  return withClient(target, extra, (client) =>
    fn(client, target).catch((error: unknown) => {
      throw isConnectionError(error) ? connectionUserError(error, target) : error;
    }),
  );
}

/** "relation iot_messages does not exist": the schema was never created on this server. */
export function missingSchemaError(error: unknown, target: DatabaseTarget): Error {
  const e = error as { code?: string };
  if (e.code === '42P01' || e.code === '42883') {
    return new UserError(`The iotctl tables do not exist on ${target.display}.`, 'create them with `iotctl db migrate` (the local platform does this when it starts).', 'DB_NO_SCHEMA');
  }
  return error instanceof Error ? error : new Error(String(error));
}
