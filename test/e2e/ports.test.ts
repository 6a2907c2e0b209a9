import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, cliImports, IMPORT_RECORDER, makeProject, NO_DB, ROOT, type Project } from '../helpers/project.js';

// Ports: a local-target command never loads the AWS SDK, and `iotctl status` shows the spec next to the target.

const SPEC = `project: demo
target: local
local: { mqttPort: 0 }
streams:
  - name: telemetry
    shards: 1
rules:
  - name: to_stream
    sql: SELECT * FROM 'devices/+/telemetry'
    actions:
      - kinesis: { stream: telemetry }
`;
// No database (NO_DB): the database section is skipped with a warning (apply and status cover the rest).

let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir, env: NO_DB });

test.before(() => {
  project = makeProject(SPEC);
});
test.after(() => project.cleanup());

/** The modules the built CLI loads for `args` (it must succeed). */
async function importsOf(args: string[]): Promise<string[]> {
  const r = await cliImports(args, { cwd: project.dir, env: NO_DB });
  assert.is(r.code, 0, r.stderr);
  return r.imports;
}

test('the import recorder sees an @aws-sdk import (so the check below can fail)', () => {
  const log = join(project.dir, 'imports-control.log');
  execFileSync(process.execPath, ['--import', IMPORT_RECORDER, '--input-type=module', '-e', "await import('@aws-sdk/client-sts')"], { cwd: ROOT, env: { ...process.env, IOTCTL_IMPORT_LOG: log } });
  assert.ok(readFileSync(log, 'utf8').split('\n').some((u) => u.includes('/@aws-sdk/')));
});

for (const args of [['device', 'list', '--json'], ['rules', 'list', '--json'], ['stream', 'list', '--json'], ['status', '--json']]) {
  test(`iotctl ${args.join(' ')} on the local target loads no @aws-sdk module`, async () => {
    const urls = await importsOf(args);
    // The hook did run in the CLI's process: it saw the command's own module.
    assert.ok(urls.some((u) => u.includes(`/dist/commands/${args[0] === 'status' ? 'status' : `${args[0]}/${args[1]}`}.js`)), 'the recorder saw the command');
    assert.equal(urls.filter((u) => u.includes('/@aws-sdk/')), []);
  });
}

test('status: missing before apply, in sync after, then drift and resources the spec no longer declares', async () => {
  const before = await run('status', '--json');
  assert.is(before.code, 0, before.stderr);
  const b = JSON.parse(before.stdout) as { target: string; resources: { section: string; kind: string; name: string; state: string }[] };
  assert.is(b.target, 'local');
  const state = (rs: typeof b.resources, kind: string, name: string) => rs.find((r) => r.kind === kind && r.name === name)?.state;
  assert.is(state(b.resources, 'stream', 'telemetry'), 'missing');
  assert.is(state(b.resources, 'rule', 'to_stream'), 'missing');

  const applied = await run('apply', '--yes');
  assert.is(applied.code, 0, applied.stderr);
  const after = JSON.parse((await run('status', '--json')).stdout) as typeof b;
  assert.ok(after.resources.length > 0);
  assert.equal(after.resources.filter((r) => r.state !== 'in sync'), []);

  // Retention changed in the spec, and the rule dropped from it.
  writeFileSync(project.specFile, SPEC.replace('shards: 1', 'shards: 1\n    retentionHours: 48').replace(/rules:[\s\S]*$/, ''));
  const drift = JSON.parse((await run('status', '--json')).stdout) as { resources: { kind: string; name: string; state: string; changes: unknown[] }[] };
  const stream = drift.resources.find((r) => r.kind === 'stream')!;
  assert.is(stream.state, 'drift');
  assert.equal(stream.changes, [{ path: 'retentionHours', actual: 24, declared: 48 }]);
  assert.is(drift.resources.find((r) => r.kind === 'rule' && r.name === 'to_stream')?.state, 'not in spec');

  // Piped: TSV with a header, the differences spelled out.
  const piped = await run('status');
  assert.is(piped.code, 0, piped.stderr);
  assert.match(piped.stdout, /^section\tkind\tname\tstate\tdifferences$/m);
  assert.match(piped.stdout, /^streams\tstream\ttelemetry\tdrift\tretentionHours: 24 -> 48$/m);
  assert.match(piped.stdout, /^rules\trule\tto_stream\tnot in spec\t$/m);
});

test.run();
