/**
 * maintenance-rds: the recent-data store's upkeep, run on a schedule in the database's VPC with the schema
 * owner's credentials (src/db/maintenance.ts): drops expired day partitions, deletes the straddling day's
 * expired rows, clusters each closed day by device once, creates the next days' partitions, and logs one JSON
 * line of what it did.
 *
 * Events: {} (a scheduled run), {"dryRun": true} (returns the plan, changes nothing), {"migrate": true}
 * (runs the schema migrations, which also create and grant the ingest and reader roles: src/db/roles.ts).
 * Connection as ingest-rds (database.ts): DATABASE_SECRET_ARN, DATABASE_IAM_AUTH, or DATABASE_URL locally.
 */
import { Client } from '../../src/db/pg.js';
import { parseDuration } from '../../src/db/duration.js';
import { runMaintenance, timed } from '../../src/db/maintenance.js';
import { migrate } from '../../src/db/migrations.js';
import { setRoleLogin } from '../../src/db/roles.js';
import type { Queryable } from '../../src/db/connection.js';
import { UserError } from '../../src/ui/errors.js';
import { parseSecret, readSecretFromAws, resolveConnection } from '../ingest-rds/database.js';

export interface MaintenanceEvent {
  dryRun?: boolean;
  migrate?: boolean;
  /** Overrides RETENTION for this run (e.g. "48h"). */
  keep?: string;
  /** The clock, as an ISO time (tests, and a run that catches up). */
  now?: string;
}

export async function handler(event: MaintenanceEvent | null = {}): Promise<Record<string, unknown>> {
  const e = event ?? {};
  const started = performance.now();
  const action = e.migrate ? 'migrate' : 'maintenance';
  try {
    for (const key of ['dryRun', 'migrate'] as const) {
      if (e[key] !== undefined && typeof e[key] !== 'boolean') throw new UserError(`"${key}" must be true or false.`, 'send {"dryRun": true}, {"migrate": true} or {}.', 'BAD_EVENT');
    }
    const now = e.now === undefined ? new Date() : new Date(e.now);
    if (Number.isNaN(now.getTime())) throw new UserError(`"now" is not a time: ${e.now}.`, 'give an ISO time, e.g. 2026-01-02T03:00:00Z.', 'BAD_EVENT');
    const keepMs = parseDuration(e.keep ?? process.env.RETENTION ?? '24h', e.keep ? 'keep' : 'RETENTION');
    const { config } = await resolveConnection();
    const client = new Client({ ...config, application_name: 'iotctl-maintenance-rds', connectionTimeoutMillis: Number(process.env.PG_CONNECT_TIMEOUT_MS ?? 10_000) });
    client.on('error', () => undefined);
    await client.connect();
    try {
      let result: Record<string, unknown>;
      if (e.migrate) {
        const db = timed(client);
        const m = await migrate(db);
        const logins = await setRoleLogins(db);
        result = { action, ...m, logins, ms: Math.round(performance.now() - started), dbMs: Math.round(db.ms()) };
      } else {
        const r = await runMaintenance(client, {
          keepMs,
          now,
          dryRun: e.dryRun ?? false,
          daysAhead: Number(process.env.DAYS_AHEAD ?? 2),
          lockTimeoutMs: Number(process.env.LOCK_TIMEOUT_MS ?? 5_000),
        });
        result = { action, ...r };
      }
      log({ level: 'info', ...result });
      return result;
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (error) {
    const err = error as Error & { code?: string; hint?: string };
    log({ level: 'error', action, dryRun: e.dryRun ?? false, error: err.message, code: err.code, ms: Math.round(performance.now() - started) });
    // A function error (not a result): Lambda counts it, the schedule's retries and dead-letter queue see it.
    throw error;
  }
}

/** One JSON line per run, as CloudWatch Logs Insights parses it. LOG_LEVEL=silent drops it (tests). */
function log(fields: Record<string, unknown>): void {
  if (process.env.LOG_LEVEL === 'silent') return;
  const line = JSON.stringify({ message: 'iotctl maintenance', ...fields });
  if (fields.level === 'error') console.error(line);
  else console.log(line);
}

/**
 * After a migration: lets the writer and reader roles log in. With WRITER_SECRET_ARN / READER_SECRET_ARN (the
 * role secrets `apply` on aws creates), each role gets its secret's password, read here inside the VPC so it is
 * never in an event or a log; rotating one is: change the secret, migrate again. With ROLE_LOGIN=iam (RDS IAM
 * authentication) the roles get rds_iam instead. Returns what it did, by role name (never a password).
 */
async function setRoleLogins(client: Queryable): Promise<Record<string, string>> {
  const done: Record<string, string> = {};
  for (const role of ['writer', 'reader'] as const) {
    const arn = process.env[`${role.toUpperCase()}_SECRET_ARN`];
    if (arn) {
      const secret = parseSecret(await readSecretFromAws(arn), arn);
      await setRoleLogin(client, role, secret.password);
      done[secret.username] = 'password from secret';
    } else if (process.env.ROLE_LOGIN === 'iam') {
      const name = role === 'writer' ? 'iotctl_writer' : 'iotctl_reader';
      await client.query(`DO $do$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN EXECUTE 'GRANT rds_iam TO ${name}'; EXECUTE 'ALTER ROLE ${name} LOGIN'; END IF; END $do$`);
      done[name] = 'rds_iam';
    }
  }
  return done;
}
