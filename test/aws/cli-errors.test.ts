// Bad input on the aws target, as a user meets it through the CLI: each gets its own clear message,
// exit 1, and nothing half-created.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { startBlackhole } from '../helpers/aws-realism.js';

const SPEC = `project: errs
target: aws
streams:
  - { name: telemetry }
rules:
  - name: to_stream
    sql: SELECT * FROM 'dt/#'
    actions:
      - kinesis: { stream: telemetry }
`;

let project: Project;
let moto: Moto;
// No profile, no instance metadata, no ambient credentials: only what each test gives.
const BARE = {
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_ACCESS_KEY_ID: '',
  AWS_SECRET_ACCESS_KEY: '',
  AWS_SESSION_TOKEN: '',
  AWS_PROFILE: '',
  AWS_REGION: '',
  AWS_DEFAULT_REGION: '',
  AWS_ENDPOINT_URL: '',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};
const run = (args: string[], env: Record<string, string>) => cli(args, { cwd: project.dir, env: { ...BARE, ...env }, timeoutMs: 90_000 });

test.before(async () => {
  project = makeProject(SPEC);
  moto = await startMoto();
});
test.after(async () => {
  project.cleanup();
  await moto.stop();
});

test('no credentials: says so and how to provide them', async () => {
  const r = await run(['device', 'list'], { AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: moto.url });
  assert.is(r.code, 1, r.stderr);
  // device list reads the group and the certificates at once: whichever call fails first is named.
  assert.match(r.stderr, /Error: No AWS credentials found for (ListThingsInThingGroup|ListCertificates|ListThings)\./);
  assert.match(r.stderr, /Try: .*AWS_PROFILE/);
});

test('no region: its own message', async () => {
  const r = await run(['device', 'list'], { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_ENDPOINT_URL: moto.url });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /Error: No AWS region is set/);
  assert.match(r.stderr, /--region/);
});

test('an endpoint that does not answer: named, within seconds', async () => {
  const started = Date.now();
  const r = await run(['stream', 'list', '--json'], { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '2', AWS_ENDPOINT_URL: 'http://127.0.0.1:1' });
  assert.is(r.code, 1, r.stderr);
  const error = JSON.parse(r.stdout).error;
  assert.is(error.code, 'AWS_EndpointUnreachable');
  assert.match(error.message, /did not answer ListStreams \(ECONNREFUSED\)/);
  assert.ok(Date.now() - started < 30_000, 'fails fast');
});

test('an endpoint that accepts and never answers (a black-holing proxy): each attempt ends at the read timeout, the message names service, operation and endpoint', async () => {
  const hole = await startBlackhole();
  try {
    const started = Date.now();
    const env = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '2', AWS_ENDPOINT_URL: hole.url, IOTCTL_AWS_READ_TIMEOUT: '1' };
    const r = await run(['stream', 'list', '--json'], env);
    assert.is(r.code, 1, r.stderr);
    const error = JSON.parse(r.stdout).error;
    assert.is(error.code, 'AWS_EndpointUnreachable');
    assert.ok(error.message.includes(`kinesis (${hole.url}) did not answer ListStreams`), error.message);
    assert.ok(Date.now() - started < 20_000, `gave up after ${Date.now() - started} ms`);
  } finally {
    await hole.close();
  }
});

test('a thing name AWS rejects: refused before any call, nothing created', async () => {
  const env = { ...moto.env, AWS_REGION: 'us-east-1' };
  const r = await run(['device', 'register', 'bad name!'], env);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /thing name/i);
  const list = await run(['device', 'list', '--json'], env);
  assert.equal(JSON.parse(list.stdout), []);
});

test('a rule SQL AWS would reject: caught by the local engine with its position, before any AWS call', async () => {
  writeFileSync(project.specFile, SPEC.replace("SELECT * FROM 'dt/#'", "SELECT * FROM 'dt/#' WHERE temperature >"));
  // The endpoint does not exist: reaching it would be a different error.
  const r = await run(['rules', 'apply', '--yes'], { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:1' });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /iotctl\.yaml:\d+:\d+ rules\[0\]\.sql/);
  assert.not.match(r.stderr, /did not answer/);
  writeFileSync(project.specFile, SPEC);
});

test.run();
