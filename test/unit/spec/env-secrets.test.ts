/** Finding 12 of issue 16: secrets in a function's environment are refused at file:line:col, and never printed. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec, SpecError } from '../../../src/spec/loader.js';
import { maskEnvironment, nameWords, plaintextSecrets, secretName, secretReason, secretValue } from '../../../src/spec/env-secrets.js';
import { functionConfig } from '../../../src/services/functions.js';
import { formatPlan, planResources } from '../../../src/iot/plan/index.js';

const SECRET_NAMES = ['DB_PASSWORD', 'dbPassword', 'db-passwd', 'PGPASSWORD', 'DATABASE_PASSWORD', 'MQTT_PASS', 'SMTP_PWD', 'CLIENT_SECRET', 'AWS_SECRET_ACCESS_KEY', 'API_KEY', 'apiKey', 'STRIPE_APIKEY', 'GITHUB_TOKEN', 'authToken', 'PRIVATE_KEY', 'SIGNING_KEY', 'GOOGLE_APPLICATION_CREDENTIALS_JSON', 'ENCRYPTION_KEY', 'WIFI_PSK'];
const PLAIN_NAMES = ['AUTO_MIGRATE', 'THING_CACHE_SECONDS', 'PIPELINE_ACTIVITIES', 'PWD', 'OLDPWD', 'BYPASS_CACHE', 'MAX_TOKENS', 'DB_SECRET_ARN', 'DATABASE_SECRET_ARN', 'PASSWORD_FILE', 'TOKEN_URL', 'API_KEY_NAME', 'PARTITION_KEY', 'S3_KEY_PREFIX', 'KEY_ID', 'LOG_LEVEL'];

test('names: secret words anywhere in the name, case and separators ignored; references to a secret are not secrets', () => {
  assert.equal(nameWords('dbPassword'), ['DB', 'PASSWORD']);
  assert.equal(nameWords('db-api.key'), ['DB', 'API', 'KEY']);
  for (const name of SECRET_NAMES) assert.ok(secretName(name), `${name} should look like a secret`);
  for (const name of PLAIN_NAMES) assert.not.ok(secretName(name), `${name} should not look like a secret`);
});

const SECRET_VALUES: [string, RegExp][] = [
  ['postgres://ingest:s3cr3t@db.example.com:5432/tele', /URL with a password/],
  ['https://user:pw@api.example.com/hook', /URL with a password/],
  ['postgresql://db.example.com/tele?user=ingest&password=s3cr3t', /query/],
  ['https://api.example.com/v1?api_key=abcdef', /query/],
  ['host=db.example.com user=ingest password=s3cr3t dbname=tele', /password=/],
  ['dbname=tele password = s3cr3t', /password=/],
  ['-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----', /PEM private key/],
  ['-----BEGIN EC PRIVATE KEY-----\nMHc...', /PEM private key/],
  ['-----BEGIN RSA PRIVATE KEY-----\nMIIE...', /PEM private key/],
  ['AKIAIOSFODNN7EXAMPLE', /access key id/],
  ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', /secret access key/],
  ['ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8', /GitHub/],
  ['xoxb-123456789012-abcdefghij', /Slack/],
  ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', /JSON Web Token/],
];
const PLAIN_VALUES = ['', 'true', '60', '[]', 'postgres://ingest@db.example.com/tele', 'https://api.example.com/v1?limit=5', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf', 'da39a3ee5e6b4b0d3255bfef95601890afd80709', 'dt/${project}/${thing}/telemetry'];

test('values: URLs with a password, conninfo password=, PEM private keys, AWS keys and common tokens', () => {
  for (const [value, reason] of SECRET_VALUES) assert.match(secretValue(value) ?? '', reason, value);
  for (const value of PLAIN_VALUES) assert.not.ok(secretValue(value), value);
});

test('an empty value (filled in by the target) or a secret ARN is never a secret, whatever the name', () => {
  assert.not.ok(secretReason('DB_PASSWORD', ''));
  assert.not.ok(secretReason('API_TOKEN', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-x1'));
  assert.ok(secretReason('API_TOKEN', 'abc'));
});

test('DATABASE_URL is exempt (moved into Secrets Manager); allowPlaintextSecrets exempts the names it lists', () => {
  const env = { DATABASE_URL: 'postgres://u:pw@h/db', DB_PASSWORD: 'x', WEBHOOK: 'https://u:pw@h/', AUTO_MIGRATE: 'true' };
  assert.equal(plaintextSecrets(env).map((s) => s.name), ['DB_PASSWORD', 'WEBHOOK']);
  assert.equal(plaintextSecrets(env, ['WEBHOOK']).map((s) => s.name), ['DB_PASSWORD']);
});

function problemsOf(yaml: string) {
  try {
    parseSpec(yaml, 'iotctl.yaml');
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  return undefined;
}

const SPEC = (env: string, extra = '') => `project: demo
streams:
  - name: telemetry
functions:
  - name: ingest
    template: kinesis-to-postgres
    environment:
${env}${extra}`;

test('spec validate refuses a secret at file:line:col of the variable, with Secrets Manager advice, without printing the value', () => {
  const err = problemsOf(SPEC('      AUTO_MIGRATE: "true"\n      DB_PASSWORD: hunter2-very-secret\n      HOOK: https://bot:xyzzy-pw@hooks.example.com/x\n'));
  assert.ok(err, 'refused');
  assert.equal(err!.problems.map((p) => [p.line, p.col, p.path]), [
    [9, 20, 'functions[0].environment.DB_PASSWORD'],
    [10, 13, 'functions[0].environment.HOOK'],
  ]);
  assert.match(err!.message, /DB_PASSWORD looks like a secret \(its name contains PASSWORD\)/);
  assert.match(err!.message, /HOOK looks like a secret \(a URL with a password\)/);
  assert.match(err!.message, /Secrets Manager/);
  assert.match(err!.hint ?? '', /spec validate/);
  assert.match(err!.problems[0]!.hint ?? '', /allowPlaintextSecrets/);
  assert.not.match(err!.message, /hunter2|xyzzy/);
});

test('allowPlaintextSecrets lets a listed variable through; a listed name that is not set is reported', () => {
  assert.is(problemsOf(SPEC('      DB_PASSWORD: hunter2\n', '    allowPlaintextSecrets: [DB_PASSWORD]\n')), undefined);
  const err = problemsOf(SPEC('      LOG_LEVEL: info\n', '    allowPlaintextSecrets: [DB_PASSWORD]\n'));
  assert.equal(err?.problems.map((p) => [p.line, p.path]), [[9, 'functions[0].allowPlaintextSecrets[0]']]);
});

test('more than Lambda\'s 4 KB of variables is refused', () => {
  const err = problemsOf(SPEC(`      BIG: "${'x'.repeat(5000)}"\n`));
  assert.match(err?.message ?? '', /5003 bytes; Lambda allows 4096/);
});

test('the plan masks secret values and still shows that they changed', () => {
  const config = (env: Record<string, string>) => functionConfig({ template: 't', sha256: 's', handler: 'handler', timeoutSeconds: 3, memoryMb: 128, environment: env, eventSource: null });
  const before = config({ DATABASE_URL: 'postgres://u:old-pw@h/db', DB_PASSWORD: 'old-secret', LOG_LEVEL: 'info' });
  const after = config({ DATABASE_URL: 'postgres://u:new-pw@h/db', DB_PASSWORD: 'new-secret', LOG_LEVEL: 'info' });
  const same = config({ DATABASE_URL: 'postgres://u:new-pw@h/db', DB_PASSWORD: 'new-secret', LOG_LEVEL: 'info' });
  assert.match(after.environment.DATABASE_URL!, /^postgres:\/\/u:\*\*\*[0-9a-f]{8}@h\/db$/);
  assert.match(after.environment.DB_PASSWORD!, /^\*\*\*[0-9a-f]{8}$/);
  assert.is(after.environment.LOG_LEVEL, 'info');
  assert.equal(same, after);
  const plan = formatPlan(planResources([{ kind: 'function', name: 'f', config: after }], [{ kind: 'function', name: 'f', config: before }]));
  assert.match(plan, /environment\.DB_PASSWORD/);
  assert.not.match(plan, /old-pw|new-pw|old-secret|new-secret/);
  assert.equal(maskEnvironment({ A: 'postgres://h/db?password=x' }, () => 'T'), { A: '***T' });
});

test.run();
