import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROLE_NAMES, type DatabaseRole } from '../../db/roles.js';

/**
 * `<stateDir>/postgres.json`, mode 0600: the one file that holds passwords, those of the embedded PostgreSQL's
 * roles. Nothing else (daemon.json, status.json, logs, the spec cache) ever holds one; a command that needs a
 * connection builds the URL in memory from this file.
 *
 * Least privilege, enforced by PostgreSQL itself: no role below is a superuser, and pg_hba.conf lets only them
 * in, only to iotctl's database, only over loopback, only with a SCRAM password. The superuser has no password
 * and cannot log in; roles are set up in single-user mode (see postgres.ts).
 * The roles (owner, writer, reader) and their grants come from the migrations (src/db/roles.ts), the same on
 * every server; the embedded server's setup only lets them log in, with the passwords kept here.
 */

export { ROLE_NAMES, type DatabaseRole };

export interface EmbeddedCredentials {
  port: number;
  database: string;
  /** Set when the data directory is not `<stateDir>/postgres` (as root: see postgres.ts). */
  dataDir?: string;
  passwords: Record<DatabaseRole, string>;
  /** The role layout these passwords were set up with (ROLES_VERSION in postgres.ts). */
  rolesVersion?: number;
}

export const credentialsFile = (stateDir: string) => join(stateDir, 'postgres.json');

export const newPassword = () => randomBytes(18).toString('base64url');

/**
 * What postgres.json holds, or undefined when it is missing or unreadable. A file from an older iotctl (one
 * superuser password, no roles) comes back with fresh role passwords and no rolesVersion, so the roles get
 * set up on the next start; its superuser password is dropped.
 */
export function readEmbeddedCredentials(stateDir: string): EmbeddedCredentials | undefined {
  let saved: Partial<EmbeddedCredentials> & { password?: unknown };
  try {
    saved = JSON.parse(readFileSync(credentialsFile(stateDir), 'utf8')) as typeof saved;
  } catch {
    return undefined;
  }
  if (typeof saved.port !== 'number') return undefined;
  const passwords = saved.passwords;
  const complete = passwords && (['owner', 'writer', 'reader'] as const).every((r) => typeof passwords[r] === 'string');
  if (!complete && typeof saved.password !== 'string') return undefined;
  return {
    port: saved.port,
    database: typeof saved.database === 'string' ? saved.database : 'iotctl',
    ...(typeof saved.dataDir === 'string' ? { dataDir: saved.dataDir } : {}),
    passwords: complete ? passwords : { owner: newPassword(), writer: newPassword(), reader: newPassword() },
    ...(complete && typeof saved.rolesVersion === 'number' ? { rolesVersion: saved.rolesVersion } : {}),
  };
}

/** Replace postgres.json atomically; created 0600 under a fresh name, never through an existing file or link. */
export function writeEmbeddedCredentials(stateDir: string, credentials: EmbeddedCredentials): void {
  const file = credentialsFile(stateDir);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The URL a role connects with (in memory only: it holds the password). */
export function embeddedRoleUrl(credentials: EmbeddedCredentials, role: DatabaseRole): string {
  return `postgres://${ROLE_NAMES[role]}:${encodeURIComponent(credentials.passwords[role])}@127.0.0.1:${credentials.port}/${encodeURIComponent(credentials.database)}`;
}

/** The same without user or password: what daemon.json and status.json show. */
export function embeddedDisplayUrl(credentials: Pick<EmbeddedCredentials, 'port' | 'database'>): string {
  return `postgres://127.0.0.1:${credentials.port}/${encodeURIComponent(credentials.database)}`;
}
