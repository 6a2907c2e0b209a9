/**
 * Issue 16, finding 6 and part of 13: files the CLI writes where a user pointed it (device credentials, the
 * credentials index, --out) are created exclusively, never through a name another local user prepared.
 * Run as root, as CI runs, with `nobody` as the attacker in a shared (01777) folder.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { asOtherUser, canActAsOtherUser, sharedTempDir } from '../helpers/other-user.js';
import { cli, makeProject, MINIMAL_SPEC, NO_DB, type Project } from '../helpers/project.js';
import { stageFolder, writeNewFile } from '../../src/services/files.js';
import { rememberCredentialsDir, readCredentialsIndex } from '../../src/services/credentials-index.js';

let project: Project;
let shared: ReturnType<typeof sharedTempDir>;
const run = (...args: string[]) => cli(args, { cwd: project.dir, env: NO_DB, timeoutMs: 60_000 });

test.before(() => {
  project = makeProject(MINIMAL_SPEC);
  shared = sharedTempDir({ writable: true });
});
test.after(() => {
  project.cleanup();
  shared.cleanup();
});

/** As nobody: a file only nobody can read, which must never receive anything. */
function plantLoot(name: string): string {
  const loot = join(shared.dir, name);
  const r = asOtherUser('sh', ['-c', `umask 077 && : > "${loot}"`]);
  assert.is(r.code, 0, r.stderr);
  return loot;
}

const lastPid = () => Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));

test('device register --out <shared dir>: the private key never lands in a file another user planted', async () => {
  if (!canActAsOtherUser) return console.log('  (skipped: needs root and runuser)');
  const out = join(shared.dir, 'devices');
  assert.is(asOtherUser('mkdir', ['-m', '0777', out]).code, 0);
  const loot = plantLoot('loot.key');
  // Every name the CLI could use for its temporary folder: `.<thing>.<pid>.tmp` for the pids to come,
  // each with private.key (and the other files) linked to nobody's file.
  const from = lastPid() + 1;
  const script = `const fs = require('fs'); for (let p = ${from}; p <= ${from + 1500}; p++) { const d = ${JSON.stringify(out)} + '/.sensor-1.' + p + '.tmp'; fs.mkdirSync(d, { mode: 0o777 }); for (const f of ['private.key', 'cert.pem', 'ca.pem', 'endpoint.json']) fs.symlinkSync(${JSON.stringify(loot)}, d + '/' + f); }`;
  const plant = asOtherUser(process.execPath, ['-e', script]);
  assert.is(plant.code, 0, plant.stderr);

  const r = await run('device', 'register', 'sensor-1', '--out', out);
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(loot, 'utf8'), '', 'nothing was written through the planted links');
  const dir = join(out, 'sensor-1');
  const dirStat = lstatSync(dir);
  assert.ok(dirStat.isDirectory() && dirStat.uid === 0, 'the credentials folder is root\'s own, not a planted one');
  assert.is(dirStat.mode & 0o777, 0o700);
  for (const f of readdirSync(dir)) assert.ok(lstatSync(join(dir, f)).isFile(), `${f} is a regular file`);
  assert.is(statSync(join(dir, 'private.key')).mode & 0o777, 0o600);
  assert.match(readFileSync(join(dir, 'private.key'), 'utf8'), /PRIVATE KEY/);
  // No private temporary folder is left behind.
  assert.equal(readdirSync(out).filter((n) => !/^\.sensor-1\.\d+\.tmp$/.test(n)), ['sensor-1']);
});

test('device register: a symlink planted at the final credentials folder is refused, and its target receives nothing', async () => {
  if (!canActAsOtherUser) return;
  const out = join(shared.dir, 'devices2');
  const trap = join(shared.dir, 'trap');
  assert.is(asOtherUser('mkdir', ['-m', '0777', out, trap]).code, 0);
  assert.is(asOtherUser('ln', ['-s', trap, join(out, 'sensor-2')]).code, 0);
  const dangling = join(shared.dir, 'nowhere');
  assert.is(asOtherUser('ln', ['-s', dangling, join(out, 'sensor-3')]).code, 0);
  for (const thing of ['sensor-2', 'sensor-3']) {
    const r = await run('device', 'register', thing, '--out', out);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /^Error: .*already exists/m);
    assert.match(r.stderr, /^Try: /m);
    assert.not.match(r.stderr, /Error \(bug\)/);
  }
  assert.equal(readdirSync(trap), []);
  assert.not.ok(existsSync(dangling));
  // Nothing half-applied: the refused things were not registered.
  const list = await run('device', 'list', '--json');
  assert.not.match(list.stdout, /sensor-2|sensor-3/);
});

test('athena run --out refuses an existing file without --force, and --force replaces it by rename', async () => {
  const file = join(project.dir, 'existing.csv');
  writeFileSync(file, 'precious\n');
  const refused = await run('athena', 'run', 'SELECT 1 AS x', '--out', file);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /^Error: .*existing\.csv already exists/m);
  assert.match(refused.stderr, /^Try: .*--force/m);
  assert.is(readFileSync(file, 'utf8'), 'precious\n');
  const forced = await run('athena', 'run', 'SELECT 1 AS x', '--out', file, '--force');
  assert.is(forced.code, 0, forced.stderr);
  assert.is(readFileSync(file, 'utf8'), 'x\n1\n');
});

test('athena run --out through a symlink another user planted: refused, and with --force the link is replaced, never written through', async () => {
  if (!canActAsOtherUser) return;
  const loot = plantLoot('loot.csv');
  const link = join(shared.dir, 'report.csv');
  assert.is(asOtherUser('ln', ['-s', loot, link]).code, 0);
  const dangling = join(shared.dir, 'created-by-root.csv');
  const danglingLink = join(shared.dir, 'report2.csv');
  assert.is(asOtherUser('ln', ['-s', dangling, danglingLink]).code, 0);

  const refused = await run('athena', 'run', 'SELECT 42 AS answer', '--out', link);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /already exists/);
  const refusedDangling = await run('athena', 'run', 'SELECT 42 AS answer', '--out', danglingLink);
  assert.is(refusedDangling.code, 1);
  assert.not.ok(existsSync(dangling), 'a dangling link is not followed to create its target');

  const forced = await run('athena', 'run', 'SELECT 42 AS answer', '--out', link, '--force');
  assert.is(forced.code, 0, forced.stderr);
  assert.is(readFileSync(loot, 'utf8'), '', 'nobody\'s file received nothing');
  assert.ok(lstatSync(link).isFile(), 'the link was replaced by a regular file');
  assert.is(lstatSync(link).uid, 0);
  assert.is(readFileSync(link, 'utf8'), 'answer\n42\n');
});

test('athena run --out: no file appears when the query fails', async () => {
  const file = join(project.dir, 'failed.csv');
  const r = await run('athena', 'run', 'SELECT * FROM no_such_table', '--out', file);
  assert.is(r.code, 1);
  assert.not.ok(existsSync(file));
  assert.equal(readdirSync(project.dir).filter((n) => n.startsWith('.failed.csv')), [], 'no temporary folder left');
});

test('analytics dataset content --out: refuses an existing file, and --force replaces a planted symlink instead of writing through it', async () => {
  const p = makeProject(`${MINIMAL_SPEC}analytics:\n  datasets:\n    - name: ds\n      sql: SELECT 42 AS answer\n`);
  const runIn = (...args: string[]) => cli(args, { cwd: p.dir, env: NO_DB, timeoutMs: 60_000 });
  try {
    assert.is((await runIn('analytics', 'apply', '--yes')).code, 0);
    assert.is((await runIn('analytics', 'dataset', 'run', 'ds')).code, 0);
    const victim = join(p.dir, 'victim.csv');
    writeFileSync(victim, 'victim\n');
    const link = join(p.dir, 'summary.csv');
    symlinkSync(victim, link);
    const refused = await runIn('analytics', 'dataset', 'content', 'ds', '--out', link);
    assert.is(refused.code, 1);
    assert.match(refused.stderr, /^Error: .*summary\.csv already exists/m);
    const forced = await runIn('analytics', 'dataset', 'content', 'ds', '--out', link, '--force');
    assert.is(forced.code, 0, forced.stderr);
    assert.is(readFileSync(victim, 'utf8'), 'victim\n');
    assert.ok(lstatSync(link).isFile());
    assert.match(readFileSync(link, 'utf8'), /answer\s+42/);
  } finally {
    p.cleanup();
  }
});

test('the one writer: exclusive create, no write through a symlink, replace by rename with force, keys 0600 from creation', () => {
  const dir = join(project.dir, 'writer');
  mkdirSync(dir);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'victim\n');
  const link = join(dir, 'link');
  symlinkSync(victim, link);
  assert.throws(() => writeNewFile(link, 'x'), /already exists/);
  writeNewFile(link, 'replaced\n', { force: true, mode: 0o600 });
  assert.is(readFileSync(victim, 'utf8'), 'victim\n');
  assert.ok(lstatSync(link).isFile());
  assert.is(lstatSync(link).mode & 0o777, 0o600);
  assert.throws(() => writeNewFile(dir, 'x', { force: true }), /is a directory/);
  // A folder of credentials: refused over an existing name, 0700 once in place.
  assert.throws(() => stageFolder(link), /already exists/);
  const staged = stageFolder(join(dir, 'creds'));
  staged.write({ name: 'private.key', data: 'k', mode: 0o600 });
  staged.commit();
  assert.is(statSync(join(dir, 'creds')).mode & 0o777, 0o700);
  assert.is(statSync(join(dir, 'creds', 'private.key')).mode & 0o777, 0o600);
  assert.equal(readdirSync(dir).sort(), ['creds', 'link', 'victim']);
});

test('--force never replaces a device, a FIFO or a link to one (as root, renaming over /dev/null would replace the device)', async () => {
  // A private copy of /dev/null and a FIFO: the real /dev/null is never put at risk by this test.
  const dir = join(project.dir, 'special');
  mkdirSync(dir);
  const nullCopy = join(dir, 'null');
  execFileSync('mknod', ['-m', '0666', nullCopy, 'c', '1', '3']);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const stdoutLike = join(dir, 'stdout');
  symlinkSync(nullCopy, stdoutLike);
  for (const dest of [nullCopy, fifo, stdoutLike]) assert.throws(() => writeNewFile(dest, 'x', { force: true }), /not a regular file/);
  const r = await run('athena', 'run', 'SELECT 1 AS x', '--out', stdoutLike, '--force');
  assert.is(r.code, 1);
  assert.match(r.stderr, /^Error: .* is not a regular file/m);
  assert.match(r.stderr, /^Try: /m);
  assert.ok(lstatSync(nullCopy).isCharacterDevice());
  assert.ok(lstatSync(fifo).isFIFO());
  assert.ok(lstatSync(stdoutLike).isSymbolicLink());
});

test('the credentials index is replaced, never written through a planted symlink, and is 0600', () => {
  const stateDir = join(project.dir, 'state-index');
  mkdirSync(stateDir);
  const victim = join(project.dir, 'index-victim');
  writeFileSync(victim, 'victim\n');
  const from = lastPid() + 1;
  for (let p = from - 50; p < from + 200; p++) symlinkSync(victim, join(stateDir, `credentials.json.${p}.tmp`));
  symlinkSync(victim, join(stateDir, `credentials.json.${process.pid}.tmp`));
  rememberCredentialsDir(stateDir, 'd1', '/somewhere/d1');
  assert.is(readFileSync(victim, 'utf8'), 'victim\n');
  assert.equal(readCredentialsIndex(stateDir), { d1: '/somewhere/d1' });
  assert.is(lstatSync(join(stateDir, 'credentials.json')).mode & 0o777, 0o600);
});

test.run();
