// Issue 16, findings 1, 2 and 13 (state files): the real daemon (`local up --detach`) in a project another user
// can enter, with messages flowing through rules, the ingest function and the lake. As `nobody`, nothing under
// .iotctl can be listed or read; every folder is 0700 and every file 0600; no file but the credentials file
// (postgres.json) holds a password; no password is printed by `local status` or by any error about a URL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { asOtherUser, canActAsOtherUser, sharedTempDir } from '../helpers/other-user.js';
import { cli, removeExternalCluster, waitFor } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { embeddedDataDir, freePort } from '../../src/targets/local/postgres.js';

const shared = sharedTempDir();
const dir = join(shared.dir, 'project');
const stateDir = join(dir, '.iotctl');
const env = { DATABASE_URL: '', PGPASSWORD: '', PGHOST: '', PGUSER: '' };
const run = (args: string[], extraEnv: Record<string, string> = {}, cwd = dir) => cli(args, { cwd, env: { ...env, ...extraEnv }, timeoutMs: 120_000 });
const SECRET = 'S3cr3t-pw';

/** Every path under `root` (lstat: links are not followed). */
function walk(root: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    out.push(path);
    if (lstatSync(path).isDirectory()) out.push(...walk(path));
  }
  return out;
}

/** The passwords in the credentials file (an older iotctl kept one superuser password there). */
function savedPasswords(): string[] {
  const saved = JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8')) as { passwords?: Record<string, string>; password?: string };
  return saved.passwords ? Object.values(saved.passwords) : [saved.password!];
}

const mode = (path: string) => lstatSync(path).mode & 0o777;

function loosePaths(root: string): string[] {
  const bad = [];
  if (mode(root) !== 0o700) bad.push(`${root} ${mode(root).toString(8)}`);
  for (const path of walk(root)) {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) continue;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) bad.push(`${path.slice(root.length + 1)} ${(st.mode & 0o777).toString(8)}`);
  }
  return bad;
}

test.before(async () => {
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'iotctl.yaml'), initSpec('secstate').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  const up = await run(['local', 'up', '--detach']);
  assert.is(up.code, 0, up.stderr);
  for (const args of [['apply', '--yes'], ['device', 'register', 'sensor-1'], ['publish', '--device', 'sensor-1', '--payload', '{"temperature":21}', '--count', '5']]) {
    const r = await run(args);
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  // Through the rules, the stream and the ingest function (its least-privilege role) into PostgreSQL.
  await waitFor(async () => {
    const r = await run(['query', 'sql', 'SELECT count(*)::int AS n FROM iot_messages', '--format', 'json']);
    return r.code === 0 && JSON.parse(r.stdout)[0]?.n >= 5;
  }, 60_000, 'the messages in iot_messages');
});

test.after(async () => {
  await run(['local', 'down']);
  removeExternalCluster(stateDir);
  shared.cleanup();
});

test('the state directory is 0700 and every file in it 0600 (databases, -wal/-shm, json, logs, CA, lake)', () => {
  const files = walk(stateDir).map((p) => p.slice(stateDir.length + 1));
  for (const expected of ['state.db', 'ingress.db', 'daemon.json', 'status.json', 'daemon.log', 'postgres.json', 'ca']) assert.ok(files.includes(expected), `${expected} in ${files.join(', ')}`);
  assert.ok(files.some((f) => /-wal$/.test(f)), 'a WAL file is checked too');
  assert.ok(files.some((f) => /^lake\/raw\/.+\/dt=[^/]+\/./.test(f)), `the lake's files are checked too: ${files.join(', ')}`);
  assert.equal(loosePaths(stateDir), []);
});

test('as nobody: the state directory cannot be listed, and no file in it can be read', () => {
  if (!canActAsOtherUser) return;
  assert.is.not(asOtherUser('ls', [stateDir]).code, 0, 'listing .iotctl');
  const readable = walk(stateDir).filter((p) => lstatSync(p).isFile() && asOtherUser('head', ['-c', '1', p]).code === 0);
  assert.equal(readable, []);
});

test('as root the embedded cluster lives outside the private state dir, owned by postgres, 0700, in a folder holding nothing else', () => {
  if (process.getuid?.() !== 0) return;
  const dataDir = embeddedDataDir(stateDir);
  assert.not.ok(dataDir.startsWith(stateDir + '/'), dataDir);
  assert.is(mode(dataDir), 0o700);
  assert.equal(readdirSync(dirname(dataDir)).sort(), ['postgres', 'state-dir']);
  if (canActAsOtherUser) assert.is.not(asOtherUser('ls', [dataDir]).code, 0, 'listing the data directory');
});

test('no file under .iotctl but postgres.json holds a password; daemon.json and status.json hold none', () => {
  const passwords = savedPasswords();
  const holders = walk(stateDir)
    .filter((p) => lstatSync(p).isFile() && !p.endsWith('/postgres.json'))
    .filter((p) => {
      const bytes = readFileSync(p);
      return passwords.some((pw) => bytes.includes(pw) || bytes.includes(encodeURIComponent(pw))) || /postgres(ql)?:\/\/[^/\s"]*:[^@\s"]+@/.test(bytes.toString('latin1'));
    });
  assert.equal(holders, []);
  assert.is(passwords.length, 3, 'one password per role');
});

test('`local status` (text and --json) prints no password', async () => {
  const passwords = savedPasswords();
  for (const args of [['local', 'status', '--json'], ['local', 'status']]) {
    const r = await run(args);
    assert.is(r.code, 0, r.stderr);
    const out = r.stdout + r.stderr;
    for (const pw of passwords) assert.not.ok(out.includes(pw), `${args.join(' ')} printed a password`);
    assert.match(out, /postgres:\/\/127\.0\.0\.1:\d+\/iotctl/);
  }
});

test('a malformed or unsupported DATABASE_URL is a user error with the password masked (text, --json, --debug)', async () => {
  const urls = [
    `postgres://app:${SECRET}@127.0.0.1:notaport/iot`,
    `postgresql://app:${SECRET}@[127.0.0.1/iot`,
    `host=127.0.0.1 user=app password=${SECRET} dbname=iot`,
    `host=127.0.0.1 password='${SECRET} x' dbname=iot`,
  ];
  for (const url of urls) {
    for (const flags of [[], ['--json'], ['--debug']]) {
      const r = await run(['query', 'sql', 'SELECT 1', ...flags], { DATABASE_URL: url });
      const out = r.stdout + r.stderr;
      assert.is(r.code, 1, out);
      assert.not.ok(out.includes(SECRET), `${url} ${flags}: ${out}`);
      assert.not.ok(/Error \(bug\)|"BUG"/.test(out), `${url} ${flags}: ${out}`);
      assert.match(out, /DB_URL_INVALID|not a valid PostgreSQL URL|key=value/);
    }
  }
  // A well-formed URL whose server refuses: the message names the server, never the password.
  const refused = await run(['query', 'sql', 'SELECT 1', '--json'], { DATABASE_URL: `postgres://app:${SECRET}@127.0.0.1:${await freePort()}/iot?password=${SECRET}` });
  assert.is(refused.code, 1);
  assert.not.ok((refused.stdout + refused.stderr).includes(SECRET), refused.stdout + refused.stderr);
});

test('.iotctl/spec-cache.json never copies a password from iotctl.yaml', async () => {
  const other = join(shared.dir, 'with-url');
  mkdirSync(join(other, '.iotctl'), { recursive: true });
  writeFileSync(join(other, 'iotctl.yaml'), initSpec('securl').replace(/^database:\n/m, `database:\n  url: postgres://app:${SECRET}@127.0.0.1:5432/test\n`), { mode: 0o600 });
  assert.match(readFileSync(join(other, 'iotctl.yaml'), 'utf8'), new RegExp(SECRET), 'the spec names the URL');
  const r = await run(['spec', 'validate'], {}, other);
  assert.is(r.code, 0, r.stderr);
  const cache = join(other, '.iotctl', 'spec-cache.json');
  assert.not.ok(existsSync(cache) && readFileSync(cache, 'utf8').includes(SECRET), 'spec-cache.json holds the password');
  assert.not.ok((r.stdout + r.stderr).includes(SECRET));
});

test('a state directory an older iotctl left open (0755, 0644) is tightened when the CLI opens it', async () => {
  const old = join(shared.dir, 'old-project');
  const oldState = join(old, '.iotctl');
  mkdirSync(join(oldState, 'lake', 'raw'), { recursive: true });
  writeFileSync(join(old, 'iotctl.yaml'), initSpec('secold'));
  writeFileSync(join(oldState, 'spec-cache.json'), '{}');
  writeFileSync(join(oldState, 'lake', 'raw', 'part-0.parquet'), 'x');
  for (const p of [old, oldState, join(oldState, 'lake'), join(oldState, 'lake', 'raw')]) chmodSync(p, 0o755);
  for (const p of [join(oldState, 'spec-cache.json'), join(oldState, 'lake', 'raw', 'part-0.parquet')]) chmodSync(p, 0o644);
  const r = await run(['device', 'list'], {}, old);
  assert.is(r.code, 0, r.stderr);
  assert.equal(loosePaths(oldState), []);
});

test('`local reset --state-dir` refuses a folder that is not a state directory, and a symlink to one', async () => {
  const victim = join(shared.dir, 'victim');
  mkdirSync(victim);
  writeFileSync(join(victim, 'precious.txt'), 'keep me');
  const r = await run(['local', 'reset', '--yes', '--state-dir', victim, '--json']);
  assert.is(r.code, 1, r.stdout);
  assert.is(JSON.parse(r.stdout).error.code, 'NOT_A_STATE_DIR');
  assert.ok(existsSync(join(victim, 'precious.txt')), 'the folder is untouched');

  const link = join(shared.dir, 'link-to-state');
  symlinkSync(stateDir, link);
  const viaLink = await run(['local', 'reset', '--yes', '--state-dir', link]);
  assert.is(viaLink.code, 1, viaLink.stderr);
  assert.match(viaLink.stderr, /symbolic link/);
  assert.ok(existsSync(join(stateDir, 'state.db')), 'the state dir behind the link is untouched');
  rmSync(link);
});

test.run();
