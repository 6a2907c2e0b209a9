import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, cliImports, makeProject, NO_DB, type Project } from '../helpers/project.js';

// Start-up paths: the lean path (src/lean.ts) answers exactly as oclif does, the validated spec is cached
// in .iotctl/ and follows every edit, and the common read-only commands load neither oclif nor the validator.

const SPEC = `project: demo
target: local
local: { mqttPort: 0 }
streams:
  - name: telemetry
    shards: 1
`;

let project: Project;
const run = (args: string[], env: Record<string, string> = {}) => cli(args, { cwd: project.dir, env: { ...NO_DB, ...env } });

test.before(async () => {
  project = makeProject(SPEC);
  assert.is((await run(['apply', '--yes'])).code, 0);
});
test.after(() => project.cleanup());

test('the lean path prints, fails and declines exactly as oclif does', async () => {
  const cases: [string[], Record<string, string>?][] = [
    [['device', 'list', '--json']],
    [['device', 'list']],
    [['rules', 'list', '--json']],
    [['stream', 'list']],
    [['stream', 'list', '--json', '--target=local']],
    [['query', 'recent', '--device', 'd1']],
    [['query', 'recent', '-d', 'd1', '-n', '0']],
    [['query', 'recent', '--device', 'd1', '--format', 'bogus']],
    [['query', 'recent', '--json']],
    [['query', 'recent', '-n', '5'], { IOTCTL_DEVICE: 'd1' }],
    [['rules', 'list', '--bogus']],
    [['rules', 'list', 'extra']],
    [['rules', 'list', '--json', '--json']],
    [['device', 'list', '--help']],
    [['device', 'list', '--spec', 'missing.yaml', '--json']],
    [['device', 'list', '--spec', 'missing.yaml'], { IOTCTL_DEBUG: 'yes' }],
  ];
  for (const [args, env] of cases) {
    const lean = await run(args, env);
    const oclif = await run(args, { ...env, IOTCTL_NO_LEAN: '1' });
    assert.equal(lean, oclif, `iotctl ${args.join(' ')}`);
  }
});

test('the validated spec is cached in .iotctl/ and an edit is validated again', async () => {
  const cache = join(project.stateDir, 'spec-cache.json');
  rmSync(cache, { force: true });
  assert.is((await run(['stream', 'list', '--json'])).code, 0);
  assert.ok(existsSync(cache));
  assert.is(JSON.parse(readFileSync(cache, 'utf8')).specs.default.project, 'demo');
  const original = readFileSync(project.specFile, 'utf8');
  try {
    writeFileSync(project.specFile, original.replace('shards: 1', 'shards: 0'));
    const bad = await run(['stream', 'list']);
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /iotctl\.yaml:\d+:\d+ streams\[0\]\.shards/);
    writeFileSync(project.specFile, original.replace('project: demo', 'project: other'));
    assert.is((await run(['stream', 'list'])).code, 0);
    assert.is(JSON.parse(readFileSync(cache, 'utf8')).specs.default.project, 'other');
  } finally {
    writeFileSync(project.specFile, original);
  }
});

test('device list, rules list and stream list load neither oclif nor yaml, zod or x509', async () => {
  assert.is((await run(['rules', 'list'])).code, 0); // fills the spec cache
  for (const args of [['device', 'list', '--json'], ['rules', 'list', '--json'], ['stream', 'list']]) {
    const r = await cliImports(args, { cwd: project.dir, env: NO_DB });
    assert.is(r.code, 0, r.stderr);
    const loaded = r.imports.join('\n');
    for (const heavy of ['@oclif/core', '/zod/', '/yaml/', '@peculiar/x509', '/ink/', '/react/']) assert.not.ok(loaded.includes(heavy), `${args.join(' ')} loaded ${heavy}`);
  }
});

test.run();
