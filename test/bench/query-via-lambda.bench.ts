/**
 * `query sql --via lambda --format csv --out` on a large result (issue 19): the CLI asks the query function
 * for one page at a time (under 6 MB each) and writes each page before asking for the next, so its memory
 * holds one page whatever the result's size. Target: peak RSS of the CLI process under 200 MB for 10M rows.
 *
 * moto_server serves the AWS APIs; Invoke runs the real query-rds handler in this process against the
 * machine's PostgreSQL (test/helpers/fake-lambda-invoke.ts), so the CLI process (dist/, `npm run build` first)
 * is measured alone, with /usr/bin/time. The rows come from generate_series (no table to load): the paging
 * and streaming are the same as for a table's rows.
 *
 *   BENCH_SQL_ROWS=10000000 node --import tsx test/bench/query-via-lambda.bench.ts   (default 10M)
 */
import { spawn, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startMoto, useEnv } from '../helpers/moto.js';
import { startFakeInvoke } from '../helpers/fake-lambda-invoke.js';
import { makeProject, ROOT } from '../helpers/project.js';
import { Context } from '../../src/context.js';
import { openTarget } from '../../src/targets/index.js';
import { benchDatabase, verdict } from './db-dataset.js';

const ROWS = Number(process.env.BENCH_SQL_ROWS ?? 10_000_000);

const moto = await startMoto();
const fake = await startFakeInvoke(moto.url, { network: { DATABASE_PORT: new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test').port || '5432' } });
const db = await benchDatabase('via_lambda');
const unreachable = new URL(db.url);
unreachable.port = '1';
unreachable.searchParams.set('sslmode', 'disable');
const project = makeProject(`project: bench\ntarget: aws\ndatabase:\n  url: ${unreachable.toString()}\n`);
const env = { ...moto.env, AWS_ENDPOINT_URL: fake.url, LOG_LEVEL: 'silent' };
const restore = useEnv(env);
try {
  const target = await openTarget(new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir }));
  try {
    await target.databaseOps!.apply(await target.databaseOps!.plan());
  } finally {
    await target.close();
  }
  const out = join(project.dir, 'rows.csv');
  const sql = `SELECT i, md5(i::text) AS h, now() AS at FROM generate_series(1, ${ROWS}) AS i ORDER BY i`;
  const started = performance.now();
  // Asynchronously: the fake Invoke is served by this process's event loop.
  const child = spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, join(ROOT, 'bin/run.js'), 'query', 'sql', sql, '--via', 'lambda', '--format', 'csv', '--out', out, '--max-rows', String(ROWS), '--timeout', '15m'], {
    cwd: project.dir,
    env: { ...process.env, ...env, ...(process.env.BENCH_CLI_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_CLI_NODE_OPTIONS } : {}) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const r = { status, stderr };
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`query sql failed (${r.status}): ${r.stderr}`);
  const rssMb = Number(/maxrss_kb=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
  const invocations = fake.invocations.filter((i) => (i.event as { query?: string }).query === 'sql' && /generate_series/.test(String((i.event as { sql?: string }).sql)));
  const maxPageMb = Math.max(...invocations.map((i) => i.bytes)) / 1e6;
  const lines = spawnSync('wc', ['-l', out], { encoding: 'utf8' }).stdout.trim().split(' ')[0];
  console.log(`query sql --via lambda --format csv --out: ${ROWS} rows (${lines} lines with the header, ${(statSync(out).size / 1e6).toFixed(0)} MB) in ${invocations.length} pages (largest ${maxPageMb.toFixed(2)} MB) in ${seconds.toFixed(1)} s`);
  console.log(`  peak RSS of the CLI process ${rssMb.toFixed(0)} MB (target < 200 MB)  ${verdict(rssMb < 200)}`);
  if (Number(lines) !== ROWS + 1) throw new Error(`expected ${ROWS + 1} lines, got ${lines}`);
} finally {
  restore();
  await fake.close();
  await moto.stop();
  await db.drop();
  project.cleanup();
}
