import type pg from 'pg';
import { configuredDatabase, connect, type DatabaseTarget } from '../../db/connection.js';
import { parseDuration } from '../../db/duration.js';
import { migrate } from '../../db/migrations.js';
import { runMaintenance } from '../../db/maintenance.js';
import { nextFireTime, parseSchedule } from '../../iot/pipeline/schedule.js';
import { EventSourceMappings } from './event-source-mapping.js';
import { LocalFunctions } from './functions.js';
import { LocalLake } from './lake/index.js';
import { registryLookup } from './lake/cli.js';
import type { LocalPlatform, PlatformComponent } from './platform.js';
import { EmbeddedPostgres } from './postgres.js';
import type { DatabaseRole } from '../../db/roles.js';
import { templateDatabaseRole } from '../../services/bundle.js';
import { LocalStreams } from './stream.js';

/**
 * Plug the components into the platform before it starts: the stream, PostgreSQL (configured or embedded,
 * migrated) and its retention schedule, the function runner and its event source mappings, and the lake.
 * Order matters: the rules runtime starts after the sinks exist; components stop in reverse order, so the
 * mappings stop before PostgreSQL does.
 */
export async function attachComponents(platform: LocalPlatform): Promise<void> {
  const { spec, stateDir } = platform.opts;
  const { db, log } = platform;

  // The configured server's own user does everything (iotctl has no passwords for the roles the migrations create
  // there); on the embedded server each part gets its least-privilege role (src/db/roles.ts): the owner migrates
  // and runs maintenance, the ingest function writes, the query function reads.
  let database: DatabaseTarget | undefined = configuredDatabase({ spec });
  const roleUrl = (role: DatabaseRole): string | undefined => (embedded?.running ? embedded.urlFor(role) : database?.url);
  const useEmbedded = (started: { url: string; display: string }) => {
    database = { url: started.url, display: started.display, source: 'embedded' };
    platform.databaseUrl = started.display;
  };
  const embedded = database ? undefined : new EmbeddedPostgres({ stateDir, onLog: (line) => log(`postgres: ${line}`) });
  platform.components.push({
    name: 'postgres',
    async start() {
      if (embedded) {
        const started = await embedded.start();
        log(`postgres: embedded server ready on port ${started.port} in ${started.totalMs} ms${started.stoppedOrphanPid ? ` (stopped orphan ${started.stoppedOrphanPid})` : ''}`);
        useEmbedded(started);
      } else {
        platform.databaseUrl = database!.display;
      }
      platform.databaseSource = database!.source;
      const client = await connect(database!);
      try {
        const result = await migrate(client);
        if (result.applied.length) log(`postgres: migrated to schema version ${result.version}`);
        if (result.roles.warning) log(`postgres: ${result.roles.warning}`);
      } finally {
        await client.end();
      }
    },
    stop: () => {
      stopping = true;
      return embedded?.stop();
    },
    status: () => ({ url: database?.display, source: database?.source, ...(embedded ? { pid: embedded.pid ?? null, restarts, lastExit } : {}) }),
  });
  // An embedded server that dies (killed, out of memory) is restarted: PostgreSQL's crash recovery replays
  // its WAL, and the stream keeps every record until the ingest function has written it.
  let stopping = false;
  let restarts = 0;
  let lastExit: string | null = null;
  if (embedded) {
    embedded.onUnexpectedExit = (code, signal) => {
      lastExit = `${new Date().toISOString()} ${signal ? `signal ${signal}` : `exit code ${code}`}`;
      log(`postgres: the embedded server exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}); restarting`);
      const restart = async (attempt: number): Promise<void> => {
        if (stopping) return;
        try {
          const started = await embedded.start();
          restarts++;
          useEmbedded(started);
          log(`postgres: restarted on port ${started.port} in ${started.totalMs} ms (crash recovery)`);
        } catch (e) {
          const delay = Math.min(30_000, 500 * 2 ** attempt);
          log(`postgres: restart failed (${(e as Error).message.split('\n')[0]}); retrying in ${delay} ms`);
          setTimeout(() => void restart(attempt + 1), delay).unref();
        }
      };
      void restart(0);
    };
  }
  // After PostgreSQL: components stop in reverse order, so PostgreSQL stops last.
  const streams = new LocalStreams(db, { region: spec.region });
  platform.sinks.streams = streams;
  platform.components.push({ name: 'stream', start: () => streams.start(), stop: () => streams.stop() });
  platform.components.push(retentionSchedule(() => database, spec.database.retention, spec.database.retentionSchedule, log));

  const functions = new LocalFunctions(db, {
    region: spec.region,
    // Functions reach the same PostgreSQL the platform uses, as their template's role (pg reads PG* itself when
    // there is no URL).
    baseEnvironment: (fn): Record<string, string> => {
      const url = roleUrl(templateDatabaseRole(fn.template));
      return url ? { DATABASE_URL: url } : {};
    },
  });
  platform.sinks.functions = functions;
  const mappings = new EventSourceMappings({ db, streams, functions, log });
  platform.components.push({ name: 'functions', start: () => functions.start(), stop: () => functions.stop() });
  platform.components.push({ name: 'eventSourceMappings', start: () => mappings.start(), stop: () => mappings.stop(), status: () => mappings.stats() });

  const lake = new LocalLake({
    stateDir,
    db,
    database: spec.athena.database,
    lookupThing: registryLookup(db),
    invoke: async (name, messages) => {
      const result = await functions.invoke(name, messages);
      if (result.functionError) throw new Error(`function ${name} failed: ${JSON.stringify(result.payload)}`);
      return result.payload;
    },
    log,
  });
  platform.sinks.channels = lake.channels;
  platform.components.push({ name: 'lake', start: () => lake.start(), stop: () => lake.stop() });
}

/** Runs `db retention` (and clusters closed days) on the spec's schedule while the platform is up. */
function retentionSchedule(database: () => DatabaseTarget | undefined, keep: string, schedule: string, log: (line: string) => void): PlatformComponent {
  const keepMs = parseDuration(keep, 'database.retention');
  const parsed = parseSchedule(schedule);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let last = { at: null as string | null, dropped: 0, deleted: 0, error: null as string | null };
  const arm = () => {
    if (stopped) return;
    const next = nextFireTime(parsed, Date.now());
    if (next === undefined) return;
    timer = setTimeout(run, Math.min(next - Date.now(), 2 ** 31 - 1));
    timer.unref();
  };
  const run = async () => {
    const target = database();
    let client: pg.Client | undefined;
    try {
      if (!target) return;
      client = await connect(target);
      // What the maintenance-rds function does on aws: retention, then each closed day clustered once in
      // (device_id, ts DESC) order (so `query recent` reads a few neighbouring pages instead of one page per
      // row), then the next days' partitions.
      const result = await runMaintenance(client, { keepMs });
      last = { at: new Date().toISOString(), dropped: result.dropped.length, deleted: result.rowsDeleted, error: null };
      if (last.dropped || last.deleted) log(`retention: dropped ${last.dropped} partition(s), deleted ${last.deleted} row(s) older than ${keep}`);
      for (const c of result.clustered) log(`retention: clustered ${c.partition} by device in ${c.ms} ms`);
      if (result.busy.length) log(`retention: ${result.busy.join(', ')} busy; clustering them on the next run`);
    } catch (e) {
      last = { ...last, at: new Date().toISOString(), error: (e as Error).message };
      log(`retention failed (will retry on schedule): ${(e as Error).message}`);
    } finally {
      await client?.end().catch(() => {});
      arm();
    }
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  return { name: 'retention', start: arm, stop, status: () => ({ keep, schedule, last }) };
}
