import type { AwsClients } from './sdk.js';
import { DEFAULT_STAGE, ownerOf, ownerTagList } from './ownership.js';
import { databaseSecretName } from './naming.js';
import { isAwsError } from './sdk.js';
import { UserError } from '../../ui/errors.js';

/**
 * A database given only as a URL becomes a Secrets Manager secret in the JSON format RDS writes
 * ({username, password, host, port, dbname, engine}), so the function's configuration carries the
 * secret's ARN and never the password. Idempotent: the value is written only when it changed.
 */

export interface RdsSecret {
  username: string;
  password: string;
  host: string;
  port: number;
  dbname: string;
  engine: 'postgres';
  /** iotctl's addition when the URL names one (the template honours it). */
  sslmode?: string;
}


export function secretFromUrl(url: string): RdsSecret {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError('The database URL is not a valid URL.', 'Use postgres://user:password@host:5432/dbname', 'DATABASE_URL_INVALID');
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) throw new UserError(`The database URL must start with postgres://, not ${u.protocol}//.`, undefined, 'DATABASE_URL_INVALID');
  if (!u.hostname) throw new UserError('The database URL names no host.', 'Use postgres://user:password@host:5432/dbname', 'DATABASE_URL_INVALID');
  const sslmode = u.searchParams.get('sslmode') ?? undefined;
  return {
    username: decodeURIComponent(u.username) || 'postgres',
    password: decodeURIComponent(u.password),
    host: u.hostname,
    port: Number(u.port || 5432),
    dbname: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres',
    engine: 'postgres',
    ...(sslmode ? { sslmode } : {}),
  };
}

/** Stores the URL's database as secret iotctl/<project>/database and returns the secret's ARN. */
export async function ensureDatabaseSecret(aws: AwsClients, project: string, url: string, stage = DEFAULT_STAGE): Promise<{ arn: string; result: 'created' | 'updated' | 'unchanged' }> {
  const { client, sdk } = await aws.get('secrets');
  const name = databaseSecretName(project, stage);
  const wanted = secretFromUrl(url);
  const value = JSON.stringify(wanted);
  let current: { ARN?: string; SecretString?: string } | undefined;
  try {
    current = await client.send(new sdk.GetSecretValueCommand({ SecretId: name }), aws.sendOptions);
  } catch (error) {
    if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
  }
  if (!current) {
    const created = await client.send(
      new sdk.CreateSecretCommand({
        Name: name,
        Description: `PostgreSQL credentials for the iotctl project ${project} (RDS secret format)`,
        SecretString: value,
        Tags: ownerTagList(ownerOf(project, stage)),
      }),
      aws.sendOptions,
    );
    return { arn: created.ARN!, result: 'created' };
  }
  if (sameSecret(current.SecretString, wanted)) return { arn: current.ARN!, result: 'unchanged' };
  await client.send(new sdk.PutSecretValueCommand({ SecretId: name, SecretString: value }), aws.sendOptions);
  return { arn: current.ARN!, result: 'updated' };
}

function sameSecret(stored: string | undefined, wanted: RdsSecret): boolean {
  if (stored === undefined) return false;
  try {
    const s = JSON.parse(stored) as Record<string, unknown>;
    const keys = new Set([...Object.keys(s), ...Object.keys(wanted)]);
    return [...keys].every((k) => String(s[k] ?? '') === String((wanted as unknown as Record<string, unknown>)[k] ?? ''));
  } catch {
    return false;
  }
}
