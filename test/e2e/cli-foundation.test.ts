import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { cli, makeProject, MINIMAL_SPEC, type Project } from '../helpers/project.js';
import { openStore } from '../../src/targets/local/store.js';
import { Registry } from '../../src/targets/local/registry.js';

let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir });

test.before(() => {
  project = makeProject(MINIMAL_SPEC);
});
test.after(() => project.cleanup());

test('init writes a spec that validates, and refuses to overwrite it', async () => {
  const p = makeProject(MINIMAL_SPEC);
  try {
    writeFileSync(p.specFile, '');
    const again = await cli(['init'], { cwd: p.dir });
    assert.is(again.code, 1);
    assert.match(again.stderr, /already exists[\s\S]*--force/);
    const forced = await cli(['init', '--force', '--project', 'fleet'], { cwd: p.dir });
    assert.is(forced.code, 0, forced.stderr);
    const valid = await cli(['spec', 'validate', '--json'], { cwd: p.dir });
    assert.equal(JSON.parse(valid.stdout), { valid: true, file: p.specFile, project: 'fleet', target: 'local', stages: ['default'] });
  } finally {
    p.cleanup();
  }
});

test('a malformed iotctl.yaml reports every problem as file:line:col path: message', async () => {
  const p = makeProject(MINIMAL_SPEC);
  try {
    writeFileSync(p.specFile, ['project: Demo!', 'target: lokal', 'streams:', '  - name: s', '    shards: zero', 'rules:', '  - name: r1', "    sql: SELECT * FROM 'a/#' WHERE", '    actions:', '      - kinesis: { stream: missing }', ''].join('\n'));
    const r = await cli(['spec', 'validate'], { cwd: p.dir });
    assert.is(r.code, 1);
    assert.match(r.stderr, /iotctl\.yaml:1:10 project: /);
    assert.match(r.stderr, /iotctl\.yaml:2:9 target: /);
    assert.match(r.stderr, /iotctl\.yaml:5:13 streams\[0\]\.shards: /);
    // Once the schema is right, SQL and references are checked with positions too.
    writeFileSync(p.specFile, ['project: demo', 'streams: [{name: s}]', 'rules:', '  - name: r1', "    sql: SELECT * FROM 'a/#' WHERE", '    actions:', '      - kinesis: { stream: missing }', ''].join('\n'));
    const sql = await cli(['spec', 'validate'], { cwd: p.dir });
    assert.is(sql.code, 1);
    assert.match(sql.stderr, /iotctl\.yaml:5:\d+ rules\[0\]\.sql: /);
    assert.match(sql.stderr, /iotctl\.yaml:7:\d+ rules\[0\]\.actions\[0\]\.kinesis: stream "missing" is not declared/);
    assert.match(sql.stderr, /Try: /);
    const json = await cli(['spec', 'validate', '--json'], { cwd: p.dir });
    assert.is(JSON.parse(json.stdout).error.code, 'SPEC_INVALID');
  } finally {
    p.cleanup();
  }
});

test('spec schema prints a JSON Schema', async () => {
  const r = await run('spec', 'schema');
  assert.is(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout);
  assert.ok(schema.properties.project && schema.properties.rules && schema.properties.analytics);
});

test('device register writes credentials (key 0600) and device show reports certificate, policies and topics', async () => {
  const r = await run('device', 'register', 'sensor-1', '--attribute', 'site=lab', '--type', 'thermostat', '--json');
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stdout + r.stderr, /PRIVATE KEY/);
  const dir = join(project.dir, 'devices', 'sensor-1');
  for (const f of ['cert.pem', 'private.key', 'ca.pem', 'endpoint.json']) assert.ok(existsSync(join(dir, f)), f);
  assert.is(statSync(join(dir, 'private.key')).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(join(dir, 'endpoint.json'), 'utf8')), { host: '127.0.0.1', port: 0 });
  // The certificate chains to ca.pem (checked with openssl, not our code).
  execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'cert.pem')]);
  const show = JSON.parse((await run('device', 'show', 'sensor-1', '--json')).stdout);
  assert.is(show.thingType, 'thermostat');
  assert.equal(show.attributes, { site: 'lab' });
  assert.is(show.certificateStatus, 'ACTIVE');
  assert.match(show.certificateId, /^[0-9a-f]{64}$/);
  assert.match(show.fingerprint, /^SHA256:/);
  assert.equal(show.policies, ['iotctl-device']);
  assert.equal(show.topics, { telemetry: 'dt/demo/sensor-1/telemetry', commands: 'cmd/demo/sensor-1/#' });
});

test('a duplicate thing name is refused and nothing changes', async () => {
  const r = await run('device', 'register', 'sensor-1');
  assert.is(r.code, 1);
  assert.match(r.stderr, /already exists/);
  const list = JSON.parse((await run('device', 'list', '--json')).stdout);
  assert.is(list.length, 1);
});

test('an invalid CSR is refused and leaves nothing half-created', async () => {
  writeFileSync(join(project.dir, 'bad.csr'), '-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----\n');
  const r = await run('device', 'register', 'sensor-9', '--csr', 'bad.csr');
  assert.is(r.code, 1);
  assert.match(r.stderr, /^Error: .*CSR/im);
  assert.match(r.stderr, /Try: /);
  assert.not.ok(existsSync(join(project.dir, 'devices', 'sensor-9')));
  const db = openStore(project.stateDir);
  try {
    assert.is(new Registry(db).getThing('sensor-9'), undefined);
  } finally {
    db.close();
  }
});

test('a CSR from openssl is signed; the key never leaves the device', async () => {
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(project.dir, 'dev.key'), '-out', join(project.dir, 'dev.csr'), '-subj', '/CN=sensor-5'], { stdio: 'ignore' });
  const r = await run('device', 'register', 'sensor-5', '--csr', 'dev.csr');
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(existsSync(join(project.dir, 'devices', 'sensor-5', 'private.key')));
  execFileSync('openssl', ['verify', '-CAfile', join(project.dir, 'devices', 'sensor-5', 'ca.pem'), join(project.dir, 'devices', 'sensor-5', 'cert.pem')]);
});

test('bulk registration from CSV with a summary; a re-run skips devices already done', async () => {
  const rows = ['thingName,thingType,site', ...Array.from({ length: 30 }, (_, i) => `bulk-${i},sensor,lab-${i % 3}`)];
  writeFileSync(join(project.dir, 'devices.csv'), rows.join('\n') + '\n');
  const first = await run('device', 'register', '--from-file', 'devices.csv', '--json');
  assert.is(first.code, 0, first.stderr);
  const r1 = JSON.parse(first.stdout);
  assert.is(r1.registered.length, 30);
  assert.match(first.stderr, /Registered 30, skipped 0 already registered, failed 0/);
  const second = JSON.parse((await run('device', 'register', '--from-file', 'devices.csv', '--json')).stdout);
  assert.is(second.registered.length, 0);
  assert.is(second.skipped.length, 30);
  const missing = await run('device', 'register', '--from-file', 'nope.csv');
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /Cannot read the devices CSV nope\.csv: no such file/);
});

test('an unreadable payload file and a wrong port get clear errors', async () => {
  const payload = await run('publish', '--device', 'sensor-1', '--payload', '@missing.json');
  assert.is(payload.code, 1);
  assert.match(payload.stderr, /Cannot read the payload file missing\.json/);
  const port = await run('publish', '--device', 'sensor-1', '--payload', '{}', '--port', '1');
  assert.is(port.code, 1);
  assert.match(port.stderr, /Nothing listens on 127\.0\.0\.1:1/);
  const up = await run('local', 'up', '--mqtt-port', '99999');
  assert.is(up.code, 1);
  assert.match(up.stderr, /mqtt-port/);
});

test('policy test evaluates a document and explains the decision', async () => {
  writeFileSync(join(project.dir, 'policy.json'), JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/dt/${iot:Connection.Thing.ThingName}/*' },
      { Effect: 'Deny', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/dt/*/secret' },
    ],
  }));
  const base = ['policy', 'test', '--policy', 'policy.json', '--action', 'iot:Publish', '--client-id', 'c1', '--thing', 'c1', '--json', '--resource'];
  assert.is(JSON.parse((await run(...base, 'arn:aws:iot:us-east-1:123456789012:topic/dt/c1/temp')).stdout).decision, 'allow');
  assert.is(JSON.parse((await run(...base, 'arn:aws:iot:us-east-1:123456789012:topic/dt/c2/temp')).stdout).decision, 'deny');
  const denied = JSON.parse((await run(...base, 'arn:aws:iot:us-east-1:123456789012:topic/dt/c1/secret')).stdout);
  assert.is(denied.decision, 'deny');
  assert.ok(denied.statements.some((s: { effect: string; matched: boolean }) => s.effect === 'Deny' && s.matched));
});

test('device revoke and delete', async () => {
  const revoked = JSON.parse((await run('device', 'revoke', 'bulk-1', '--json')).stdout);
  assert.is(revoked.revoked.length, 1);
  assert.is(JSON.parse((await run('device', 'show', 'bulk-1', '--json')).stdout).certificateStatus, 'REVOKED');
  assert.is((await run('device', 'delete', 'bulk-1')).code, 0);
  const gone = await run('device', 'show', 'bulk-1');
  assert.is(gone.code, 1);
  assert.match(gone.stderr, /No thing named "bulk-1"/);
});

test.run();
