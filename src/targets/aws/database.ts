import { RDS_GLOBAL_BUNDLE } from '../../db/rds-ca-bundle.js';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { DatabaseLocation, DatabasePort } from '../../ports.js';
import { redactUrl } from '../../db/connection.js';
import { UserError } from '../../ui/errors.js';
import { isAwsError, type AwsClients } from './sdk.js';
import { ROLE_NAMES, type DatabaseRole } from '../../db/roles.js';
import { secretFromUrl, type RdsSecret } from './secrets.js';

/**
 * Where PostgreSQL is on the aws target: DATABASE_URL, else `database.url`, else `database.rds`, an RDS
 * instance resolved with DescribeDBInstances, reached with an IAM auth token or the password in a Secrets
 * Manager secret, over TLS verified against the RDS CA bundle (sslmode=verify-full).
 * The password lives only in clientConfig: never in `url`, `display`, `source` or a message.
 */

export interface RdsSettings {
  instance: string;
  user: string;
  database: string;
  iamAuth: boolean;
  secretArn?: string;
  proxyEndpoint?: string;
}

export interface AwsDatabaseSettings {
  url?: string;
  rds?: RdsSettings;
}

export interface AwsDatabaseOptions {
  env?: NodeJS.ProcessEnv;
  /** The Secrets Manager name of a least-privilege role's secret (database-ops.ts creates them at apply). */
  roleSecretName?: (role: 'writer' | 'reader') => string;
  /** --ca-file: a PEM bundle to verify the server with instead of the RDS one. PGSSLROOTCERT does the same. */
  caFile?: string;
}

/** IAM auth tokens live 15 minutes; a new connection after 10 gets a fresh one. */
const TOKEN_REUSE_MS = 10 * 60_000;

const RDS_HOST = /\.rds\.amazonaws\.com(\.cn)?$/i;

export class AwsDatabase implements DatabasePort {
  constructor(
    private readonly aws: AwsClients,
    private readonly settings: AwsDatabaseSettings,
    private readonly opts: AwsDatabaseOptions = {},
  ) {}

  async locate(role?: DatabaseRole): Promise<DatabaseLocation> {
    const env = this.opts.env ?? process.env;
    if (env.DATABASE_URL) return this.fromUrl(env.DATABASE_URL, 'DATABASE_URL');
    // The query commands sign in as the reader role when apply made its secret (least privilege on the laptop too).
    if (role && role !== 'owner' && !this.settings.rds?.iamAuth) {
      const arn = await this.roleSecretArn(role);
      if (arn) return this.fromRoleSecret(role, arn);
    }
    if (this.settings.url) return this.fromUrl(this.settings.url, 'iotctl.yaml');
    if (this.settings.rds) return this.fromRds(this.settings.rds);
    throw noDatabase();
  }

  /**
   * What a function (the ingest template) needs to reach this database, without any password: a URL (which
   * the functions adapter moves into Secrets Manager), or the RDS endpoint with a secret ARN or IAM auth.
   */
  async functionEnvironment(role: DatabaseRole = 'owner'): Promise<Record<string, string>> {
    const env = this.opts.env ?? process.env;
    if (role !== 'owner') {
      // The role's own secret (apply made it; the maintenance function's migrate set its password), or with
      // IAM auth the role itself as the database user (migrate grants it rds_iam).
      if (this.settings.rds?.iamAuth && !env.DATABASE_URL) {
        const admin = await this.functionEnvironment('owner');
        return { ...admin, DATABASE_USER: ROLE_NAMES[role] };
      }
      const arn = await this.roleSecretArn(role);
      if (arn) return { DATABASE_SECRET_ARN: arn };
    }
    const url = env.DATABASE_URL ?? this.settings.url;
    if (url) return { DATABASE_URL: url };
    const rds = this.settings.rds;
    if (!rds) throw noDatabase();
    const { host, port, secretArn } = await this.rdsEndpoint(rds);
    const endpoint = { DATABASE_HOST: host, DATABASE_PORT: String(port), DATABASE_NAME: rds.database };
    if (rds.iamAuth) return { ...endpoint, DATABASE_IAM_AUTH: '1', DATABASE_USER: rds.user };
    if (!secretArn) throw noCredentials(rds);
    return { ...endpoint, DATABASE_SECRET_ARN: secretArn };
  }

  /**
   * Where the role secrets point: host, port and database (and sslmode) of the admin connection, no
   * credentials. Undefined with IAM auth (the roles sign in with tokens, no secret).
   */
  async roleEndpoint(): Promise<{ host: string; port: number; dbname: string; sslmode?: string } | undefined> {
    const env = this.opts.env ?? process.env;
    const url = env.DATABASE_URL ?? this.settings.url;
    if (url) {
      const { host, port, dbname, sslmode } = secretFromUrl(url);
      return { host, port, dbname, ...(sslmode ? { sslmode } : {}) };
    }
    const rds = this.settings.rds;
    if (!rds) throw noDatabase();
    if (rds.iamAuth) return undefined;
    const { host, port } = await this.rdsEndpoint(rds);
    return { host, port, dbname: rds.database };
  }

  /** The ARN of the role's secret, when apply made it. */
  async roleSecretArn(role: 'writer' | 'reader'): Promise<string | undefined> {
    if (!this.opts.roleSecretName) return undefined;
    const { client, sdk } = await this.aws.get('secrets');
    try {
      return (await client.send(new sdk.DescribeSecretCommand({ SecretId: this.opts.roleSecretName(role) }), this.aws.sendOptions)).ARN;
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  private async fromRoleSecret(role: 'writer' | 'reader', arn: string): Promise<DatabaseLocation> {
    const { client, sdk } = await this.aws.get('secrets');
    const out = await client.send(new sdk.GetSecretValueCommand({ SecretId: arn }), this.aws.sendOptions);
    const s = JSON.parse(out.SecretString ?? '{}') as Partial<RdsSecret>;
    if (!s.host || !s.username || typeof s.password !== 'string') throw new UserError(`Secret ${arn} is not a database secret.`, 'run `iotctl apply` to write it again.', 'DB_BAD_SECRET');
    const port = Number(s.port ?? 5432);
    const database = s.dbname ?? 'postgres';
    const tls = s.sslmode === 'disable' ? false : s.sslmode && s.sslmode !== 'verify-full' ? { ...this.verifyFull(false), checkServerIdentity: () => undefined } : this.verifyFull(false);
    return {
      url: undefined,
      display: displayUrl(s.username, s.host, port, database).replace(/\?sslmode=.*$/, s.sslmode ? `?sslmode=${s.sslmode}` : '?sslmode=verify-full'),
      source: `${role} role secret ${arn}`,
      clientConfig: { host: s.host, port, database, user: s.username, password: s.password, ssl: tls, connectionTimeoutMillis: 10_000, application_name: 'iotctl' },
    };
  }

  /** A URL is used as given; an RDS host without TLS settings in it gets verify-full with the RDS CA. */
  private fromUrl(url: string, source: string): DatabaseLocation {
    const location: DatabaseLocation = { url, display: redactUrl(url), source };
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      return location;
    }
    const tlsInUrl = ['sslmode', 'ssl', 'sslrootcert', 'sslcert'].some((k) => parsed!.searchParams.has(k));
    if (RDS_HOST.test(parsed.hostname) && !tlsInUrl) location.clientConfig = { ssl: this.verifyFull(false) };
    return location;
  }

  /** The instance's endpoint (or the proxy's) and the secret that signs in to it, from DescribeDBInstances. */
  private async rdsEndpoint(rds: RdsSettings) {
    const { client, sdk } = await this.aws.get('rds');
    let instance;
    try {
      const out = await client.send(new sdk.DescribeDBInstancesCommand({ DBInstanceIdentifier: rds.instance }), this.aws.sendOptions);
      instance = out.DBInstances?.[0];
    } catch (error) {
      if (!isAwsError(error, 'DBInstanceNotFound', 'DBInstanceNotFoundFault')) throw error;
    }
    if (!instance) {
      throw new UserError(`RDS instance "${rds.instance}" does not exist in this account and region.`, 'Check database.rds.instance, --region and --profile (`aws rds describe-db-instances` lists them).', 'DB_NOT_FOUND');
    }
    const address = instance.Endpoint?.Address;
    if (!address && !rds.proxyEndpoint) {
      throw new UserError(`RDS instance "${rds.instance}" has no endpoint yet (status ${instance.DBInstanceStatus ?? 'unknown'}).`, 'Wait until it is available, then retry.', 'DB_NOT_READY');
    }
    return {
      instance,
      host: rds.proxyEndpoint ?? address!,
      port: instance.Endpoint?.Port ?? 5432,
      secretArn: rds.secretArn ?? instance.MasterUserSecret?.SecretArn,
    };
  }

  private async fromRds(rds: RdsSettings): Promise<DatabaseLocation> {
    const { instance, host, port, secretArn } = await this.rdsEndpoint(rds);
    const common = { host, port, database: rds.database, ssl: this.verifyFull(Boolean(rds.proxyEndpoint)), connectionTimeoutMillis: 10_000, application_name: 'iotctl' };
    const via = rds.proxyEndpoint ? `RDS Proxy ${rds.proxyEndpoint} to instance ${rds.instance}` : `RDS instance ${rds.instance}`;

    if (rds.iamAuth) {
      // IAM auth is switched on per instance; through a proxy it is the proxy's setting instead.
      if (!rds.proxyEndpoint && instance.IAMDatabaseAuthenticationEnabled === false) {
        throw new UserError(
          `IAM database authentication is not enabled on RDS instance "${rds.instance}".`,
          `Enable it (aws rds modify-db-instance --db-instance-identifier ${rds.instance} --enable-iam-database-authentication --apply-immediately), or use database.rds.secretArn.`,
          'DB_IAM_DISABLED',
        );
      }
      const password = await this.iamTokens(host, port, rds.user);
      return {
        url: undefined,
        display: displayUrl(rds.user, host, port, rds.database),
        source: `database.rds (${via}, IAM auth)`,
        clientConfig: { ...common, user: rds.user, password },
      };
    }

    if (!secretArn) throw noCredentials(rds);
    const secret = await this.readSecret(secretArn);
    const user = secret.username ?? rds.user;
    return {
      url: undefined,
      display: displayUrl(user, host, port, rds.database),
      source: `database.rds (${via}, secret ${secretArn})`,
      clientConfig: { ...common, user, password: secret.password },
    };
  }

  /** A password function for pg: each new connection gets a token no older than 10 minutes. */
  private async iamTokens(hostname: string, port: number, username: string): Promise<() => Promise<string>> {
    const [{ Signer }, { client }] = await Promise.all([import('@aws-sdk/rds-signer'), this.aws.get('rds')]);
    // The RDS client's credentials and region: the same profile, SSO session and region as every other call.
    const signer = new Signer({ hostname, port, username, region: await client.config.region(), credentials: client.config.credentials });
    const sign = async () => {
      try {
        return await signer.getAuthToken();
      } catch (error) {
        throw new UserError(`Cannot create an IAM auth token for ${username}@${hostname}: ${(error as Error).message}`, 'Check the AWS credentials (--profile, aws sso login).', 'DB_IAM_TOKEN');
      }
    };
    let token = await sign();
    let signedAt = Date.now();
    return async () => {
      if (Date.now() - signedAt > TOKEN_REUSE_MS) {
        token = await sign();
        signedAt = Date.now();
      }
      return token;
    };
  }

  /** The secret RDS writes for a managed master password (or one in the same shape): {username, password, ...}. */
  private async readSecret(secretId: string): Promise<{ username?: string; password: string }> {
    const { client, sdk } = await this.aws.get('secrets');
    const out = await client.send(new sdk.GetSecretValueCommand({ SecretId: secretId }), this.aws.sendOptions);
    let parsed: unknown;
    try {
      parsed = JSON.parse(out.SecretString ?? '');
    } catch {
      parsed = undefined;
    }
    const s = parsed as { username?: unknown; password?: unknown } | undefined;
    if (!s || typeof s.password !== 'string') {
      // Never echo the secret's content: it may be the password itself.
      throw new UserError(`Secret ${secretId} is not a database secret: expected JSON with "password" (and "username").`, 'Point database.rds.secretArn at the secret RDS manages for the instance, or one in that shape.', 'DB_BAD_SECRET');
    }
    return { username: typeof s.username === 'string' ? s.username : undefined, password: s.password };
  }

  /** TLS as libpq's sslmode=verify-full: the chain must reach the CA bundle and the host name must match. */
  private verifyFull(proxy: boolean): { ca: string | string[]; rejectUnauthorized: true } {
    const env = this.opts.env ?? process.env;
    const override = this.opts.caFile ?? env.PGSSLROOTCERT;
    if (override) {
      try {
        return { ca: readFileSync(override, 'utf8'), rejectUnauthorized: true };
      } catch (error) {
        throw new UserError(`Cannot read the CA bundle ${override}: ${(error as Error).message}`, 'Check --ca-file / PGSSLROOTCERT.', 'DB_CA');
      }
    }
    // RDS Proxy presents an ACM certificate (Amazon Root CA), not one from the RDS CAs: trust both there.
    return { ca: proxy ? [...rootCertificates, rdsCaBundle()] : rdsCaBundle(), rejectUnauthorized: true };
  }
}

function displayUrl(user: string, host: string, port: number, database: string): string {
  return `postgres://${encodeURIComponent(user)}@${host}:${port}/${encodeURIComponent(database)}?sslmode=verify-full`;
}

/** AWS's RDS global CA bundle, shared with the ingest template (src/db/rds-ca-bundle.ts). */
export function rdsCaBundle(): string {
  return RDS_GLOBAL_BUNDLE;
}

function noDatabase(): UserError {
  return new UserError(
    'No PostgreSQL server is configured for the aws target.',
    'Set DATABASE_URL, or database.url or database.rds {instance, user, iamAuth: true | secretArn} in iotctl.yaml.',
    'NO_DATABASE',
  );
}

function noCredentials(rds: RdsSettings): UserError {
  return new UserError(
    `No way to sign in to RDS instance "${rds.instance}": database.rds has neither iamAuth nor secretArn, and the instance has no RDS-managed master password.`,
    'Set database.rds.iamAuth: true (and grant rds-db:connect), or database.rds.secretArn to a Secrets Manager secret with {username, password}.',
    'DB_NO_CREDENTIALS',
  );
}
