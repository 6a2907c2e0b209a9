// One contract, two targets (local.test.ts, aws.test.ts): the same scenarios through the built CLI (and the stream port) against the
// local target and against the aws target on moto_server (a real implementation of the AWS APIs).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { freshDatabase, type TestDatabase } from '../helpers/pg.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { formatViolations, type RealismOptions } from '../helpers/aws-realism.js';
import { initSpec } from '../../src/spec/init-template.js';
import { Context } from '../../src/context.js';
import { openTarget } from '../../src/targets/index.js';
import type { Target, TailRecord } from '../../src/ports.js';

type TargetName = 'local' | 'aws';

interface Env {
  project: Project;
  env: Record<string, string>;
  /** Puts records into the stream the way the target's producers do (Kinesis PutRecord / the local stream). */
  put(stream: string, records: { key: string; data: unknown }[]): Promise<void>;
  /** moto runs no SQL: the rows Athena's next query returns (and writes as its CSV), header first. DuckDB needs nothing. */
  queueQueryResult(rows: string[][]): Promise<void>;
  close(): Promise<void>;
}

let moto: Moto | undefined;

async function setUp(name: TargetName, realism?: Omit<RealismOptions, 'target'>): Promise<Env> {
  const db: TestDatabase = await freshDatabase();
  // The seed architecture, as `iotctl init` writes it for each target.
  const project = makeProject(initSpec('contract', name).replace('mqttPort: 8883', 'mqttPort: 0'));
  if (name === 'local') {
    const env = { DATABASE_URL: db.url };
    return {
      project,
      env,
      async put(stream, records) {
        const { openStore } = await import('../../src/targets/local/store.js');
        const { LocalStreams } = await import('../../src/targets/local/stream.js');
        const store = openStore(project.stateDir);
        const streams = new LocalStreams(store);
        for (const r of records) streams.putRecord(stream, Buffer.from(JSON.stringify(r.data)), r.key);
        store.close();
      },
      async queueQueryResult() {},
      async close() {
        project.cleanup();
        await db.drop();
      },
    };
  }
  moto ??= await startMoto(realism ? { realism } : {});
  await moto.reset();
  const env = { ...moto.env, DATABASE_URL: db.url };
  return {
    project,
    env,
    async put(stream, records) {
      const restore = useEnv(moto!.env);
      const { AwsClients } = await import('../../src/targets/aws/sdk.js');
      const aws = new AwsClients({});
      try {
        const { client, sdk } = await aws.get('kinesis');
        // The stream iotctl made for the logical name, in the default stage (naming.ts).
        const { stageNames } = await import('../../src/targets/aws/naming.js');
        const StreamName = stageNames({ project: project.spec.project, stage: 'default' }).stream(stream);
        for (const r of records) await client.send(new sdk.PutRecordCommand({ StreamName, PartitionKey: r.key, Data: Buffer.from(JSON.stringify(r.data)) }));
      } finally {
        aws.destroy();
        restore();
      }
    },
    async queueQueryResult(rows) {
      const cells = (row: string[]) => ({ Data: row.map((VarCharValue) => ({ VarCharValue })) });
      const column_info = rows[0]!.map((Name) => ({ Name, Label: Name, Type: 'bigint', Nullable: 'UNKNOWN', CaseSensitive: false }));
      const res = await fetch(`${moto!.url}/moto-api/static/athena/query-results`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ results: [{ column_info, rows: rows.map(cells) }] }),
      });
      assert.ok(res.status < 300, await res.text());
    },
    async close() {
      project.cleanup();
      await db.drop();
    },
  };
}

/** The same target the CLI opens, in this process (with the target's environment). */
async function withPortTarget<T>(e: Env, fn: (target: Target) => Promise<T>): Promise<T> {
  const restore = useEnv(e.env);
  const ctx = new Context({ specFile: e.project.specFile, projectDir: e.project.dir, stateDir: e.project.stateDir });
  const target = await openTarget(ctx);
  try {
    return await fn(target);
  } finally {
    await target.close();
    restore();
  }
}

async function tailAll(target: Target, stream: string, expected: number): Promise<TailRecord[]> {
  const abort = new AbortController();
  const seen: TailRecord[] = [];
  const timer = setTimeout(() => abort.abort(), 20_000);
  try {
    for await (const r of target.streams.tail(stream, { from: { kind: 'trim-horizon' }, signal: abort.signal })) {
      seen.push(r);
      if (seen.length >= expected) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return seen;
}

/**
 * The contract's scenarios against one target (each target's file runs them, so both run in parallel). `realism`:
 * on aws, the realism proxy between the CLI and moto with these faults (aws-realism.ts), and no AWS model violation.
 */
export function runContract(name: TargetName, opts: { realism?: Omit<RealismOptions, 'target'> } = {}): void {
  const contract = suite(`contract [${name}]`);
  let e: Env;
  const run = (...args: string[]) => cli(args, { cwd: e.project.dir, env: e.env, timeoutMs: 120_000 });
  const json = async (...args: string[]) => {
    const r = await run(...args, '--json');
    assert.is(r.code, 0, `iotctl ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  contract.before(async () => {
    e = await setUp(name, opts.realism);
  });
  contract.after(async () => {
    await e?.close();
  });

  contract('apply the init spec; a second apply has nothing to do', async () => {
    const first = await run('apply', '--yes');
    assert.is(first.code, 0, first.stderr);
    const again = await run('apply', '--dry-run');
    assert.is(again.code, 0, again.stderr);
    assert.match(again.stdout + again.stderr, /No changes/);
    const status = await json('status');
    const drift = (status.resources ?? status).filter((r: { state: string }) => r.state !== 'in sync');
    assert.equal(drift, [], 'status: every resource in sync');
  });

  contract('register, list, show, revoke, delete a device', async () => {
    const reg = await json('device', 'register', 'sensor-1', '--attribute', 'site=lab');
    assert.is(reg.thingName, 'sensor-1');
    assert.match(reg.credentials, /devices\/sensor-1$/);
    const list = await json('device', 'list');
    assert.equal(list.map((d: { thingName: string }) => d.thingName), ['sensor-1']);
    const shown = await json('device', 'show', 'sensor-1');
    assert.is(shown.certificateStatus, 'ACTIVE');
    assert.equal(shown.attributes, { site: 'lab' });
    // On aws the policy has the stage's name (naming.ts), on the local target the one iotctl.yaml gives.
    const policy = name === 'aws' ? (await import('../../src/targets/aws/naming.js')).stageNames({ project: 'contract', stage: 'default' }).devicePolicy('contract-device') : 'contract-device';
    assert.ok(shown.policies.includes(policy), shown.policies.join());
    await json('device', 'revoke', 'sensor-1');
    assert.is.not((await json('device', 'show', 'sensor-1')).certificateStatus, 'ACTIVE');
    assert.is((await run('device', 'delete', 'sensor-1')).code, 0);
    const gone = await run('device', 'show', 'sensor-1');
    assert.is(gone.code, 1);
    assert.equal(await json('device', 'list'), []);
  });

  contract('change a rule: replace planned and applied; prune deletes a rule the spec dropped', async () => {
    const spec = e.project.specFile;
    const { readFileSync } = await import('node:fs');
    const original = readFileSync(spec, 'utf8');
    writeFileSync(spec, original.replace("FROM 'dt/contract/+/telemetry'\n    actions:\n      - kinesis", "FROM 'dt/contract/+/telemetry' WHERE temperature > -100\n    actions:\n      - kinesis"));
    const diff = await run('rules', 'diff');
    assert.is(diff.code, 3, diff.stderr);
    assert.match(diff.stdout + diff.stderr, /telemetry_to_stream/);
    assert.is((await run('rules', 'apply', '--yes')).code, 0);
    assert.is((await run('rules', 'diff')).code, 0);
    // Drop the lake rule from the spec: only --prune deletes it.
    const withoutLake = readFileSync(spec, 'utf8').replace(/  - name: telemetry_to_lake[\s\S]*?(?=\n# )/, '');
    writeFileSync(spec, withoutLake);
    assert.is((await run('rules', 'apply', '--yes', '--prune')).code, 0);
    const names = (await json('rules', 'list')).map((r: { name: string }) => r.name);
    assert.equal(names, ['telemetry_to_stream']);
    writeFileSync(spec, original);
    assert.is((await run('rules', 'apply', '--yes')).code, 0);
  });

  contract('deploy the function twice: the second deploy is a no-op', async () => {
    const first = await json('lambda', 'deploy', 'ingest-rds', '--name', 'ingest');
    assert.ok(['unchanged', 'updated', 'created'].includes(first.result));
    const second = await json('lambda', 'deploy', 'ingest-rds', '--name', 'ingest');
    assert.is(second.result, 'unchanged');
    const fns = await json('lambda', 'list');
    assert.ok(fns.some((f: { name: string }) => f.name === 'ingest'));
  });

  contract('tail a 2-shard stream, reshard, tail again', async () => {
    const batch = (from: number) => Array.from({ length: 20 }, (_, i) => ({ key: `device-${from + i}`, data: { device_id: `device-${from + i}`, n: from + i } }));
    await e.put('telemetry', batch(0));
    await withPortTarget(e, async (target) => {
      assert.is((await target.streams.describe('telemetry')).shards, 2);
      const seen = await tailAll(target, 'telemetry', 20);
      assert.equal(seen.map((r) => (r.data as { n: number }).n).sort((a, b) => a - b), [...Array(20).keys()], 'every record once');
      assert.is(new Set(seen.map((r) => r.shardId)).size, 2, 'both shards read');
      assert.is(await target.streams.ensure({ name: 'telemetry', shards: 4, retentionHours: 24 }), 'updated');
      assert.is((await target.streams.describe('telemetry')).shards, 4);
    });
    await e.put('telemetry', batch(100));
    await withPortTarget(e, async (target) => {
      // Locally a reshard recreates the stream; on AWS the parents keep their records until retention.
      const expected = name === 'aws' ? 40 : 20;
      const seen = await tailAll(target, 'telemetry', expected);
      const after = seen.map((r) => (r.data as { n: number }).n).filter((n) => n >= 100);
      assert.equal(after.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => 100 + i), 'every record put after the reshard, once');
    });
  });

  contract('analytics: change a pipeline activity and add a dataset; a second apply has nothing to do', async () => {
    const { readFileSync } = await import('node:fs');
    const spec = readFileSync(e.project.specFile, 'utf8');
    const changed = spec
      .replace('temperature < 150', 'temperature < 200')
      .replace('  datasets:\n', '  datasets:\n    - name: message_count\n      sql: SELECT count(*) AS n FROM telemetry_store\n')
      .replace('  channels:\n', '  channels:\n    - name: audit_raw\n');
    assert.is.not(changed, spec);
    writeFileSync(e.project.specFile, changed);
    const plan = await json('analytics', 'apply', '--dry-run');
    const changes = plan.plan.filter((i: { action: string }) => i.action !== 'noop').map((i: { action: string; name: string }) => `${i.action} ${i.name}`);
    // Locally the pipeline's configuration is replaced; on AWS its transform function is updated.
    assert.ok(changes.some((c: string) => /^(update|replace) .*(telemetry_pipeline|transform-telemetry_pipeline)$/.test(c)), `the pipeline changes: ${changes}`);
    assert.ok(changes.some((c: string) => /^create .*message_count$/.test(c)), `the dataset is created: ${changes}`);
    assert.ok(changes.some((c: string) => /^create .*audit_raw$/.test(c)), `the channel is created: ${changes}`);
    assert.ok(!changes.some((c: string) => c.startsWith('delete')), `nothing is deleted: ${changes}`);
    assert.is((await run('analytics', 'apply', '--yes')).code, 0);
    const again = await json('analytics', 'apply', '--dry-run');
    assert.equal(again.plan.filter((i: { action: string }) => i.action !== 'noop'), []);
  });

  contract('analytics: run a dataset; its content is the latest version; status shows the run', async () => {
    await e.queueQueryResult([['n'], ['0']]);
    const result = await json('analytics', 'dataset', 'run', 'message_count');
    assert.is(result.status, 'SUCCEEDED', result.error);
    assert.is(result.rows, 1);
    assert.equal(result.columns.map((c: { name: string }) => c.name), ['n']);
    const versions = await json('analytics', 'dataset', 'content', 'message_count', '--versions');
    assert.is(versions[0].version, result.version);
    const out = join(e.project.dir, 'count.csv');
    assert.is((await run('analytics', 'dataset', 'content', 'message_count', '--out', out)).code, 0);
    const { readFileSync } = await import('node:fs');
    assert.is(readFileSync(out, 'utf8').replace(/"/g, ''), 'n\n0\n', 'the same CSV on both targets (Athena quotes every value)');
    const status = await json('analytics', 'status');
    assert.equal(status.pipelines.map((p: { name: string }) => p.name), ['telemetry_pipeline']);
    assert.equal(status.datastores.map((d: { name: string }) => d.name), ['telemetry_store']);
    const ds = status.datasets.find((d: { name: string }) => d.name === 'message_count');
    assert.is(ds.lastRun.version, result.version);
    assert.is(ds.lastRun.status, 'SUCCEEDED');
  });

  // A channel, not the dataset: moto has no DeleteNamedQuery (nor UpdateNamedQuery).
  contract('analytics: prune deletes the channel the spec dropped', async () => {
    const { readFileSync } = await import('node:fs');
    const spec = readFileSync(e.project.specFile, 'utf8');
    writeFileSync(e.project.specFile, spec.replace('    - name: audit_raw\n', ''));
    const audit = async () => (await json('analytics', 'list')).filter((r: { name: string }) => r.name.endsWith('audit_raw'));
    assert.ok((await audit()).length > 0, 'without --prune the channel stays');
    assert.is((await run('analytics', 'apply', '--yes', '--prune')).code, 0);
    assert.equal(await audit(), []);
    assert.equal((await json('analytics', 'apply', '--dry-run', '--prune')).plan.filter((i: { action: string }) => i.action !== 'noop'), []);
  });

  contract('athena tables lists the catalog', async () => {
    const tables = await json('athena', 'tables');
    assert.ok(Array.isArray(tables));
    if (name === 'aws') assert.ok(tables.some((t: { table: string }) => /telemetry_store/.test(t.table)), JSON.stringify(tables));
  });

  if (opts.realism)
    contract('every request conformed to the AWS API models', () => {
      const calls = moto!.realism!.calls();
      const injected: Record<string, number> = {};
      for (const c of calls) if (c.injected) injected[`${c.key} ${c.injected}`] = (injected[`${c.key} ${c.injected}`] ?? 0) + 1;
      process.stderr.write(`\n[realism] ${calls.length} calls, refused for AWS's eventual consistency: ${JSON.stringify(injected)}\n`);
      const found = moto!.realism!.distinctViolations();
      assert.equal(found.length, 0, formatViolations(found));
    });

  contract.after(async () => {
    await moto?.stop();
  });
  contract.run();
}
