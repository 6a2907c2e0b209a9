/**
 * Conformance of requests to AWS's own API models (botocore's service-2.json, see aws-models.ts): an HTTP
 * request is identified as AWS does (SigV4 credential scope for the service; X-Amz-Target, Action, or method
 * and path against the model's `http.requestUri`), parsed back to its parameters by the protocol's rules
 * (the same ones as moto/core/parse.py and botocore's serializers), then checked: required members, types
 * (integer vs double), lengths, patterns, enums, ranges, unions, unknown members, recursively.
 */
import { javaRegex, serviceForSigningName, serviceModel, type Member, type Operation, type ServiceModel, type Shape } from './aws-models.js';

export interface RawRequest {
  method: string;
  /** Path and query as sent (`/2015-03-31/functions/f?Qualifier=1`). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type Protocol = 'json' | 'query' | 'rest-json' | 'rest-xml';

export interface Identified {
  /** botocore's directory name (`kinesis`, `iot`, `lambda`). */
  service: string;
  signingName: string;
  region: string;
  operation: string;
  protocol: Protocol;
  model: ServiceModel;
  op: Operation;
  /** Path labels matched against the requestUri template (rest protocols). */
  labels: Record<string, string>;
}

export interface Violation {
  service: string;
  operation: string;
  /** Where in the input (`EventSourceMapping.MaximumBatchingWindowInSeconds`, `Tags["k"]`, `Items[0]`). */
  member: string;
  value: unknown;
  /** required | type | length | range | pattern | enum | union | unknown-member | deprecated | unparseable | unknown-operation */
  rule: string;
  detail: string;
}

const header = (req: RawRequest, name: string): string | undefined => {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
};

/** SigV4 credential scope: `Credential=AKID/20260101/us-east-1/kinesis/aws4_request` (header or presigned query). */
export function credentialScope(req: RawRequest): { region: string; signingName: string } | undefined {
  const auth = header(req, 'authorization') ?? '';
  const m = /Credential=[^/,\s]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth) ?? /X-Amz-Credential=[^&]*?%2F\d{8}%2F([^%&]+)%2F([^%&]+)%2Faws4_request/i.exec(req.url);
  return m ? { region: m[1]!, signingName: m[2]! } : undefined;
}

interface Route {
  op: Operation;
  method: string;
  re: RegExp;
  labels: { name: string; greedy: boolean }[];
  query: [string, string | undefined][];
  score: number;
}
const routeCache = new Map<string, Map<string, Route[]>>();

/** The service's REST routes for one HTTP method, most specific first. */
function routes(service: string, model: ServiceModel, method: string): Route[] {
  let byMethod = routeCache.get(service);
  if (byMethod) return byMethod.get(method) ?? [];
  const list: Route[] = [];
  for (const op of Object.values(model.operations)) {
    if (!op.http) continue;
    const [path, qs] = op.http.requestUri.split('?') as [string, string | undefined];
    const labels: Route['labels'] = [];
    let literal = 0;
    const source = path.replace(/\{(\w+)(\+?)\}|[^{]+/g, (part, name: string | undefined, plus: string) => {
      if (!name) {
        literal += part.length;
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
      labels.push({ name, greedy: plus === '+' });
      return plus ? '(.+)' : '([^/]+)';
    });
    const query = (qs ? qs.split('&').filter(Boolean) : []).map((kv) => {
      const [k, v] = kv.split('=');
      return [k!, v] as [string, string | undefined];
    });
    // S3 sends `/bucket` for `/{Bucket}` and sometimes `/bucket/`.
    const re = new RegExp(`^${source.replace(/\/$/, '')}/?$`);
    list.push({ op, method: op.http.method, re, labels, query, score: query.length * 1000 + literal * 2 - labels.filter((l) => l.greedy).length });
  }
  list.sort((a, b) => b.score - a.score);
  byMethod = new Map();
  for (const r of list) byMethod.set(r.method, [...(byMethod.get(r.method) ?? []), r]);
  routeCache.set(service, byMethod);
  return byMethod.get(method) ?? [];
}

function protocolOf(model: ServiceModel): Protocol {
  const p = model.metadata.protocol;
  return p === 'json' || p === 'query' || p === 'rest-json' || p === 'rest-xml' ? p : (model.metadata.protocols?.find((x) => ['json', 'query', 'rest-json', 'rest-xml'].includes(x)) as Protocol) ?? 'json';
}

/** Which AWS operation a request is, or undefined for an unsigned request (moto's own API) or a service without a model. */
export function identify(req: RawRequest): Identified | { unknown: string; service?: string } | undefined {
  const scope = credentialScope(req);
  if (!scope) return undefined;
  const service = serviceForSigningName(scope.signingName);
  if (!service) return { unknown: `no botocore model for signing name ${scope.signingName}` };
  const model = serviceModel(service);
  const base = { service, signingName: scope.signingName, region: scope.region, model, labels: {} };
  const target = header(req, 'x-amz-target');
  if (target) {
    const name = target.slice(target.lastIndexOf('.') + 1);
    const op = model.operations[name];
    return op ? { ...base, operation: name, protocol: 'json', op } : { unknown: `${service}: no operation for X-Amz-Target ${target}`, service };
  }
  const type = header(req, 'content-type') ?? '';
  if (protocolOf(model) === 'query' || (type.startsWith('application/x-www-form-urlencoded') && /(^|&)Action=/.test(req.body.toString('latin1')))) {
    const action = new URLSearchParams(req.body.toString('utf8')).get('Action') ?? new URL(req.url, 'http://x').searchParams.get('Action');
    const op = action ? model.operations[action] : undefined;
    return op ? { ...base, operation: action!, protocol: 'query', op } : { unknown: `${service}: no operation for Action ${action}`, service };
  }
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  // Same method and template (S3's PutObject and CopyObject): the one whose required headers and query members are all sent.
  const sent = (r: Route) => {
    const input = r.op.input && model.shapes[r.op.input.shape];
    return (input?.required ?? []).every((name) => {
      const m = input!.members![name]!;
      if (m.location === 'header') return header(req, m.locationName ?? name) !== undefined;
      if (m.location === 'querystring') return url.searchParams.has(m.locationName ?? name);
      return true;
    });
  };
  // The SDK names the operation itself in `x-id` (Smithy models carry it in the URI, botocore's do not).
  const xid = url.searchParams.get('x-id');
  // Ties (PutBucketLifecycle and PutBucketLifecycleConfiguration share a URI): the current operation over a deprecated one.
  const rank = (r: Route) => (r.op.name === xid ? 4 : 0) + (sent(r) ? 2 : 0) + (r.op.deprecated ? 0 : 1);
  let hit: { r: Route; m: RegExpExecArray } | undefined;
  for (const r of routes(service, model, req.method)) {
    const m = r.re.exec(path);
    if (!m || !r.query.every(([k, v]) => url.searchParams.has(k) && (v === undefined || url.searchParams.get(k) === v))) continue;
    if (hit && hit.r.score > r.score) break;
    if (!hit || rank(r) > rank(hit.r)) hit = { r, m };
  }
  if (hit) {
    const { r, m } = hit;
    const labels: Record<string, string> = {};
    r.labels.forEach((l, i) => (labels[l.name] = decodeURIComponent(m[i + 1]!)));
  return { ...base, operation: r.op.name, protocol: protocolOf(model) === 'rest-xml' ? 'rest-xml' : 'rest-json', op: r.op, labels };
  }
  return { unknown: `${service}: no operation for ${req.method} ${path}`, service };
}

/** Raw (string) values from a query string, header or form keep their text; `scalar` turns them into JSON types where they parse. */
function scalar(shape: Shape, raw: string): unknown {
  switch (shape.type) {
    case 'integer':
    case 'long':
      return /^-?\d+$/.test(raw) ? Number(raw) : raw;
    case 'float':
    case 'double':
      return raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    case 'boolean':
      return raw === 'true' ? true : raw === 'false' ? false : raw;
    default:
      return raw;
  }
}

const wireName = (name: string, m: Member) => m.locationName ?? name;

/** Query protocol: `Tags.member.1.Key`, flattened lists, `Attributes.entry.1.key` (botocore's QuerySerializer, read back). */
function fromQuery(model: ServiceModel, member: Member, prefix: string, form: Map<string, string>, used: Set<string>): unknown {
  const shape = model.shapes[member.shape]!;
  if (shape.type === 'structure') {
    const out: Record<string, unknown> = {};
    for (const [name, m] of Object.entries(shape.members ?? {})) {
      const v = fromQuery(model, m, prefix ? `${prefix}.${wireName(name, m)}` : wireName(name, m), form, used);
      if (v !== undefined) out[name] = v;
    }
    return Object.keys(out).length || !prefix ? out : undefined;
  }
  if (shape.type === 'list') {
    if (form.get(prefix) === '') return used.add(prefix), [];
    const el = shape.member!;
    let listPrefix: string;
    if (shape.flattened || member.flattened) listPrefix = el.locationName ? [...prefix.split('.').slice(0, -1), el.locationName].join('.') : prefix;
    else listPrefix = `${prefix}.${el.locationName ?? 'member'}`;
    const out: unknown[] = [];
    for (let i = 1; ; i++) {
      const v = fromQuery(model, el, `${listPrefix}.${i}`, form, used);
      if (v === undefined) break;
      out.push(v);
    }
    return out.length ? out : undefined;
  }
  if (shape.type === 'map') {
    const base = shape.flattened || member.flattened ? prefix : `${prefix}.entry`;
    const out: Record<string, unknown> = {};
    for (let i = 1; ; i++) {
      const k = `${base}.${i}.${shape.key!.locationName ?? 'key'}`;
      if (!form.has(k)) break;
      used.add(k);
      out[form.get(k)!] = fromQuery(model, shape.value!, `${base}.${i}.${shape.value!.locationName ?? 'value'}`, form, used);
    }
    return Object.keys(out).length ? out : undefined;
  }
  if (!form.has(prefix)) return undefined;
  used.add(prefix);
  return scalar(shape, form.get(prefix)!);
}

/** JSON wire names to member names (a member's `locationName` is its JSON key), unknown keys reported. */
function fromJson(model: ServiceModel, shapeName: string, v: unknown, path: string, bad: (path: string, value: unknown) => void): unknown {
  const shape = model.shapes[shapeName]!;
  if (shape.type === 'structure' && v && typeof v === 'object' && !Array.isArray(v)) {
    const byWire = new Map(Object.entries(shape.members ?? {}).map(([n, m]) => [wireName(n, m), [n, m] as const]));
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      const hit = byWire.get(k);
      if (!hit) bad(join(path, k), val);
      else out[hit[0]] = fromJson(model, hit[1].shape, val, join(path, hit[0]), bad);
    }
    return out;
  }
  if (shape.type === 'list' && Array.isArray(v)) return v.map((x, i) => fromJson(model, shape.member!.shape, x, `${path}[${i}]`, bad));
  if (shape.type === 'map' && v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(model, shape.value!.shape, x, `${path}[${JSON.stringify(k)}]`, bad)]));
  return v;
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** A minimal XML reader for rest-xml bodies (S3): elements and text, namespaces and attributes ignored. */
interface XmlNode {
  name: string;
  children: XmlNode[];
  text: string;
}
function parseXml(xml: string): XmlNode | undefined {
  const root: XmlNode = { name: '#root', children: [], text: '' };
  const stack = [root];
  const re = /<\?[^>]*\?>|<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>|<\/([^\s>]+)\s*>|<([^\s/>]+)[^>]*?(\/?)>|([^<]+)/g;
  const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(+n)).replace(/&amp;/g, '&');
  for (let m; (m = re.exec(xml)); ) {
    const top = stack.at(-1)!;
    if (m[1] !== undefined) top.text += m[1];
    else if (m[2]) stack.length > 1 && stack.pop();
    else if (m[3]) {
      const node: XmlNode = { name: m[3].replace(/^.*:/, ''), children: [], text: '' };
      top.children.push(node);
      if (!m[4]) stack.push(node);
    } else if (m[5]) top.text += unescape(m[5]);
  }
  return root.children[0];
}

function fromXml(model: ServiceModel, member: Member, node: XmlNode, path: string, bad: (path: string, value: unknown) => void): unknown {
  const shape = model.shapes[member.shape]!;
  if (shape.type === 'structure') {
    const out: Record<string, unknown> = {};
    const known = new Set<string>();
    for (const [name, m] of Object.entries(shape.members ?? {})) {
      if (m.location) continue;
      const ms = model.shapes[m.shape]!;
      const wire = wireName(name, m);
      if (ms.type === 'list' && (ms.flattened || m.flattened)) {
        const el = ms.member!;
        const tag = el.locationName ?? wire;
        known.add(tag);
        const items = node.children.filter((c) => c.name === tag);
        if (items.length) out[name] = items.map((c, i) => fromXml(model, el, c, `${join(path, name)}[${i}]`, bad));
        continue;
      }
      known.add(wire);
      const child = node.children.find((c) => c.name === wire);
      if (child) out[name] = fromXml(model, m, child, join(path, name), bad);
    }
    for (const c of node.children) if (!known.has(c.name)) bad(join(path, c.name), c.text);
    return out;
  }
  if (shape.type === 'list') {
    const el = shape.member!;
    return node.children.filter((c) => c.name === (el.locationName ?? 'member')).map((c, i) => fromXml(model, el, c, `${path}[${i}]`, bad));
  }
  if (shape.type === 'map') {
    const out: Record<string, unknown> = {};
    for (const e of node.children) {
      const k = e.children.find((c) => c.name === (shape.key!.locationName ?? 'key'))?.text ?? '';
      const v = e.children.find((c) => c.name === (shape.value!.locationName ?? 'value'));
      if (v) out[k] = fromXml(model, shape.value!, v, `${path}[${JSON.stringify(k)}]`, bad);
    }
    return out;
  }
  return scalar(shape, node.text);
}

/** The request's input parameters (member names, JSON types where the wire allows), and what could not be mapped. */
export function requestParams(id: Identified, req: RawRequest): { params: Record<string, unknown>; violations: Violation[] } {
  const violations: Violation[] = [];
  const v = (member: string, value: unknown, rule: string, detail: string): void => void violations.push({ service: id.service, operation: id.operation, member, value, rule, detail });
  const unknown = (path: string, value: unknown) => v(path, value, 'unknown-member', 'not a member of the input shape');
  const inputShape = id.op.input?.shape;
  if (!inputShape) return { params: {}, violations };
  const model = id.model;
  const input = model.shapes[inputShape]!;
  const text = () => req.body.toString('utf8');

  if (id.protocol === 'json') {
    let body: unknown = {};
    try {
      body = req.body.length ? JSON.parse(text()) : {};
    } catch (e) {
      v('', text().slice(0, 200), 'unparseable', `body is not JSON: ${(e as Error).message}`);
    }
    return { params: (fromJson(model, inputShape, body, '', unknown) ?? {}) as Record<string, unknown>, violations };
  }

  if (id.protocol === 'query') {
    const form = new Map<string, string>();
    const src = req.method === 'GET' ? new URL(req.url, 'http://x').searchParams : new URLSearchParams(text());
    for (const [k, val] of src) form.set(k, val);
    const used = new Set(['Action', 'Version']);
    const params = fromQuery(model, { shape: inputShape }, '', form, used) as Record<string, unknown>;
    for (const [k, val] of form) if (!used.has(k)) unknown(k, val);
    return { params, violations };
  }

  // rest-json / rest-xml: labels, query string, headers, then the body.
  const params: Record<string, unknown> = {};
  const url = new URL(req.url, 'http://x');
  const usedQuery = new Set<string>();
  const literalQuery = (id.op.http?.requestUri.split('?')[1] ?? '').split('&').map((kv) => kv.split('=')[0]!).filter(Boolean);
  let queryMap: string | undefined;
  for (const [name, m] of Object.entries(input.members ?? {})) {
    const shape = model.shapes[m.shape]!;
    const wire = wireName(name, m);
    if (m.location === 'uri') {
      if (id.labels[wire] !== undefined) params[name] = scalar(shape, id.labels[wire]);
    } else if (m.location === 'querystring') {
      if (shape.type === 'map') queryMap = name;
      else if (url.searchParams.has(wire)) {
        usedQuery.add(wire);
        const all = url.searchParams.getAll(wire);
        params[name] = shape.type === 'list' ? all.map((x) => scalar(model.shapes[shape.member!.shape]!, x)) : scalar(shape, all[0]!);
      }
    } else if (m.location === 'header') {
      const h = header(req, wire);
      if (h === undefined) continue;
      if (shape.type === 'list') params[name] = h.split(',').map((x) => scalar(model.shapes[shape.member!.shape]!, x.trim()));
      else if (m.jsonvalue) {
        try {
          params[name] = JSON.parse(Buffer.from(h, 'base64').toString('utf8'));
        } catch {
          v(name, h, 'unparseable', 'JSON-value header is not base64 JSON');
        }
      } else params[name] = scalar(shape, h);
    } else if (m.location === 'headers') {
      const prefix = wire.toLowerCase();
      const map = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith(prefix)).map(([k, x]) => [k.slice(prefix.length), String(x)]));
      if (Object.keys(map).length) params[name] = map;
    }
  }
  const rest = [...url.searchParams.keys()].filter((k) => !usedQuery.has(k) && !literalQuery.includes(k) && k !== 'x-id');
  if (queryMap && rest.length) params[queryMap] = Object.fromEntries(rest.map((k) => [k, url.searchParams.get(k)]));
  else for (const k of new Set(rest)) unknown(`?${k}`, url.searchParams.get(k));

  if (input.payload) {
    const m = input.members![input.payload]!;
    const shape = model.shapes[m.shape]!;
    if (!req.body.length) return { params, violations };
    if (shape.type === 'structure') {
      if (id.protocol === 'rest-json') {
        try {
          params[input.payload] = fromJson(model, m.shape, JSON.parse(text()), input.payload, unknown);
        } catch (e) {
          v(input.payload, text().slice(0, 200), 'unparseable', `body is not JSON: ${(e as Error).message}`);
        }
      } else {
        const node = parseXml(text());
        if (node) params[input.payload] = fromXml(model, m, node, input.payload, unknown);
      }
    } else params[input.payload] = shape.type === 'string' ? text() : req.body;
    return { params, violations };
  }
  const bodyMembers = Object.entries(input.members ?? {}).filter(([, m]) => !m.location);
  if (req.body.length && id.protocol === 'rest-json') {
    let body: unknown;
    try {
      body = JSON.parse(text());
    } catch (e) {
      v('', text().slice(0, 200), 'unparseable', `body is not JSON: ${(e as Error).message}`);
    }
    if (body && typeof body === 'object') {
      const byWire = new Map(bodyMembers.map(([n, m]) => [wireName(n, m), [n, m] as const]));
      for (const [k, val] of Object.entries(body)) {
        const hit = byWire.get(k);
        if (!hit) unknown(k, val);
        else params[hit[0]] = fromJson(model, hit[1].shape, val, hit[0], unknown);
      }
    }
  } else if (req.body.length && bodyMembers.length) {
    const node = parseXml(text());
    if (node) Object.assign(params, fromXml(model, { shape: inputShape }, node, '', unknown));
  }
  return { params, violations };
}

const regexCache = new Map<string, RegExp | null>();
function compiled(pattern: string): RegExp | null {
  if (!regexCache.has(pattern)) {
    try {
      regexCache.set(pattern, javaRegex(pattern));
    } catch {
      regexCache.set(pattern, null); // a Java construct javaRegex does not translate: unchecked, not a false alarm
    }
  }
  return regexCache.get(pattern)!;
}

const show = (x: unknown) => (typeof x === 'string' ? JSON.stringify(x.length > 120 ? `${x.slice(0, 117)}...` : x) : Buffer.isBuffer(x) ? `<${x.length} bytes>` : JSON.stringify(x)?.slice(0, 120));

/** Every way `params` breaks the operation's input shape. */
export function validate(id: Pick<Identified, 'service' | 'operation' | 'model' | 'op'>, params: Record<string, unknown>): Violation[] {
  const out: Violation[] = [];
  const model = id.model;
  const v = (member: string, value: unknown, rule: string, detail: string): void => void out.push({ service: id.service, operation: id.operation, member, value, rule, detail });
  if (id.op.deprecated) v('', undefined, 'deprecated', `operation ${id.operation} is deprecated in the model`);
  const check = (shapeName: string, value: unknown, path: string): void => {
    const shape = model.shapes[shapeName]!;
    const len = (n: number, what: string) => {
      if (shape.min !== undefined && n < shape.min) v(path, value, 'length', `${what} ${n} < min ${shape.min}`);
      if (shape.max !== undefined && n > shape.max) v(path, value, 'length', `${what} ${n} > max ${shape.max}`);
    };
    const range = (n: number) => {
      if (shape.min !== undefined && n < shape.min) v(path, value, 'range', `${n} < min ${shape.min}`);
      if (shape.max !== undefined && n > shape.max) v(path, value, 'range', `${n} > max ${shape.max}`);
    };
    const type = (expected: string) => v(path, value, 'type', `expected ${expected} (shape ${shapeName}), got ${Array.isArray(value) ? 'array' : typeof value} ${show(value)}`);
    switch (shape.type) {
      case 'structure': {
        if (!value || typeof value !== 'object' || Array.isArray(value)) return type('structure');
        const obj = value as Record<string, unknown>;
        for (const r of shape.required ?? []) if (obj[r] === undefined || obj[r] === null) v(join(path, r), undefined, 'required', `required member of ${shapeName} is missing`);
        const set = Object.entries(obj).filter(([, x]) => x !== undefined && x !== null);
        if ((shape as { union?: boolean }).union && set.length !== 1) v(path, Object.keys(obj), 'union', `union ${shapeName} needs exactly one member, got ${set.length}`);
        for (const [k, x] of set) {
          const m = shape.members?.[k];
          if (!m) continue; // reported while parsing
          if (m.deprecated) v(join(path, k), x, 'deprecated', `member ${k} of ${shapeName} is deprecated in the model`);
          check(m.shape, x, join(path, k));
        }
        return;
      }
      case 'list':
        if (!Array.isArray(value)) return type('list');
        len(value.length, 'count');
        value.forEach((x, i) => x !== null && check(shape.member!.shape, x, `${path}[${i}]`));
        return;
      case 'map':
        if (!value || typeof value !== 'object' || Array.isArray(value)) return type('map');
        len(Object.keys(value).length, 'count');
        for (const [k, x] of Object.entries(value)) {
          check(shape.key!.shape, k, `${path}{key ${JSON.stringify(k)}}`);
          if (x !== null) check(shape.value!.shape, x, `${path}[${JSON.stringify(k)}]`);
        }
        return;
      case 'string': {
        if (typeof value !== 'string') return type('string');
        if (shape.enum && !shape.enum.includes(value)) v(path, value, 'enum', `not one of ${shapeName}: ${shape.enum.slice(0, 12).join(', ')}${shape.enum.length > 12 ? ', …' : ''}`);
        len([...value].length, 'length');
        const re = shape.pattern === undefined ? null : compiled(shape.pattern);
        if (re && !re.test(value)) v(path, value, 'pattern', `does not match ${shapeName} pattern ${shape.pattern}`);
        return;
      }
      case 'integer':
      case 'long':
        if (typeof value !== 'number' || !Number.isInteger(value)) return type(shape.type);
        return range(value);
      case 'float':
      case 'double':
        if (typeof value !== 'number') return type(shape.type);
        return range(value);
      case 'boolean':
        if (typeof value !== 'boolean') return type('boolean');
        return;
      case 'timestamp':
        if (typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'string' || Number.isNaN(Date.parse(value)) && !/^\d+(\.\d+)?$/.test(value)) type('timestamp');
        return;
      case 'blob': {
        if (Buffer.isBuffer(value)) return len(value.length, 'size');
        if (typeof value !== 'string') return type('blob (base64)');
        return len(Buffer.from(value, 'base64').length, 'size');
      }
      default:
        return; // document and the like: any JSON
    }
  };
  check(id.op.input!.shape, params, '');
  return out;
}

/** Identify, parse and validate one request: the violations (an empty list when it conforms or is not an AWS call). */
export function conformance(req: RawRequest): { id?: Identified; params?: Record<string, unknown>; violations: Violation[] } {
  const id = identify(req);
  if (!id) return { violations: [] };
  if ('unknown' in id) return { violations: id.service ? [{ service: id.service, operation: '?', member: '', value: `${req.method} ${req.url}`, rule: 'unknown-operation', detail: id.unknown }] : [] };
  if (!id.op.input) return { id, params: {}, violations: [] };
  const { params, violations } = requestParams(id, req);
  return { id, params, violations: [...violations, ...validate(id, params)] };
}
