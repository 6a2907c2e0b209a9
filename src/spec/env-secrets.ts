/**
 * Secrets in a function's `environment` (pure). A Lambda configuration is readable by anyone with
 * lambda:GetFunctionConfiguration, is copied into plans, logs and CloudTrail, and is not encrypted with a key
 * of the user's choosing by default: a password belongs in Secrets Manager. iotctl already moves a
 * DATABASE_URL into a secret (the function gets DATABASE_SECRET_ARN); anything else that looks like a secret
 * is refused unless the spec lists it in the function's `allowPlaintextSecrets`.
 */

/** Name fragments (separators and case ignored) that make a variable a secret wherever they appear. */
const SECRET_FRAGMENTS = ['PASSWORD', 'PASSWD', 'PASSPHRASE', 'SECRET', 'APIKEY', 'PRIVATEKEY', 'ACCESSKEY', 'SIGNINGKEY', 'ENCRYPTIONKEY', 'MASTERKEY', 'CREDENTIAL', 'AUTHTOKEN'];
/** Whole words (between _, -, . or a camelCase boundary) that make a variable a secret. */
const SECRET_WORDS = new Set(['TOKEN', 'PASS', 'PWD', 'PSK', 'APIKEY']);
/** A last word that makes the variable a reference to a secret (DB_SECRET_ARN, PASSWORD_FILE), not the secret. */
const REFERENCE_WORDS = new Set(['ARN', 'NAME', 'ID', 'PATH', 'FILE', 'URL', 'URI', 'ENDPOINT', 'REGION', 'TTL', 'HEADER', 'PARAMETER', 'PARAM']);
/** Variables the environment itself defines (the shell's working directory): never secrets. */
const WELL_KNOWN = new Set(['PWD', 'OLDPWD']);

/** `dbPassword`, `DB_PASSWORD`, `db-password` -> ['DB', 'PASSWORD']. */
export function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toUpperCase());
}

/** Why a variable's name says it holds a secret, or undefined. */
export function secretName(name: string): string | undefined {
  if (WELL_KNOWN.has(name)) return undefined;
  const words = nameWords(name);
  if (!words.length || REFERENCE_WORDS.has(words[words.length - 1]!)) return undefined;
  const joined = words.join('');
  const fragment = SECRET_FRAGMENTS.find((f) => joined.includes(f)) ?? words.find((w) => SECRET_WORDS.has(w));
  return fragment ? `its name contains ${fragment}` : undefined;
}

const VALUE_PATTERNS: [RegExp, string][] = [
  [/^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s:]*:[^/?#@\s]+@/i, 'a URL with a password'],
  [/[?&](password|sslpassword|pass|pwd|secret|token|api[_-]?key|access[_-]?token)=[^&\s]/i, 'a URL with a password or token in its query'],
  [/(^|\s)(password|sslpassword)\s*=\s*\S/i, 'a connection string with password='],
  [/-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----/, 'a PEM private key'],
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/, 'an AWS access key id (a function signs in with its execution role)'],
  [/^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])[A-Za-z0-9/+]{40}$/, 'an AWS secret access key'],
  [/\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}/, 'a GitHub token'],
  [/\bxox[abposr]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/\b[sr]k_live_[A-Za-z0-9]{16,}/, 'a Stripe key'],
  [/^eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+$/, 'a JSON Web Token'],
];

/** A reference to a secret (the secret's ARN), which is what belongs in an environment. */
const SECRET_REFERENCE = /^arn:aws[a-z-]*:(secretsmanager|ssm|kms):/;

/** Why a value looks like a secret, or undefined. */
export function secretValue(value: string): string | undefined {
  if (!value || SECRET_REFERENCE.test(value)) return undefined;
  return VALUE_PATTERNS.find(([re]) => re.test(value))?.[1];
}

/** Why this variable looks like a secret (its name or its value), or undefined. An empty value is a placeholder the target fills. */
export function secretReason(name: string, value: string): string | undefined {
  if (value === '' || SECRET_REFERENCE.test(value)) return undefined;
  return secretValue(value) ?? secretName(name);
}

export interface PlaintextSecret {
  name: string;
  reason: string;
}

/**
 * The variables to refuse: those that look like secrets, except DATABASE_URL (moved into Secrets Manager by
 * the aws target, injected by the local one) and the names the spec explicitly allows.
 */
export function plaintextSecrets(environment: Record<string, string>, allowed: readonly string[] = []): PlaintextSecret[] {
  const out: PlaintextSecret[] = [];
  for (const [name, value] of Object.entries(environment)) {
    if (name === 'DATABASE_URL' || allowed.includes(name)) continue;
    const reason = secretReason(name, value);
    if (reason) out.push({ name, reason });
  }
  return out;
}

export const SECRET_HINT =
  'Keep secrets out of the function configuration: give the database as DATABASE_URL (iotctl moves it into a Secrets Manager secret and sets DATABASE_SECRET_ARN), ' +
  'use database.rds.secretArn or DATABASE_IAM_AUTH, or store the value in Secrets Manager and pass its ARN (e.g. API_TOKEN_SECRET_ARN). ' +
  'If it must stay in plain text, list the variable under the function\'s allowPlaintextSecrets.';

/** Lambda's limit on a function's variables: 4 KB in total (names and values). */
export const LAMBDA_ENVIRONMENT_BYTES = 4096;

export function environmentBytes(environment: Record<string, string>): number {
  return Object.entries(environment).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
}

/**
 * The environment as a plan may show it: secret-looking values replaced by `***` and a tag that changes
 * with the value (a keyed digest, keyed per process, so nothing about the value can be guessed from it).
 * A URL keeps everything but its password.
 */
export function maskEnvironment(environment: Record<string, string>, tag: (value: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (!secretReason(name, value)) {
      out[name] = value;
      continue;
    }
    const url = /^([a-z][a-z0-9+.-]*:\/\/[^/?#@\s:]*:)([^/?#@\s]+)(@.*)$/i.exec(value);
    out[name] = url && !/[?&]/.test(url[3]!) ? `${url[1]}***${tag(value)}${url[3]}` : `***${tag(value)}`;
  }
  return out;
}
