// Issue 19 (database side): the maintenance-rds, query-rds and ingest-rds handlers, bundled as for Lambda and run
// in the local function runner, against the machine's PostgreSQL and the embedded one, each function logging in as
// its template's role (src/db/roles.ts) as the migrations created and granted it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { bundleTemplate, templateDatabaseRole } from '../../../src/services/bundle.js';
import { LocalFunctions } from '../../../src/targets/local/functions.js';
import { openStore } from '../../../src/targets/local/store.js';
import { MIGRATIONS } from '../../../src/db/migrations.js';
import { ensurePartitions } from '../../../src/db/batch-writer.js';
import { recentMessages } from '../../../src/db/queries.js';
import { SqlPager } from '../../../src/db/pages.js';
import { ROLE_NAMES, setRoleLogin, type DatabaseRole } from '../../../src/db/roles.js';
import { embeddedServer, kinesisEvent, kinesisRecord, machineServer, withPg, type TestDatabase, type TestServer } from './helpers.js';

const DAY = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const part = (ms: number) => `iot_messages_p${dayOf(ms).replace(/-/g, '')}`;
// Noon today: the expired days, the straddling day and tomorrow are fixed relative to it.
const NOW = Math.floor(Date.now() / DAY) * DAY + 12 * 3_600_000;
const TODAY = NOW - 12 * 3_600_000;

const work = mkdtempSync(join(tmpdir(), 'iotctl-pgops-'));
const artifacts = Promise.all(['maintenance-rds', 'query-rds', 'ingest-rds'].map((t) => bundleTemplate(t, join(work, t)).then((b) => [t, b] as const))).then((e) => new Map(e));

function opsSuite(serverName: 'machine' | 'embedded', start: () => Promise<TestServer>) {
  const t = suite(`pg ops handlers (${serverName})`);
  let server: TestServer;
  let db: TestDatabase;
  let fns: LocalFunctions;
  const urls = {} as Record<DatabaseRole, string>;
  const asRole = async (role: DatabaseRole, sql: string, values: unknown[] = []) => {
    const c = new pg.Client(urls[role]);
    await c.connect();
    try {
      return { rows: (await c.query(sql, values)).rows, error: undefined };
    } catch (e) {
      return { rows: [], error: e as Error & { code?: string } };
    } finally {
      await c.end();
    }
  };
  const invoke = async (name: string, event: unknown) => {
    const r = await fns.invoke(name, event);
    assert.is(r.functionError, undefined, JSON.stringify(r.payload));
    return r.payload as Record<string, any>;
  };

  t.before(async () => {
    server = await start();
    db = await server.fresh();
    urls.owner = db.url;
    if (server.name === 'machine') {
      // The migrations create the roles NOLOGIN; apply (on aws) lets them log in, which this stands in for.
      for (const role of ['writer', 'reader'] as const) {
        const u = new URL(db.url);
        u.username = ROLE_NAMES[role];
        urls[role] = u.toString();
      }
    } else {
      const search = new URL(db.url).searchParams.get('options')!;
      for (const role of ['writer', 'reader'] as const) {
        const u = new URL((server as Awaited<ReturnType<typeof embeddedServer>>).server.urlFor(role));
        u.searchParams.set('options', search);
        urls[role] = u.toString();
      }
    }
    fns = new LocalFunctions(openStore(mkdtempSync(join(work, 'fns-'))), { region: 'eu-west-1', baseEnvironment: (fn) => ({ DATABASE_URL: urls[templateDatabaseRole(fn.template)] }) });
    const built = await artifacts;
    for (const [name, template, env] of [
      ['maint', 'maintenance-rds', { RETENTION: '30h', LOG_LEVEL: '' }],
      ['query', 'query-rds', {}],
      ['ingest', 'ingest-rds', { LOG_LEVEL: 'silent' }],
    ] as const) {
      const b = built.get(template)!;
      fns.register({ name, template, artifactPath: b.artifactPath, sha256: b.sha256, handler: 'handler', timeoutSeconds: 60, memoryMb: 512, environment: { DATABASE_URL: '', ...env } });
    }
  });
  t.after(async () => {
    await fns.stop();
    await db.drop();
    await server.stop();
  });

  t('{migrate: true} runs the migrations as the owner, which create and grant the ingest and reader roles', async () => {
    const r = await invoke('maint', { migrate: true });
    assert.is(r.version, MIGRATIONS.length);
    assert.equal(r.roles.missing, []);
    assert.equal(r.roles.granted.sort(), ['iotctl_reader', 'iotctl_writer']);
    if (server.name === 'machine') await withPg(db.url, async (c) => Promise.all((['writer', 'reader'] as const).map((role) => setRoleLogin(c, role, 'not-checked-by-trust'))));
    const again = await invoke('maint', { migrate: true });
    assert.equal(again.applied, []);
  });

  t('the ingest role inserts and creates tomorrow\'s partition through the function, but cannot read other tables or drop anything', async () => {
    const tomorrow = TODAY + DAY + 3_600_000;
    const response = await invoke('ingest', kinesisEvent([kinesisRecord({ device_id: 'dev-w', message_id: 'w-1', ts: tomorrow })]));
    assert.equal(response, { batchItemFailures: [] });
    assert.equal((await asRole('owner', `SELECT message_id FROM ${part(tomorrow)}`)).rows, [{ message_id: 'w-1' }]);
    const creator = await asRole('writer', 'SELECT iotctl_ensure_day_partition($1::date) AS created', [dayOf(TODAY + 5 * DAY)]);
    assert.equal(creator.rows, [{ created: true }], String(creator.error));
    for (const sql of ['SELECT count(*) FROM iot_messages', 'SELECT * FROM iotctl_schema_migrations', `SELECT * FROM ${part(tomorrow)}`, 'SELECT * FROM iot_ingest_errors', 'DELETE FROM iot_messages', 'TRUNCATE iot_messages', `DROP TABLE ${part(tomorrow)}`, `ALTER TABLE iot_messages DETACH PARTITION ${part(tomorrow)}`, 'CREATE TABLE evil (i int)']) {
      const { error } = await asRole('writer', sql);
      assert.ok(error, `the ingest role ran: ${sql}`);
      assert.is(error!.code, '42501', `${sql}: ${error!.message}`);
    }
    // The partition function runs with the owner's rights: nobody else may call it.
    const reader = await asRole('reader', 'BEGIN READ WRITE; SELECT iotctl_ensure_day_partition(current_date + 9)');
    assert.is(reader.error?.code, '42501', String(reader.error));
  });

  t('the reader role cannot write: a DELETE through query sql is a permission error, even outside a read-only transaction', async () => {
    await asRole('owner', "INSERT INTO iot_messages (message_id, device_id, ts, payload) VALUES ('r-1', 'dev-r', now(), '{}')");
    const r = await invoke('query', { query: 'sql', sql: 'DELETE FROM iot_messages' });
    assert.is(r.error?.code, 'SQL_PERMISSION_DENIED', JSON.stringify(r));
    assert.match(r.error.message, /permission denied for table iot_messages/);
    const direct = await asRole('reader', 'BEGIN READ WRITE; DELETE FROM iot_messages');
    assert.is(direct.error?.code, '42501', String(direct.error));
    assert.is((await asRole('owner', "SELECT count(*)::int AS n FROM iot_messages WHERE device_id = 'dev-r'")).rows[0].n, 1);
    const read = await invoke('query', { query: 'sql', sql: "SELECT message_id FROM iot_messages WHERE device_id = 'dev-r'" });
    assert.equal(read.rows, [{ message_id: 'r-1' }]);
    assert.is(read.cursor, null);
  });

  t('maintenance: a dry run plans without changing anything; the run drops exactly the expired days, trims the straddling one, clusters closed days once, creates the next days', async () => {
    const days = [TODAY - 3 * DAY, TODAY - 2 * DAY, TODAY - DAY, TODAY];
    await withPg(db.url, async (c) => {
      await ensurePartitions(c, days.map(dayOf));
      // Four rows a day at 03:00, 09:00, 15:00, 21:00; with RETENTION 30h at noon the cutoff is yesterday 06:00.
      await c.query(
        `INSERT INTO iot_messages (message_id, device_id, ts, payload)
         SELECT 'm-' || d || '-' || h, 'dev-m', to_timestamp(d / 1000.0) + make_interval(hours => h), '{}'
         FROM unnest($1::bigint[]) AS d, unnest(ARRAY[3, 9, 15, 21]) AS h`,
        [days],
      );
      // A row with an old time in the default partition (a day outside the writers' window) is trimmed too.
      await c.query(`INSERT INTO iot_messages_default (message_id, device_id, ts, payload) VALUES ('old', 'dev-m', '2001-01-01', '{}')`);
    });
    const count = async () => (await asRole('owner', "SELECT count(*)::int AS n FROM iot_messages WHERE device_id = 'dev-m'")).rows[0].n as number;
    const partitions = async () => (await asRole('owner', "SELECT relname FROM pg_class WHERE relname LIKE 'iot_messages_p%' AND relkind = 'r' ORDER BY 1")).rows.map((r) => r.relname as string);
    const before = { rows: await count(), partitions: await partitions() };
    assert.is(before.rows, 17);

    const logsBefore = fns.readLogs('maint').length;
    const plan = await invoke('maint', { dryRun: true, now: new Date(NOW).toISOString() });
    assert.is(plan.dryRun, true);
    assert.is(plan.cutoff, new Date(TODAY - DAY + 6 * 3_600_000).toISOString());
    assert.equal(plan.dropped.map((d: { partition: string; rows: number }) => [d.partition, d.rows]), [[part(days[0]!), 4], [part(days[1]!), 4]]);
    assert.equal(plan.deleted.map((d: { partition: string; rows: number }) => [d.partition, d.rows]).sort(), [['iot_messages_default', 1], [part(days[2]!), 1]]);
    assert.equal(plan.clustered.map((c: { partition: string }) => c.partition), [part(days[2]!)]);
    assert.equal(plan.created, [dayOf(TODAY + 2 * DAY)]);
    assert.equal({ rows: await count(), partitions: await partitions() }, before, 'the dry run changed nothing');

    const run = await invoke('maint', { now: new Date(NOW).toISOString() });
    assert.is(run.dryRun, false);
    assert.equal(run.dropped.map((d: { partition: string }) => d.partition), [part(days[0]!), part(days[1]!)]);
    assert.is(run.rowsDeleted, 2);
    assert.equal(run.clustered.map((c: { partition: string }) => c.partition), [part(days[2]!)]);
    assert.equal(run.created, [dayOf(TODAY + 2 * DAY)]);
    assert.ok(run.dbMs <= run.ms, `${run.dbMs} <= ${run.ms}`);
    const after = await partitions();
    assert.equal(after, before.partitions.filter((p) => p !== part(days[0]!) && p !== part(days[1]!)).concat(part(TODAY + 2 * DAY)).sort());
    const left = (await asRole('owner', "SELECT message_id FROM iot_messages WHERE device_id = 'dev-m' ORDER BY ts")).rows.map((r) => r.message_id);
    assert.equal(left, [`m-${days[2]}-9`, `m-${days[2]}-15`, `m-${days[2]}-21`, ...[3, 9, 15, 21].map((h) => `m-${days[3]}-${h}`)]);

    // Each run logs exactly one JSON line saying what it did.
    const lines = fns.readLogs('maint').slice(logsBefore).filter((l) => !['START', 'END', 'REPORT'].includes(l.level));
    assert.is(lines.length, 2, lines.map((l) => l.message).join('\n'));
    const logged = JSON.parse(lines[1]!.message);
    assert.is(logged.message, 'iotctl maintenance');
    assert.equal([logged.dropped.length, logged.rowsDeleted, logged.clustered.length, logged.created], [2, 2, 1, [dayOf(TODAY + 2 * DAY)]]);

    const again = await invoke('maint', { now: new Date(NOW).toISOString() });
    assert.equal([again.dropped, again.rowsDeleted, again.clustered, again.created], [[], 0, [], []], 'a second run has nothing to do: each day is clustered once');
  });

  t('paging: query recent and query sql return every row exactly once across pages, each page under its byte budget', async () => {
    await asRole(
      'owner',
      `INSERT INTO iot_messages (message_id, device_id, ts, payload, sequence_number)
       SELECT 'p-' || i, 'dev-p', now() - make_interval(secs => i / 3), jsonb_build_object('pad', repeat('x', 400), 'i', i), (1000 + i % 7)::text
       FROM generate_series(1, 3000) AS i`,
    );
    const expected = (await withPg(urls.owner, (c) => recentMessages(c, { deviceId: 'dev-p', limit: 2500 }))).map((m) => m.message_id);
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Record<string, any> = await invoke('query', { query: 'recent', deviceId: 'dev-p', limit: 2500, cursor, pageBytes: 200_000, chunkRows: 300 });
      // An upper bound of the rows' JSON, computed without serializing them.
      const actual = Buffer.byteLength(JSON.stringify(page.rows));
      assert.ok(page.bytes <= 200_000 && page.bytes >= actual && page.bytes < actual * 1.1, `page of ${page.bytes} bytes (${actual} as JSON)`);
      ids.push(...page.rows.map((r: { message_id: string }) => r.message_id));
      cursor = page.cursor;
      pages++;
      // Newer messages arriving between pages do not shift the pages.
      if (pages === 1) await asRole('owner', "INSERT INTO iot_messages (message_id, device_id, ts, payload) VALUES ('p-late', 'dev-p', now(), '{}')");
    } while (cursor);
    assert.ok(pages >= 5, `${pages} pages`);
    assert.is(ids.length, 2500);
    assert.is(new Set(ids).size, 2500);
    assert.equal(ids, expected);

    const sql = "SELECT message_id, payload FROM iot_messages WHERE device_id = 'dev-p' AND message_id <> 'p-late' ORDER BY message_id";
    const seen: string[] = [];
    cursor = null;
    pages = 0;
    do {
      const page: Record<string, any> = await invoke('query', { query: 'sql', sql, cursor, pageBytes: 300_000, chunkRows: 250 });
      assert.ok(page.bytes <= 300_000, `page of ${page.bytes} bytes`);
      assert.equal(page.columns.map((c: { name: string }) => c.name), ['message_id', 'payload']);
      assert.not.ok(page.resumed, 'the warm container kept the result open');
      seen.push(...page.rows.map((r: { message_id: string }) => r.message_id));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    assert.ok(pages >= 5, `${pages} pages`);
    assert.is(seen.length, 3000);
    assert.equal(seen, [...seen].sort());
    assert.is(new Set(seen).size, 3000);
  });

  t('query sql: a result over 6 MB comes in pages under Lambda\'s limit; another container resumes a cursor exactly', async () => {
    const big = 'SELECT i, repeat(md5(i::text), 60) AS pad FROM generate_series(1, 4000) AS i ORDER BY i';
    const first: Record<string, any> = await invoke('query', { query: 'sql', sql: big });
    const total = Buffer.byteLength(JSON.stringify(first.rows));
    assert.ok(total < 6_291_456 && first.cursor, `first page ${total} bytes`);
    const second: Record<string, any> = await invoke('query', { query: 'sql', sql: big, cursor: first.cursor });
    assert.is(second.cursor, null);
    assert.equal([...first.rows, ...second.rows].map((r: { i: number }) => r.i), Array.from({ length: 4000 }, (_, i) => i + 1));

    // Two pagers stand for two containers: the second continues the first one's cursor by re-running the statement.
    const connect = async () => {
      const c = new pg.Client(urls.reader);
      await c.connect();
      return c;
    };
    const a = new SqlPager(connect);
    const b = new SqlPager(connect);
    try {
      const p1 = await a.page(big, { timeoutMs: 10_000, pageBytes: 100_000 });
      const p2 = await b.page(big, { timeoutMs: 10_000, pageBytes: 100_000, cursor: p1.cursor });
      assert.is(p2.resumed, true);
      const p3 = await a.page(big, { timeoutMs: 10_000, pageBytes: 100_000, cursor: p2.cursor });
      assert.equal([...p1.rows, ...p2.rows, ...p3.rows].map((r) => r.i), Array.from({ length: p1.rowCount + p2.rowCount + p3.rowCount }, (_, i) => i + 1));
    } finally {
      await a.closeAll();
      await b.closeAll();
    }
  });

  return t;
}

const suites = [opsSuite('machine', machineServer), opsSuite('embedded', embeddedServer)];
for (const s of suites) s.run();
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
