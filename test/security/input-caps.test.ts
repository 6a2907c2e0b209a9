/**
 * Issue 16, part of 13: hostile or mistaken input files end fast, with `Error:` and `Try:` (never
 * `Error (bug)`), exit 1, and without echoing the file's content: /dev/zero, FIFOs, huge files, directories,
 * missing files, a file that is not what the flag expects, a YAML alias bomb.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, MINIMAL_SPEC, NO_DB, type Project } from '../helpers/project.js';

let project: Project;
let fifo: string;

test.before(() => {
  project = makeProject(MINIMAL_SPEC);
  fifo = join(project.dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  mkdirSync(join(project.dir, 'a-folder'));
});
test.after(() => project.cleanup());

/** Runs the CLI and checks the error contract; returns stderr. */
async function refused(args: string[], opts: { cwd?: string; within?: number; message: RegExp }): Promise<string> {
  const started = Date.now();
  const r = await cli(args, { cwd: opts.cwd ?? project.dir, env: NO_DB, timeoutMs: 20_000 });
  const ms = Date.now() - started;
  const what = `iotctl ${args.join(' ')}`;
  assert.is(r.code, 1, `${what}: exit 1\n${r.stderr}`);
  assert.not.match(r.stderr, /Error \(bug\)/, `${what}: a user error, not a bug\n${r.stderr}`);
  assert.match(r.stderr, /^Error: /m, what);
  assert.match(r.stderr, /^Try: /m, `${what}: says how to fix it\n${r.stderr}`);
  assert.match(r.stderr, opts.message, `${what}\n${r.stderr}`);
  // Start-up alone is about 0.5 s (more on a loaded CI runner); reading 4 GB of zeros took 15 s before.
  assert.ok(ms < (opts.within ?? 5_000), `${what} took ${ms} ms`);
  return r.stderr;
}

test('device register --csr /dev/zero, a FIFO, a folder or a missing file ends at once', async () => {
  await refused(['device', 'register', 'd1', '--csr', '/dev/zero'], { message: /\/dev\/zero is larger than 64 KB/ });
  await refused(['device', 'register', 'd1', '--csr', fifo], { message: /pipe is a FIFO, not a regular file/ });
  await refused(['device', 'register', 'd1', '--csr', 'a-folder'], { message: /a-folder is a directory/ });
  await refused(['device', 'register', 'd1', '--csr', 'missing.csr'], { message: /Cannot read the CSR missing\.csr: no such file/ });
});

test('device register --from-file: /dev/zero, a FIFO and a 5 MB CSV are refused before anything is registered', async () => {
  await refused(['device', 'register', '--from-file', '/dev/zero'], { message: /\/dev\/zero is larger than 4\.0 MB/ });
  await refused(['device', 'register', '--from-file', fifo], { message: /FIFO/ });
  const big = join(project.dir, 'fleet.csv');
  const rows = ['thingName,site'];
  for (let i = 0; rows.length * 30 < 5 * 1024 * 1024; i++) rows.push(`sensor-${String(i).padStart(8, '0')},building-a-floor-2`);
  writeFileSync(big, rows.join('\n'));
  await refused(['device', 'register', '--from-file', big], { message: /fleet\.csv is larger than 4\.0 MB/ });
  const list = await cli(['device', 'list', '--json'], { cwd: project.dir, env: NO_DB });
  assert.not.match(list.stdout, /sensor-0/);
});

test('device register --ca-file must be PEM certificates: /etc/shadow, a key, a folder are refused without echoing content', async () => {
  const shadow = readFileSync('/etc/shadow', 'utf8');
  const stderr = await refused(['device', 'register', 'd1', '--ca-file', '/etc/shadow'], { message: /\/etc\/shadow is not a PEM certificate/ });
  for (const line of shadow.split('\n').filter(Boolean).slice(0, 5)) assert.not.ok(stderr.includes(line.split(':')[0]! + ':'), 'no line of the file is echoed');
  assert.not.ok(existsSync(join(project.dir, 'devices', 'd1')), 'nothing written, nothing registered');

  const key = join(project.dir, 'ca.key');
  writeFileSync(key, execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']));
  const keyErr = await refused(['device', 'register', 'd1', '--ca-file', key], { message: /contains a private key/ });
  assert.not.match(keyErr, /BEGIN|MII|MHc/);
  await refused(['device', 'register', 'd1', '--ca-file', 'a-folder'], { message: /a-folder is a directory/ });
  await refused(['device', 'register', 'd1', '--ca-file', '/dev/zero'], { message: /larger than 1\.0 MB/ });

  // A real CA bundle is accepted, and only its certificates are written as ca.pem.
  const bundle = join(project.dir, 'bundle.pem');
  const cert = execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=Test CA', '-days', '1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  writeFileSync(bundle, `# Test CA\n${cert}\nsome trailing text\n`);
  const ok = await cli(['device', 'register', 'd2', '--ca-file', bundle], { cwd: project.dir, env: NO_DB });
  assert.is(ok.code, 0, ok.stderr);
  assert.is(readFileSync(join(project.dir, 'devices', 'd2', 'ca.pem'), 'utf8').trim(), cert.trim());
});

test('device register --out on a file, not a folder, is a user error', async () => {
  await refused(['device', 'register', 'd3', '--out', '/etc/hostname'], { message: /Cannot write \/etc\/hostname\/d3/ });
});

test('a billion-laughs iotctl.yaml is a spec error at file:line:col, in well under a second of work', async () => {
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (const [prev, name] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g'], ['g', 'h'], ['h', 'i']]) levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
  const dir = join(project.dir, 'bomb');
  mkdirSync(dir);
  writeFileSync(join(dir, 'iotctl.yaml'), `project: demo\n${levels.join('\n')}\n`);
  const stderr = await refused(['spec', 'validate'], { cwd: dir, within: 3_000, message: /iotctl\.yaml:3:\d+ .*aliases expand into too much data/ });
  assert.match(stderr, /billion laughs/);
});

test('a 2 MB iotctl.yaml, /dev/zero, a FIFO or a folder as --spec end in a clear error', async () => {
  const dir = join(project.dir, 'huge');
  mkdirSync(dir);
  writeFileSync(join(dir, 'iotctl.yaml'), `project: demo\n# ${'x'.repeat(2 * 1024 * 1024)}\n`);
  await refused(['spec', 'validate'], { cwd: dir, message: /iotctl\.yaml is larger than 1\.0 MB/ });
  await refused(['spec', 'validate', '--spec', '/dev/zero'], { message: /larger than 1\.0 MB/ });
  await refused(['spec', 'validate', '--spec', fifo], { message: /FIFO/ });
  await refused(['spec', 'validate', '--spec', 'a-folder'], { message: /a-folder is a directory/ });
  // Many keys: the duplicate-key check used to compare every pair (80,000 keys took 80 s).
  writeFileSync(join(dir, 'iotctl.yaml'), `project: demo\nx:\n${Array.from({ length: 60_000 }, (_, i) => `  k${i}: 1\n`).join('')}`);
  await refused(['spec', 'validate'], { cwd: dir, within: 3_000, message: /more than 50,000 YAML tokens/ });
});

test('every other file flag: folder, missing file, /dev/zero', async () => {
  await refused(['athena', 'run', '--file', 'a-folder'], { message: /a-folder is a directory/ });
  await refused(['athena', 'run', '--file', 'missing.sql'], { message: /no such file/ });
  await refused(['athena', 'run', '--file', '/dev/zero'], { message: /larger than 16 MB/ });
  await refused(['lambda', 'invoke', 'f', '--event', 'a-folder'], { message: /a-folder is a directory/ });
  await refused(['lambda', 'invoke', 'f', '--event', '/dev/zero'], { message: /larger than 6\.0 MB/ });
  await refused(['policy', 'test', '--policy', 'a-folder', '--action', 'iot:Connect', '--resource', 'x', '--client-id', 'c'], { message: /a-folder is a directory/ });
  await refused(['rules', 'test', '--sql', 'SELECT * FROM "#"', '--messages', '/dev/zero'], { message: /larger than 16 MB/ });
  await refused(['rules', 'test', '--sql', 'SELECT * FROM "#"', '--topic', 't', '--payload', '@/dev/zero'], { message: /larger than 128 KB/ });
  await refused(['rules', 'test', '--sql', 'SELECT * FROM "#"', '--topic', 't', '--payload', `@${fifo}`], { message: /FIFO/ });
  await refused(['athena', 'run', 'SELECT 1', '--out', 'a-folder'], { message: /a-folder is a directory/ });
  await refused(['analytics', 'dataset', 'content', 'x', '--out', 'a-folder'], { message: /a-folder is a directory/ });
});

test.run();
