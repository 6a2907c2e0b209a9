/**
 * Where the ingest function's PostgreSQL is and how it logs in, from its environment:
 *
 * - DATABASE_SECRET_ARN: a Secrets Manager secret in the format RDS writes
 *   ({username, password, host, port, dbname, engine}; a managed master secret holds only
 *   username and password, so DATABASE_HOST/PORT/NAME fill in what it lacks).
 * - DATABASE_IAM_AUTH=1 with DATABASE_HOST and DATABASE_USER: a fresh IAM auth token
 *   (@aws-sdk/rds-signer) for every new connection; tokens live 15 minutes.
 * - DATABASE_URL (the local target), or the PG* variables pg reads itself.
 *
 * The AWS clients are imported only on the paths that use them, so the local target never runs them.
 * On AWS the connection is TLS, verifying the server against the RDS CA bundle shipped in the artifact
 * plus Node's own roots (RDS Proxy presents an Amazon Trust Services certificate, not an RDS CA one).
 * DATABASE_HOST overrides the secret's host, which is how the same secret serves an RDS Proxy endpoint.
 */
import { rootCertificates } from 'node:tls';
import type pg from 'pg';
import { RDS_GLOBAL_BUNDLE as RDS_CA_BUNDLE } from '../../src/db/rds-ca-bundle.js';

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** The RDS secret's JSON (RDS writes this shape; iotctl writes it too, plus sslmode). */
export interface DatabaseSecret {
  username: string;
  password: string;
  host?: string;
  port?: number | string;
  dbname?: string;
  engine?: string;
  /** iotctl's own addition for a database given as a URL with ?sslmode=. */
  sslmode?: string;
}

export interface ResolvedConnection {
  config: pg.PoolConfig;
  /** For logs: where the credentials came from. */
  source: 'secret' | 'iam' | 'url' | 'pg-env';
}

type Env = Record<string, string | undefined>;

/** Reads a secret's string; replaceable in tests (the default uses the Secrets Manager client). */
export type SecretReader = (secretId: string) => Promise<string>;
export type TokenSigner = (opts: { hostname: string; port: number; username: string; region?: string }) => Promise<string>;

export async function resolveConnection(env: Env = process.env, deps: { readSecret?: SecretReader; signToken?: TokenSigner } = {}): Promise<ResolvedConnection> {
  if (env.DATABASE_SECRET_ARN) {
    const raw = await (deps.readSecret ?? readSecretFromAws)(env.DATABASE_SECRET_ARN);
    const secret = parseSecret(raw, env.DATABASE_SECRET_ARN);
    const host = env.DATABASE_HOST || secret.host;
    if (!host) throw new Error(`Secret ${env.DATABASE_SECRET_ARN} has no host: set DATABASE_HOST (RDS managed master secrets hold only username and password).`);
    return {
      source: 'secret',
      config: {
        host,
        port: Number(env.DATABASE_PORT || secret.port || 5432),
        database: env.DATABASE_NAME || secret.dbname || 'postgres',
        user: secret.username,
        password: secret.password,
        ssl: sslOptions(sslModeOf(env, secret.sslmode), host),
      },
    };
  }
  if (isOn(env.DATABASE_IAM_AUTH)) {
    const host = env.DATABASE_HOST;
    const user = env.DATABASE_USER;
    if (!host || !user) throw new Error('DATABASE_IAM_AUTH needs DATABASE_HOST and DATABASE_USER.');
    const port = Number(env.DATABASE_PORT || 5432);
    const sign = deps.signToken ?? signTokenWithAws;
    const mode = sslModeOf(env);
    // RDS refuses IAM authentication without TLS.
    if (mode === 'disable') throw new Error('DATABASE_IAM_AUTH needs TLS: RDS accepts IAM auth tokens only over SSL.');
    return {
      source: 'iam',
      config: {
        host,
        port,
        database: env.DATABASE_NAME || 'postgres',
        user,
        // pg calls this for every new connection, so a pool never reuses an expired token.
        password: () => sign({ hostname: host, port, username: user, region: env.AWS_REGION }),
        ssl: sslOptions(mode, host),
      },
    };
  }
  if (env.DATABASE_URL) return { source: 'url', config: { connectionString: env.DATABASE_URL } };
  if (env.PGHOST) return { source: 'pg-env', config: {} };
  throw new Error('DATABASE_URL is not set: give the function the PostgreSQL connection URL (aws: DATABASE_SECRET_ARN, or DATABASE_IAM_AUTH with DATABASE_HOST and DATABASE_USER).');
}

export function parseSecret(raw: string, id: string): DatabaseSecret {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    throw new Error(`Secret ${id} is not JSON in the RDS format {username, password, host, port, dbname}.`);
  }
  const s = doc as Partial<DatabaseSecret>;
  if (typeof s?.username !== 'string' || typeof s.password !== 'string') throw new Error(`Secret ${id} has no username and password.`);
  return s as DatabaseSecret;
}

function sslModeOf(env: Env, fromSecret?: string): SslMode {
  const mode = (fromSecret || env.DATABASE_SSLMODE || env.PGSSLMODE || 'verify-full').toLowerCase();
  switch (mode) {
    case 'disable':
    case 'verify-ca':
    case 'verify-full':
      return mode;
    // libpq verifies the chain under `require` when it has a root certificate, and this artifact always has one.
    case 'require':
    case 'prefer':
    case 'allow':
      return 'verify-ca';
    default:
      throw new Error(`Unknown sslmode "${mode}": use disable, require, verify-ca or verify-full.`);
  }
}

export function sslOptions(mode: SslMode, host: string): pg.PoolConfig['ssl'] {
  if (mode === 'disable') return false;
  const ca = [...rootCertificates, RDS_CA_BUNDLE];
  if (mode === 'verify-ca') return { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return { ca, rejectUnauthorized: true, servername: host };
}

/** The PEM bundle the artifact ships (AWS's global RDS CA bundle). */
export function rdsCaBundle(): string {
  return RDS_CA_BUNDLE;
}

function isOn(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes)$/i.test(value);
}

export async function readSecretFromAws(secretId: string): Promise<string> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({});
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (out.SecretString === undefined) throw new Error(`Secret ${secretId} has no string value.`);
    return out.SecretString;
  } finally {
    client.destroy();
  }
}

async function signTokenWithAws(opts: { hostname: string; port: number; username: string; region?: string }): Promise<string> {
  const { Signer } = await import('@aws-sdk/rds-signer');
  return new Signer(opts).getAuthToken();
}
