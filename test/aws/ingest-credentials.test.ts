import { createHash, X509Certificate } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { mockClient } from 'aws-sdk-client-mock';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { useEnv } from '../helpers/moto.js';
import { migrate } from '../../src/db/migrations.js';
import { freshDatabase, type TestDatabase } from '../helpers/pg.js';
import { kinesisEvent, kinesisRecord } from '../unit/db/helpers.js';
import { rdsCaBundle, resolveConnection, sslOptions } from '../../templates/ingest-rds/database.js';
import { close, handler } from '../../templates/ingest-rds/handler.js';

/**
 * The ingest template's credentials on AWS: a Secrets Manager secret in RDS's format (faked at the SDK
 * boundary) against the machine's real PostgreSQL (which has TLS off), an IAM auth token signed by the real
 * @aws-sdk/rds-signer, and the RDS CA bundle the artifact ships.
 */

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:iotctl/demo/database-AbCdEf';
const secrets = mockClient(SecretsManagerClient);
let db: TestDatabase;
let restore: () => void;

test.before(async () => {
  db = await freshDatabase();
  // The ingest function never migrates (it runs as the INSERT-only role): the owner did.
  const owner = new pg.Client({ connectionString: db.url });
  await owner.connect();
  await migrate(owner);
  await owner.end();
  restore = useEnv({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', LOG_LEVEL: 'silent' });
});

test.before.each(() => {
  secrets.reset();
});

test.after(async () => {
  await close();
  restore?.();
  await db?.drop();
});

function secretFor(url: string, extra: Record<string, unknown> = {}): string {
  const u = new URL(url);
  return JSON.stringify({ username: u.username || 'postgres', password: u.password, host: u.hostname, port: Number(u.port || 5432), dbname: u.pathname.slice(1), engine: 'postgres', ...extra });
}

test('the shipped RDS CA bundle: AWS global bundle, every certificate a self-signed Amazon RDS root that parses', () => {
  const pem = rdsCaBundle();
  // The bytes AWS publishes at truststore.pki.rds.amazonaws.com/global/global-bundle.pem.
  assert.is(createHash('sha256').update(pem).digest('hex'), 'e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3');
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  assert.ok(certs.length >= 100, `${certs.length} certificates`);
  for (const p of certs) {
    const c = new X509Certificate(p);
    assert.ok(c.ca, c.subject);
    assert.ok(c.verify(c.publicKey), `self-signed: ${c.subject}`);
    assert.match(c.subject, /^O=Amazon Web Services\\, Inc\.$/m);
    assert.match(c.subject, /^OU=Amazon RDS$/m);
  }
  assert.ok(certs.some((p) => /CN=Amazon RDS us-east-1 Root CA RSA2048 G1/.test(new X509Certificate(p).subject)));
});

test('a secret in RDS format (fake Secrets Manager) logs in to the real PostgreSQL with TLS off', async () => {
  secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({ ARN: SECRET_ARN, SecretString: secretFor(db.url, { sslmode: 'disable' }) });
  const { config, source } = await resolveConnection({ DATABASE_SECRET_ARN: SECRET_ARN });
  assert.is(source, 'secret');
  assert.is(config.ssl, false);
  const client = new pg.Client(config);
  await client.connect();
  try {
    const r = await client.query('SELECT current_database() AS d');
    assert.is(r.rows[0].d, db.name);
  } finally {
    await client.end();
  }
});

test('without sslmode the secret path demands verified TLS: a server without TLS is refused', async () => {
  secrets.on(GetSecretValueCommand).resolves({ ARN: SECRET_ARN, SecretString: secretFor(db.url) });
  const { config } = await resolveConnection({ DATABASE_SECRET_ARN: SECRET_ARN });
  const ssl = config.ssl as { ca: string[]; rejectUnauthorized: boolean; servername: string };
  assert.is(ssl.rejectUnauthorized, true);
  assert.is(ssl.servername, '127.0.0.1');
  assert.ok(ssl.ca.includes(rdsCaBundle()));
  // Node's roots stay in: RDS Proxy presents an Amazon Trust Services certificate.
  assert.ok(ssl.ca.length > 100);
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 3000 });
  await client.connect().then(
    async () => {
      await client.end();
      assert.unreachable('connected without TLS');
    },
    (e: Error) => assert.match(e.message, /does not support SSL/),
  );
});

test('DATABASE_HOST/PORT/NAME fill in a managed master secret ({username, password} only) and override its host (RDS Proxy)', async () => {
  const u = new URL(db.url);
  secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ username: u.username, password: '' }) });
  const { config } = await resolveConnection({ DATABASE_SECRET_ARN: SECRET_ARN, DATABASE_HOST: 'my-proxy.proxy-abc.us-east-1.rds.amazonaws.com', DATABASE_PORT: '5433', DATABASE_NAME: 'iot' });
  assert.equal({ host: config.host, port: config.port, database: config.database, user: config.user }, { host: 'my-proxy.proxy-abc.us-east-1.rds.amazonaws.com', port: 5433, database: 'iot', user: u.username });
  secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ username: 'x', password: 'y' }) });
  await resolveConnection({ DATABASE_SECRET_ARN: SECRET_ARN }).then(
    () => assert.unreachable('no host'),
    (e: Error) => assert.match(e.message, /DATABASE_HOST/),
  );
  secrets.on(GetSecretValueCommand).resolves({ SecretString: 'not json' });
  await resolveConnection({ DATABASE_SECRET_ARN: SECRET_ARN }).then(
    () => assert.unreachable('bad secret'),
    (e: Error) => assert.match(e.message, /not JSON in the RDS format/),
  );
});

test('the handler, given only DATABASE_SECRET_ARN, writes a Kinesis batch to PostgreSQL', async () => {
  secrets.on(GetSecretValueCommand).resolves({ ARN: SECRET_ARN, SecretString: secretFor(db.url, { sslmode: 'disable' }) });
  const undo = useEnv({ DATABASE_SECRET_ARN: SECRET_ARN });
  const savedUrl = process.env.DATABASE_URL;
  delete process.env.DATABASE_URL;
  try {
    const records = [1, 2].map((i) => kinesisRecord({ device_id: 'dev-s', message_id: `s-${i}`, ts: Date.now(), temperature: i }, { partitionKey: 'dev-s' }));
    assert.equal(await handler(kinesisEvent(records)), { batchItemFailures: [] });
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const n = (await c.query("SELECT count(*)::int AS n FROM iot_messages WHERE device_id = 'dev-s'")).rows[0].n;
    await c.end();
    assert.is(n, 2);
    // The secret was read once for the pool, not per batch.
    assert.equal(await handler(kinesisEvent([kinesisRecord({ device_id: 'dev-s', message_id: 's-3', ts: Date.now() })])), { batchItemFailures: [] });
    assert.is(secrets.commandCalls(GetSecretValueCommand).length, 1);
  } finally {
    await close();
    undo();
    if (savedUrl !== undefined) process.env.DATABASE_URL = savedUrl;
  }
});

test('IAM auth: a fresh token from the real rds-signer per connection, TLS required', async () => {
  const { config, source } = await resolveConnection({ DATABASE_IAM_AUTH: '1', DATABASE_HOST: 'db1.abc.us-east-1.rds.amazonaws.com', DATABASE_USER: 'ingest', DATABASE_NAME: 'iot', AWS_REGION: 'us-east-1' });
  assert.is(source, 'iam');
  assert.is(typeof config.password, 'function');
  const token = await (config.password as () => Promise<string>)();
  assert.match(token, /^db1\.abc\.us-east-1\.rds\.amazonaws\.com:5432\/\?Action=connect&DBUser=ingest&/);
  assert.match(token, /X-Amz-Credential=AKIDEXAMPLE%2F\d{8}%2Fus-east-1%2Frds-db%2Faws4_request/);
  assert.match(token, /X-Amz-Signature=[0-9a-f]{64}/);
  assert.is((config.ssl as { servername: string }).servername, 'db1.abc.us-east-1.rds.amazonaws.com');
  await resolveConnection({ DATABASE_IAM_AUTH: '1', DATABASE_HOST: 'h', DATABASE_USER: 'u', DATABASE_SSLMODE: 'disable' }).then(
    () => assert.unreachable('IAM without TLS'),
    (e: Error) => assert.match(e.message, /needs TLS/),
  );
});

test('DATABASE_URL still serves the local target; sslmode require verifies the chain (verify-ca)', async () => {
  assert.equal(await resolveConnection({ DATABASE_URL: db.url }), { source: 'url', config: { connectionString: db.url } });
  const ca = sslOptions('verify-ca', 'h') as { checkServerIdentity: unknown; rejectUnauthorized: boolean };
  assert.is(ca.rejectUnauthorized, true);
  assert.is(typeof ca.checkServerIdentity, 'function');
  secrets.on(GetSecretValueCommand).resolves({ SecretString: secretFor(db.url, { sslmode: 'require' }) });
  const { config } = await resolveConnection({ DATABASE_SECRET_ARN: SECRET_ARN });
  assert.is((config.ssl as { rejectUnauthorized: boolean }).rejectUnauthorized, true);
  await resolveConnection({}).then(
    () => assert.unreachable('nothing configured'),
    (e: Error) => assert.match(e.message, /DATABASE_URL is not set/),
  );
});

test.run();
