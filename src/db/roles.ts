import type { Queryable } from './connection.js';

/**
 * Least privilege inside PostgreSQL, the same on every server (the embedded one, DATABASE_URL, RDS). Three roles:
 * - owner: whoever runs the migrations (iotctl_owner on the embedded server, the admin user elsewhere). It owns
 *   the tables and the partition function; migrations and maintenance (dropping, clustering partitions) only.
 * - writer (iotctl_writer): the ingest function. INSERT on iot_messages and iot_ingest_errors, and EXECUTE on
 *   iotctl_ensure_day_partition, a SECURITY DEFINER function that creates a day's partition with the owner's
 *   rights. It cannot read, delete, alter or drop anything.
 * - reader (iotctl_reader): the query function and the `query` commands. SELECT only, every transaction read-only.
 *
 * Roles belong to the whole server, grants to one database: migrate() calls ensureRoles() on every run, which
 * creates the two roles when they are missing (NOLOGIN: who may log in as them, and with which password, is the
 * target's business: the embedded server's setup, or `apply` on aws through setRoleLogin) and (re)grants them
 * in the current schema. A user without CREATEROLE still migrates; the result says which roles are missing.
 */
export type DatabaseRole = 'owner' | 'writer' | 'reader';

export const ROLE_NAMES: Readonly<Record<DatabaseRole, string>> = { owner: 'iotctl_owner', writer: 'iotctl_writer', reader: 'iotctl_reader' };

/** The tables the writer may insert into (the migrations create them). */
const WRITER_TABLES = ['iot_messages', 'iot_ingest_errors'];

export interface RolesResult {
  /** Roles this run created. */
  created: string[];
  /** Roles that exist and were granted their privileges in this schema. */
  granted: string[];
  /** Roles that do not exist and that this user may not create. */
  missing: string[];
  /** Set when something is missing: what it means and what to do. */
  warning?: string;
}

const quote = (name: string) => '"' + name.replace(/"/g, '""') + '"';

/** Creates the writer and reader roles when missing (and allowed) and grants them their privileges. Idempotent. */
export async function ensureRoles(client: Queryable, names: Pick<typeof ROLE_NAMES, 'writer' | 'reader'> = ROLE_NAMES): Promise<RolesResult> {
  const { rows: me } = await client.query<{ user: string; schema: string; db: string; may: boolean }>(
    `SELECT current_user AS user, current_schema() AS schema, current_database() AS db,
            (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) AS may`,
  );
  const { user, schema, db, may } = me[0]!;
  const result: RolesResult = { created: [], granted: [], missing: [] };
  for (const role of ['writer', 'reader'] as const) {
    const name = names[role];
    if (await roleExists(client, name)) continue;
    if (!may) {
      result.missing.push(name);
      continue;
    }
    // Another database on the same server may be migrating at the same moment: a duplicate is fine.
    const readOnly = role === 'reader' ? `ALTER ROLE ${name} SET default_transaction_read_only = on;` : '';
    await client.query(`DO $do$ BEGIN CREATE ROLE ${name} NOLOGIN; ${readOnly} EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $do$`);
    result.created.push(name);
  }
  const s = quote(schema);
  const fn = `${s}.iotctl_ensure_day_partition(date)`;
  const { writer, reader } = names;
  if (await roleExists(client, writer)) {
    await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${writer}`);
    // An older embedded setup gave the writer SELECT on every table (and new ones by default): take it back.
    await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${writer}`);
    await client.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} REVOKE ALL ON TABLES FROM ${writer}`);
    await client.query(`GRANT INSERT ON ${WRITER_TABLES.map((t) => `${s}.${t}`).join(', ')} TO ${writer}`);
    await client.query(`GRANT EXECUTE ON FUNCTION ${fn} TO ${writer}`);
    result.granted.push(writer);
  }
  if (await roleExists(client, reader)) {
    await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${reader}`);
    await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${reader}`);
    // Day partitions the function creates later (owned by this user) are readable too.
    await client.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT ON TABLES TO ${reader}`);
    result.granted.push(reader);
  }
  if (result.granted.length) {
    // CONNECT is the database owner's to grant; PUBLIC usually has it anyway, so a refusal is not an error.
    await client.query(
      `DO $do$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${result.granted.join(', ')}', ${literal(db)}); EXCEPTION WHEN insufficient_privilege THEN NULL; END $do$`,
    );
  }
  if (result.missing.length) {
    result.warning =
      `${result.missing.join(' and ')} ${result.missing.length === 1 ? 'does' : 'do'} not exist and ${user} may not create roles (no CREATEROLE): ` +
      `the ingest and query functions cannot run with least privilege on this database. ` +
      `Create ${result.missing.length === 1 ? 'it' : 'them'} as an administrator (${result.missing.map((r) => `CREATE ROLE ${r};`).join(' ')}) and run \`iotctl db migrate\` again.`;
  }
  return result;
}

/**
 * Lets a role log in with a password (what `apply` on aws does before writing the role's secret). Needs
 * CREATEROLE (RDS's master user has it). The password travels as a literal: ALTER ROLE takes no parameters.
 */
export async function setRoleLogin(client: Queryable, role: Exclude<DatabaseRole, 'owner'>, password: string): Promise<void> {
  await client.query(`ALTER ROLE ${ROLE_NAMES[role]} WITH LOGIN PASSWORD ${literal(password)}`);
}

async function roleExists(client: Queryable, name: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  return rows.length > 0;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
