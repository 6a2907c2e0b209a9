/**
 * Masks passwords in any text iotctl prints or stores: connection URLs and conninfo strings in every form
 * `pg`/libpq accept, plus the password values this process knows from its environment. Pure and
 * dependency-free: the error path of every command (src/base-command.ts) loads it, and pg must not load there.
 */
export const MASK = '***';

const PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // scheme://user:password@host — up to the last '@' of the token, so a malformed URL whose password holds
  // '@', '/' or '#' is masked whole.
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:)[^\s]*@/gi, `$1${MASK}@`],
  // user:password@host without a scheme (a URL missing its postgres://).
  [/((?:^|[\s"'(=])[\w.-]+:)(?!\/\/)[^\s@]*@(?=[\w[])/g, `$1${MASK}@`],
  // ?password=… &sslpassword=… in a URL's query.
  [/([?&](?:ssl)?password=)[^&#\s]*/gi, `$1${MASK}`],
  // password=… in a key=value conninfo string, quoted ('it''s', 'a \' b') or not; PGPASSWORD=…, DB_PASSWORD=…; SQL PASSWORD '…'.
  [/(\b\w*password\s*=\s*)('(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.)*"?|[^\s&'"]+)/gi, `$1${MASK}`],
  [/(\bPASSWORD\s+)'(?:[^']|'')*'?/gi, `$1'${MASK}'`],
  // "password": "…" in JSON (a config object in a message).
  [/("(?:ssl)?password"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, `$1"${MASK}"`],
];

/** The text with every password it holds replaced by ***. */
export function redactSecrets(text: string, secrets: readonly string[] = knownSecrets()): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  for (const secret of secrets) {
    // Short ones (under 10 characters) would mask ordinary words (PGPASSWORD=postgres is common on CI); whole tokens only.
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      if (form.length >= 10) out = out.replace(new RegExp(`(?<![A-Za-z0-9])${form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`, 'g'), MASK);
    }
  }
  return out;
}

/** A connection URL (or conninfo string) for display: its password masked. */
export const redactUrl = (url: string): string => redactSecrets(url, []);

/** Whether the text holds a password in a form redactSecrets recognises (a URL's, a conninfo's, a JSON's...). */
export const holdsSecret = (text: string): boolean => redactSecrets(text, []) !== text;

/**
 * The passwords this process was given in its environment (PGPASSWORD, DATABASE_URL's), to mask wherever they
 * show up, even without a recognisable form around them (a URL with a space in its password).
 */
export function knownSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  const secrets: string[] = [];
  if (env.PGPASSWORD) secrets.push(env.PGPASSWORD);
  const url = env.DATABASE_URL;
  if (url) {
    const userinfo = /^[a-z][a-z0-9+.-]*:\/\/(.*)@/i.exec(url)?.[1];
    const password = userinfo?.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : undefined;
    if (password) secrets.push(password, safeDecode(password));
    const query = /[?&]password=([^&#]*)/i.exec(url)?.[1];
    if (query) secrets.push(query, safeDecode(query));
    const conninfo = /\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]+)/i.exec(url)?.[1];
    if (conninfo) secrets.push(conninfo.replace(/^'|'$/g, ''));
  }
  return [...new Set(secrets)].sort((a, b) => b.length - a.length);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
