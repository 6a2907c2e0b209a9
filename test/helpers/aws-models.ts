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

interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  min?: number;
  max?: number;
  pattern?: string;
}
interface ServiceModel {
  operations: Record<string, { input?: { shape: string } }>;
  shapes: Record<string, Shape>;
}

const models = new Map<string, ServiceModel>();

/** The newest model of a service (`kinesis`, `iot`, `logs`, …). */
export function serviceModel(service: string): ServiceModel {
  const root = botocoreDataDir();
  if (!root) throw new Error(`botocore is not available: ${botocoreMissing()}`);
  let model = models.get(service);
  if (!model) {
    const versions = readdirSync(join(root, service)).filter((v) => existsSync(join(root, service, v, 'service-2.json.gz'))).sort();
    if (!versions.length) throw new Error(`no service-2.json.gz for ${service} under ${root}`);
    model = JSON.parse(gunzipSync(readFileSync(join(root, service, versions.at(-1)!, 'service-2.json.gz'))).toString('utf8')) as ServiceModel;
    models.set(service, model);
  }
  return model;
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
