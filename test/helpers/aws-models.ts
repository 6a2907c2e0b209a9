/**
 * AWS's own API models, as botocore ships them (installed with moto on every machine and in CI):
 * `<botocore>/data/<service>/<api-version>/service-2.json.gz`, each input member with its `min`, `max` and
 * `pattern` (a Java regex, matched against the whole value). Tests read limits here instead of copying them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

let dataDir: string | null | undefined;

/** botocore's data directory, or undefined (with the reason in `botocoreMissing()`) when python3 or botocore is absent. */
export function botocoreDataDir(): string | undefined {
  if (dataDir === undefined) {
    const r = spawnSync('python3', ['-c', 'import botocore,os;print(os.path.dirname(botocore.__file__))'], { encoding: 'utf8' });
    const dir = r.status === 0 ? join(r.stdout.trim(), 'data') : '';
    dataDir = dir && existsSync(dir) ? dir : null;
    missing = r.error ? `python3 not found (${r.error.message})` : r.status !== 0 ? `python3 cannot import botocore: ${r.stderr.trim().split('\n').pop()}` : dataDir ? '' : `no data directory at ${dir}`;
  }
  return dataDir ?? undefined;
}
let missing = '';
export const botocoreMissing = () => missing;

/** A shape of the model, as botocore writes it (only the traits the tests read). */
export interface Shape {
  type: string;
  members?: Record<string, Member>;
  member?: Member;
  key?: Member;
  value?: Member;
  required?: string[];
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  flattened?: boolean;
  /** The member sent as the whole HTTP body (rest protocols). */
  payload?: string;
  locationName?: string;
  deprecated?: boolean;
  exception?: boolean;
  error?: { code?: string; httpStatusCode?: number; senderFault?: boolean };
}
/** A structure member or list/map element: its shape and how the protocol places it. */
export interface Member {
  shape: string;
  location?: 'uri' | 'querystring' | 'header' | 'headers' | 'statusCode';
  locationName?: string;
  flattened?: boolean;
  deprecated?: boolean;
  jsonvalue?: boolean;
  idempotencyToken?: boolean;
}
export interface Operation {
  name: string;
  http?: { method: string; requestUri: string };
  input?: { shape: string };
  errors?: { shape: string }[];
  deprecated?: boolean;
}
export interface ServiceModel {
  metadata: { protocol: string; protocols?: string[]; targetPrefix?: string; signingName?: string; endpointPrefix: string; jsonVersion?: string; apiVersion?: string };
  operations: Record<string, Operation>;
  shapes: Record<string, Shape>;
}

const models = new Map<string, ServiceModel>();

/** The newest model of a service (`kinesis`, `iot`, `logs`, …). */
export function serviceModel(service: string): ServiceModel {
  const root = botocoreDataDir();
  if (!root) throw new Error(`botocore is not available: ${botocoreMissing()}`);
  let model = models.get(service);
  if (!model) {
    const file = (v: string) => ['service-2.json.gz', 'service-2.json'].map((f) => join(root, service, v, f)).find((f) => existsSync(f));
    const versions = readdirSync(join(root, service)).filter((v) => file(v)).sort();
    if (!versions.length) throw new Error(`no service-2.json(.gz) for ${service} under ${root}`);
    const path = file(versions.at(-1)!)!;
    const raw = readFileSync(path);
    model = JSON.parse((path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')) as ServiceModel;
    for (const [name, op] of Object.entries(model.operations)) op.name ??= name;
    models.set(service, model);
  }
  return model;
}

// Signing names (the SigV4 credential scope) whose botocore directory has another name.
const DIR_BY_SIGNING_NAME: Record<string, string> = { iotdata: 'iot-data', monitoring: 'cloudwatch', email: 'ses', states: 'stepfunctions', tagging: 'resourcegroupstaggingapi', servicequotas: 'service-quotas' };
const bySigningName = new Map<string, string | null>();

/** The botocore service directory for a SigV4 signing name (`iot`, `iotdata`, `kinesis`), or undefined when botocore has no model for it. */
export function serviceForSigningName(signingName: string): string | undefined {
  if (!bySigningName.has(signingName)) {
    const root = botocoreDataDir();
    const matches = (dir: string) => {
      try {
        const md = serviceModel(dir).metadata;
        return (md.signingName ?? md.endpointPrefix) === signingName;
      } catch {
        return false;
      }
    };
    // Not a scan of every model: that reads some hundred files; a name missing here is added to the table.
    const found = [DIR_BY_SIGNING_NAME[signingName], signingName].find((d) => d && root && existsSync(join(root, d)) && matches(d));
    bySigningName.set(signingName, found ?? null);
  }
  return bySigningName.get(signingName) ?? undefined;
}

export interface MemberConstraint {
  shape: string;
  min?: number;
  max?: number;
  /** The model's Java pattern, as written. */
  javaPattern?: string;
  /** The same, translated to JavaScript and anchored to the whole value (AWS matches the whole value). */
  pattern?: RegExp;
}

/** The constraints of an operation's input member; `path` walks nested structures (`DatabaseInput.Name`). */
export function memberConstraint(service: string, operation: string, path: string): MemberConstraint {
  const model = serviceModel(service);
  const op = model.operations[operation];
  if (!op?.input) throw new Error(`${service} has no operation ${operation} with an input`);
  let shapeName = op.input.shape;
  for (const part of path.split('.')) {
    const member = model.shapes[shapeName]?.members?.[part];
    if (!member) throw new Error(`${service} ${operation}: no member ${part} in ${shapeName}`);
    shapeName = member.shape;
  }
  const shape = model.shapes[shapeName]!;
  return { shape: shapeName, min: shape.min, max: shape.max, javaPattern: shape.pattern, pattern: shape.pattern === undefined ? undefined : javaRegex(shape.pattern) };
}

/**
 * A Java regex as a JavaScript one, anchored. Covers what the AWS models use: POSIX classes (`\p{Alnum}`),
 * possessive quantifiers (`*+`, `++`, `?+`, `}+`: the same matches for a whole-value test), `\A`/`\z`, and
 * code points written as UTF-16 surrogate pairs (`\uD800\uDC00`, Glue's names), which need the `u` flag.
 * Without pairs it compiles without `u`, which reads `[0-9-_]` as Java does (0-9, '-', '_').
 */
export function javaRegex(pattern: string): RegExp {
  const posix: Record<string, string> = { Alnum: 'A-Za-z0-9', Alpha: 'A-Za-z', Digit: '0-9', Upper: 'A-Z', Lower: 'a-z', Punct: '!-\\/:-@\\[-`{-~', Space: ' \\t\\n\\x0B\\f\\r', XDigit: '0-9a-fA-F' };
  const pairs = /\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})/gi;
  const unicode = pairs.test(pattern);
  const source = pattern.replace(pairs, (_, hi: string, lo: string) => `\\u{${String.fromCharCode(parseInt(hi, 16), parseInt(lo, 16)).codePointAt(0)!.toString(16)}}`);
  let out = '';
  let inClass = false;
  let afterQuantifier = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    const quantifier = afterQuantifier;
    afterQuantifier = false;
    if (c === '\\') {
      const prop = /^p\{(\w+)\}/.exec(source.slice(i + 1));
      if (prop) {
        const set = posix[prop[1]!];
        if (!set) throw new Error(`unsupported Java class \\p{${prop[1]}} in ${pattern}`);
        out += inClass ? set : `[${set}]`;
        i += prop[0].length;
      } else if (source[i + 1] === 'A') (out += '^'), i++;
      else if (source[i + 1] === 'z' || source[i + 1] === 'Z') (out += '$'), i++;
      else (out += c + (source[i + 1] ?? '')), i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '+' && quantifier) continue; // possessive: Java's `a++` is `a+` for a whole-value match
    else if (c === '{' && /^\{\d+(,\d*)?\}/.test(source.slice(i))) {
      const q = /^\{\d+(,\d*)?\}/.exec(source.slice(i))![0];
      out += q;
      i += q.length - 1;
      afterQuantifier = true;
      continue;
    } else if ('*+?'.includes(c) && !quantifier && out.at(-1) !== '(') afterQuantifier = true;
    out += c;
  }
  return new RegExp(`^(?:${out})$`, unicode ? 'u' : '');
}
