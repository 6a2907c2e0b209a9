import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateDBInstanceCommand, type CreateDBInstanceCommandInput } from '@aws-sdk/client-rds';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DatabaseLocation } from '../../src/ports.js';
import { AwsDatabase, rdsCaBundle, type RdsSettings } from '../../src/targets/aws/database.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { UserError } from '../../src/ui/errors.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// database.rds resolved against moto_server (RDS DescribeDBInstances, Secrets Manager); the IAM token is
// signed locally by @aws-sdk/rds-signer with moto's dummy credentials.

let moto: Moto;
let restoreEnv: () => void;
let aws: AwsClients;
const HOST = (id: string) => `${id}.aaaaaaaaaa.us-east-1.rds.amazonaws.com`;
const noEnv = {} as NodeJS.ProcessEnv;

test.before(async () => {
  moto = await startMoto();
  restoreEnv = useEnv(moto.env);
});
test.after(async () => {
  restoreEnv();
  await moto.stop();
});
test.before.each(async () => {
  await moto.reset();
  aws = new AwsClients({});
});
test.after.each(() => aws.destroy());

async function createInstance(id: string, extra: Partial<CreateDBInstanceCommandInput> = {}): Promise<void> {
  const { client } = await aws.get('rds');
  await client.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: id, Engine: 'postgres', DBInstanceClass: 'db.t4g.micro', AllocatedStorage: 20, MasterUsername: 'iotadmin', ...extra }));
}

async function createSecret(name: string, value: string): Promise<string> {
  const { client } = await aws.get('secrets');
  return (await client.send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!;
}

const rds = (over: Partial<RdsSettings>): RdsSettings => ({ instance: 'iot-db', user: 'ingest', database: 'iot', iamAuth: false, ...over });

async function failure(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  assert.instance(e, UserError);
  return e as UserError;
}

/** Everything about a location a user could see: url, display, source (clientConfig holds the secret). */
const visible = (l: DatabaseLocation) => JSON.stringify({ url: l.url, display: l.display, source: l.source });

test('rds + IAM auth: the instance endpoint from DescribeDBInstances, a presigned token for host and user, verify-full TLS', async () => {
  await createInstance('iot-db', { EnableIAMDatabaseAuthentication: true, Port: 6543 });
  const location = await new AwsDatabase(aws, { rds: rds({ iamAuth: true }) }, { env: noEnv }).locate();
  const config = location.clientConfig as { host: string; port: number; user: string; database: string; password: () => Promise<string>; ssl: { ca: string; rejectUnauthorized: boolean } };
  assert.is(config.host, HOST('iot-db'));
  assert.is(config.port, 6543);
  assert.is(config.user, 'ingest');
  assert.is(config.database, 'iot');
  assert.is(location.url, undefined, 'a URL would override the token function in pg');
  assert.is(location.display, `postgres://ingest@${HOST('iot-db')}:6543/iot?sslmode=verify-full`);
  assert.match(location.source, /IAM auth/);

  // The token is a presigned rds-db:connect URL (without scheme) for exactly this host, port and user.
  const token = await config.password();
  const url = new URL(`https://${token}`);
  assert.is(url.host, `${HOST('iot-db')}:6543`);
  assert.is(url.searchParams.get('Action'), 'connect');
  assert.is(url.searchParams.get('DBUser'), 'ingest');
  assert.match(url.searchParams.get('X-Amz-Credential')!, /^test\/\d{8}\/us-east-1\/rds-db\/aws4_request$/);
  assert.match(url.searchParams.get('X-Amz-Signature')!, /^[0-9a-f]{64}$/);
  assert.is(await config.password(), token, 'a fresh token is reused for the next connection');
  assert.not.match(visible(location), token);

  assert.is(config.ssl.rejectUnauthorized, true);
  assert.is(config.ssl.ca, rdsCaBundle());
});

test('rds + IAM auth on an instance without IAM auth enabled: a clear error before any connection', async () => {
  await createInstance('iot-db', { EnableIAMDatabaseAuthentication: false });
  const e = await failure(new AwsDatabase(aws, { rds: rds({ iamAuth: true }) }, { env: noEnv }).locate());
  assert.is(e.code, 'DB_IAM_DISABLED');
  assert.match(e.hint!, /--enable-iam-database-authentication/);
});

test('rds + RDS Proxy: connects to the proxy endpoint, trusting the RDS CAs and the public roots (ACM)', async () => {
  await createInstance('iot-db', { EnableIAMDatabaseAuthentication: false });
  const proxy = 'iot-proxy.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com';
  const location = await new AwsDatabase(aws, { rds: rds({ iamAuth: true, proxyEndpoint: proxy }) }, { env: noEnv }).locate();
  const config = location.clientConfig as { host: string; password: () => Promise<string>; ssl: { ca: string[] } };
  assert.is(config.host, proxy);
  assert.ok(new URL(`https://${await config.password()}`).host.startsWith(proxy));
  assert.ok(config.ssl.ca.includes(rdsCaBundle()));
  assert.ok(config.ssl.ca.length > 100, 'Amazon Root CA among the public roots');
});

test('rds + secretArn: the password comes from Secrets Manager and appears in no url, display or source', async () => {
  await createInstance('iot-db');
  const password = 'pw-Zq81-never-shown';
  const arn = await createSecret('iotctl/demo/database', JSON.stringify({ username: 'ingest_writer', password, engine: 'postgres' }));
  const location = await new AwsDatabase(aws, { rds: rds({ secretArn: arn }) }, { env: noEnv }).locate();
  const config = location.clientConfig as { user: string; password: string; host: string };
  assert.is(config.password, password);
  assert.is(config.user, 'ingest_writer', "the secret's username goes with its password");
  assert.is(config.host, HOST('iot-db'));
  assert.not.match(visible(location), password);
  assert.match(location.source, arn);
});

test("rds with neither iamAuth nor secretArn: the instance's RDS-managed master secret", async () => {
  await createInstance('iot-db', { ManageMasterUserPassword: true });
  const location = await new AwsDatabase(aws, { rds: rds({}) }, { env: noEnv }).locate();
  const config = location.clientConfig as { user: string; password: string };
  // moto writes {"username": "admin", "password": "P@55w0rd!"} into the managed secret, as RDS writes its own.
  assert.is(config.user, 'admin');
  assert.is(config.password, 'P@55w0rd!');
  assert.not.match(visible(location), 'P@55w0rd!');
  assert.match(location.source, /secret arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-/);
});

test('rds without any credentials, a missing instance, a secret that is not a database secret: clear errors', async () => {
  await createInstance('iot-db');
  assert.is((await failure(new AwsDatabase(aws, { rds: rds({}) }, { env: noEnv }).locate())).code, 'DB_NO_CREDENTIALS');
  assert.is((await failure(new AwsDatabase(aws, { rds: rds({ instance: 'nope', iamAuth: true }) }, { env: noEnv }).locate())).code, 'DB_NOT_FOUND');
  const arn = await createSecret('plain', 'just-a-password-in-plain-text');
  const bad = await failure(new AwsDatabase(aws, { rds: rds({ secretArn: arn }) }, { env: noEnv }).locate());
  assert.is(bad.code, 'DB_BAD_SECRET');
  assert.not.match(bad.message + bad.hint, 'just-a-password');
});

test('DATABASE_URL wins over database.url and database.rds (no AWS call), with its password masked', async () => {
  // No instance exists: resolving rds would fail, so success proves it was not consulted.
  const env = { DATABASE_URL: 'postgres://app:hunter2-secret@db.example.com:5432/iot' } as NodeJS.ProcessEnv;
  const location = await new AwsDatabase(aws, { url: 'postgres://other@elsewhere/iot', rds: rds({ iamAuth: true }) }, { env }).locate();
  assert.is(location.source, 'DATABASE_URL');
  assert.is(location.url, env.DATABASE_URL);
  assert.is(location.display, 'postgres://app:***@db.example.com:5432/iot');
  assert.is(location.clientConfig, undefined, 'a non-RDS URL is used as given');

  const fromSpec = await new AwsDatabase(aws, { url: 'postgres://u:pw@elsewhere/iot', rds: rds({ iamAuth: true }) }, { env: noEnv }).locate();
  assert.is(fromSpec.source, 'iotctl.yaml');
  assert.not.match(fromSpec.display, 'pw@');
});

test('a URL to an RDS host gets verify-full with the RDS CA unless it sets TLS itself; PGSSLROOTCERT overrides the CA', async () => {
  const rdsUrl = `postgres://u:pw@${HOST('iot-db')}:5432/iot`;
  const plain = await new AwsDatabase(aws, { url: rdsUrl }, { env: noEnv }).locate();
  assert.equal(plain.clientConfig, { ssl: { ca: rdsCaBundle(), rejectUnauthorized: true } });
  const own = await new AwsDatabase(aws, { url: `${rdsUrl}?sslmode=require` }, { env: noEnv }).locate();
  assert.is(own.clientConfig, undefined);

  const dir = mkdtempSync(join(tmpdir(), 'iotctl-ca-'));
  try {
    const file = join(dir, 'ca.pem');
    writeFileSync(file, 'MY CA');
    const overridden = await new AwsDatabase(aws, { url: rdsUrl }, { env: { PGSSLROOTCERT: file } as NodeJS.ProcessEnv }).locate();
    assert.equal(overridden.clientConfig, { ssl: { ca: 'MY CA', rejectUnauthorized: true } });
    const missing = await failure(new AwsDatabase(aws, { url: rdsUrl }, { env: noEnv, caFile: join(dir, 'nope.pem') }).locate());
    assert.is(missing.code, 'DB_CA');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no database at all: a user error naming the settings', async () => {
  const e = await failure(new AwsDatabase(aws, {}, { env: noEnv }).locate());
  assert.is(e.code, 'NO_DATABASE');
  assert.match(e.hint!, /database\.rds/);
});

test('the bundled RDS CA bundle: every certificate parses, is a CA, and is signed by a root in the bundle', () => {
  const pems = rdsCaBundle().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
  assert.ok(pems.length >= 100, `${pems.length} certificates`);
  const certs = pems.map((p) => new X509Certificate(p));
  for (const c of certs) {
    assert.ok(c.ca, c.subject);
    assert.match(c.subject, /OU=Amazon RDS/);
    assert.ok(certs.some((issuer) => c.checkIssued(issuer) && c.verify(issuer.publicKey)), `issuer of ${c.subject}`);
  }
  const names = certs.map((c) => /CN=(.*)/.exec(c.subject)![1]);
  for (const region of ['us-east-1', 'eu-west-1', 'ap-southeast-2']) assert.ok(names.includes(`Amazon RDS ${region} Root CA RSA2048 G1`), region);
});

test.run();
