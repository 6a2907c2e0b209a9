// DuckDB for `athena run` and datasets reads only the lake: the real CLI and the real DuckDB over a real
// lake with data, a real CA key in the state directory, and SQL that tries to leave the lake.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyAnalytics, planAnalytics } from '../../src/targets/local/lake/apply.js';
import { Catalog } from '../../src/targets/local/lake/catalog.js';
import { DatasetRunner } from '../../src/targets/local/lake/datasets.js';
import { LocalLake } from '../../src/targets/local/lake/index.js';
import { ensurePki } from '../../src/targets/local/pki.js';
import { openStore, type Db } from '../../src/targets/local/store.js';
import { cli, makeProject, NO_DB, rejects, waitFor, type Project } from '../helpers/project.js';
import { components, day, message, specWith, type AnalyticsInput } from '../unit/lake/helpers.js';

const analytics: AnalyticsInput = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'telemetry' }],
  pipelines: [{ name: 'main', channel: 'raw', datastore: 'telemetry' }],
};
const SPEC = `project: sandbox
target: local
local: { mqttPort: 0 }
analytics:
  channels: [{ name: raw }]
  datastores: [{ name: telemetry }]
  pipelines: [{ name: main, channel: raw, datastore: telemetry }]
`;
const REFUSED = /Athena can read only the lake's tables.*Tables: sandbox\.telemetry, channels\.raw/s;

let project: Project;
let db: Db;
let outside: string;

/** A project whose lake holds rows, and whose state directory holds the local CA's private key. */
test.before(async () => {
  project = makeProject(SPEC);
  outside = mkdtempSync(join(tmpdir(), 'iotctl-outside-'));
  db = openStore(project.stateDir);
  applyAnalytics(db, (await planAnalytics(db, project.stateDir, project.spec)).items);
  const c = await components(project.stateDir, db);
  const t = day('2030-05-01');
  await c.channels.putMessages('raw', [message('a', t, { device: 'd1', v: 1 }), message('b', t + 1, { device: 'd2', v: 2 }), message('c', t + 2, { device: 'd1', v: 3 })]);
  await c.runner.runOnce();
  await c.close();
  await ensurePki(project.stateDir);
});

test.after(() => {
  db.close();
  project.cleanup();
  rmSync(outside, { recursive: true, force: true });
});

const athena = (sql: string) => cli(['athena', 'run', sql, '--format', 'json'], { cwd: project.dir, env: NO_DB });

test('athena run over the lake still answers from datastores and channels', async () => {
  const r = await athena('SELECT device, count(*)::int AS n, sum(v)::int AS total FROM telemetry GROUP BY device ORDER BY device');
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), [
    { device: 'd1', n: 2, total: 4 },
    { device: 'd2', n: 1, total: 2 },
  ]);
  const raw = await athena('SELECT count(*)::int AS n FROM channels.raw');
  assert.is(raw.code, 0, raw.stderr);
  assert.equal(JSON.parse(raw.stdout), [{ n: 3 }]);
  const tables = await cli(['athena', 'tables', '--json'], { cwd: project.dir, env: NO_DB });
  assert.is(tables.code, 0, tables.stderr);
});

test('athena run refuses every way out of the lake with a clear error, and writes nothing', async () => {
  assert.ok(existsSync(join(project.stateDir, 'ca', 'ca.key')), 'the CA key is there to steal');
  const copyTo = join(outside, 'x.csv');
  const attachTo = join(outside, 'y.db');
  const exportTo = join(outside, 'export');
  const intoLake = join(project.stateDir, 'lake', 'datastore', 'telemetry', 'evil.csv');
  const attacks = [
    `SELECT content FROM read_text('.iotctl/ca/ca.key')`,
    `SELECT content FROM read_text('${join(project.stateDir, 'ca', 'ca.key')}')`,
    `SELECT content FROM read_text('.iotctl/lake/datastore/../../ca/ca.key')`,
    `SELECT * FROM read_text('/etc/passwd')`,
    `SELECT * FROM read_csv('/etc/passwd')`,
    `SELECT * FROM glob('/etc/*')`,
    `COPY (SELECT 1) TO '${copyTo}'`,
    `COPY (SELECT 1) TO '${intoLake}'`,
    `EXPLAIN ANALYZE COPY (SELECT 1) TO '${intoLake}'`,
    `ATTACH '${attachTo}'`,
    `EXPORT DATABASE '${exportTo}'`,
    `SET enable_external_access = true`,
    `SET enable_external_access = true; SELECT content FROM read_text('/etc/passwd')`,
    `RESET enable_external_access`,
    `PRAGMA enable_external_access = true`,
    `INSTALL httpfs`,
    `LOAD httpfs`,
  ];
  // Four CLI processes at a time; each attack gets its own process, as a user would run it.
  const results: Awaited<ReturnType<typeof athena>>[] = [];
  for (let i = 0; i < attacks.length; i += 4) results.push(...(await Promise.all(attacks.slice(i, i + 4).map(athena))));
  for (const [n, sql] of attacks.entries()) {
    const r = results[n]!;
    const said = r.stdout + r.stderr;
    assert.is(r.code, 1, `${sql}\n${said}`);
    assert.not.match(said, /Error \(bug\)|PRIVATE KEY|root:x:0:0|Permission Error/, sql);
    // A second statement is refused before DuckDB sees it; every other refusal names the lake's tables.
    assert.match(said, sql.includes(';') ? /runs one statement at a time/ : REFUSED, `${sql}\n${said}`);
  }
  for (const file of [copyTo, attachTo, exportTo, intoLake]) assert.not.ok(existsSync(file), `${file} was written`);
});

test("the catalog's DuckDB itself is locked: SQL run on its connection cannot reopen the machine", async () => {
  // Its profile and spill files live in the lake's scratch folder; a dead process's are removed.
  const scratch = join(project.stateDir, 'lake', 'scratch');
  mkdirSync(scratch, { recursive: true });
  writeFileSync(join(scratch, 'profile-999999999-dead.json'), '{}');
  const catalog = await Catalog.open({ db, stateDir: project.stateDir, database: 'sandbox' });
  assert.not.ok(existsSync(join(scratch, 'profile-999999999-dead.json')), "a dead process's profile is removed");
  try {
    const c = catalog.connection;
    for (const sql of [`SET enable_external_access = true`, `RESET enable_external_access`, `PRAGMA enable_external_access = true`, `SET allowed_directories = ['/']`, `SET lock_configuration = false`])
      await rejects(c.run(sql), /configuration has been locked/);
    await rejects(c.run(`LOAD httpfs`), /Permission Error/);
    await rejects(c.run(`INSTALL httpfs`), /Permission Error/);
    await rejects(c.run(`SELECT * FROM read_text('/etc/passwd')`), /Permission Error/);
    await rejects(c.run(`COPY (SELECT 1) TO '${join(outside, 'direct.csv')}'`), /Permission Error/);
    assert.not.ok(existsSync(join(outside, 'direct.csv')));
    const rows = await catalog.query('SELECT count(*)::int AS n FROM telemetry');
    assert.equal(rows.rows, [[3]]);
    const plan = await catalog.query(`EXPLAIN SELECT device FROM telemetry WHERE v > 1`);
    assert.match(JSON.stringify(plan.rows), /READ_PARQUET/);
  } finally {
    catalog.close();
  }
  assert.equal(readdirSync(scratch), [], 'close() leaves no scratch file');
});

test('spec validate refuses a scheduled dataset that reads /etc/shadow, at its line and column', async () => {
  // Written as is: makeProject() would validate it.
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-validate-'));
  writeFileSync(
    join(dir, 'iotctl.yaml'),
    `${SPEC}  datasets:
    - name: shadow
      schedule: rate(1 hour)
      sql: |
        SELECT content
        FROM read_text('/etc/shadow')
    - name: copier
      sql: "SELECT 1 AS one; COPY (SELECT 1) TO '/tmp/x'"
`,
  );
  try {
    const r = await cli(['spec', 'validate'], { cwd: dir, env: NO_DB });
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /iotctl\.yaml:13:14 analytics\.datasets\[0\]\.sql: dataset "shadow" reads files with read_text\(\)/);
    assert.match(r.stderr, /iotctl\.yaml:15:28 analytics\.datasets\[1\]\.sql: dataset "copier" has more than one statement/);
    assert.match(r.stderr, /iotctl\.yaml:15:30 analytics\.datasets\[1\]\.sql: dataset "copier" starts with COPY, not a query/);
    assert.not.match(r.stderr, /Error \(bug\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a dataset that got past validation, run by the daemon's scheduler or by hand, ends as a FAILED version with the reason and writes nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-sneak-'));
  const store = openStore(dir);
  const escaped = join(outside, 'dataset.csv');
  const intoLake = join(dir, 'lake', 'datastore', 'telemetry', 'evil.csv');
  try {
    // Planned with harmless SQL, then stored with the hostile SQL, as the daemon would find it had
    // something written the state without validation (an older iotctl, a hand edit).
    const hostile: Record<string, Record<string, unknown>> = {
      shadow: { sql: `SELECT content FROM read_text('/etc/shadow')` },
      two: { sql: `SELECT 1 AS one; COPY (SELECT 1) TO '${intoLake}'` },
      copy: { sql: `COPY (SELECT 1) TO '${escaped}'` },
      window: { deltaTime: { offsetSeconds: 0, timeExpression: `(SELECT max(length(content)) FROM read_text('/etc/shadow'))` } },
    };
    const harmless = { sql: 'SELECT count(*) AS n FROM telemetry' };
    const spec = specWith({
      ...analytics,
      datasets: [
        { name: 'shadow', ...harmless, schedule: 'rate(1 hour)' },
        { name: 'two', ...harmless },
        { name: 'copy', ...harmless },
        { name: 'window', ...harmless, deltaTime: { offsetSeconds: 0, timeExpression: '__received_at' } },
      ],
    });
    const items = (await planAnalytics(store, dir, spec)).items.map((item) => (item.kind === 'dataset' ? { ...item, desired: { ...(item.desired as object), ...hostile[item.name] } } : item));
    // Applied just over an hour ago: the scheduled one is due when the daemon's lake starts.
    applyAnalytics(store, items, Date.now() - 3_600_000 - 2_000);
    const runner = new DatasetRunner({ db: store, stateDir: dir });
    const logged: string[] = [];
    const daemon = new LocalLake({ stateDir: dir, db: store, log: (line) => logged.push(line) });
    await daemon.start();
    try {
      await waitFor(() => runner.versions('shadow').length > 0, 20_000, "the scheduler's run of shadow");
    } finally {
      await daemon.stop();
    }
    const scheduled = runner.versions('shadow')[0]!;
    assert.is(scheduled.trigger, 'schedule');
    assert.is(scheduled.status, 'FAILED');
    assert.match(scheduled.error ?? '', /Athena can read only the lake's tables, not the file "\/etc\/shadow"\. Tables: iotctl\.telemetry, channels\.raw/);
    assert.ok(logged.some((l) => l.startsWith('analytics: dataset shadow failed: Athena can read only')), logged.join('\n'));
    for (const name of ['copy', 'window']) {
      const result = await runner.run(name, { trigger: 'schedule', scheduledFor: Date.now(), previewRows: 0 });
      assert.is(result.status, 'FAILED', name);
      assert.match(result.error ?? '', /Athena can read only the lake's tables/, name);
      assert.is(runner.versions(name)[0]!.status, 'FAILED');
    }
    const two = await runner.run('two');
    assert.is(two.status, 'FAILED');
    assert.match(two.error ?? '', /one statement at a time/);
    assert.not.ok(existsSync(escaped));
    assert.not.ok(existsSync(intoLake));
    assert.not.match(JSON.stringify(runner.versions('shadow')), /root:/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dataset over the lake still writes its content, and only there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-content-'));
  const store = openStore(dir);
  try {
    applyAnalytics(store, (await planAnalytics(store, dir, specWith({ ...analytics, datasets: [{ name: 'count', sql: 'SELECT 42 AS n;' }] }))).items);
    const result = await new DatasetRunner({ db: store, stateDir: dir }).run('count');
    assert.is(result.status, 'SUCCEEDED', result.error ?? '');
    assert.is(readFileSync(result.file!, 'utf8'), 'n\n42\n');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
