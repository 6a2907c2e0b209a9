/**
 * A realism layer for the aws tests: an HTTP proxy between the SDK and moto_server (point AWS_ENDPOINT_URL at
 * `url`). moto answers at once, accepts what AWS refuses and has no eventual consistency; the proxy adds, per
 * operation (keys `service:Operation`, `service:*` or `*`, service as botocore names it: `kinesis`, `iot`):
 * - latency per call (default 40 ms), slow answers, and answers that never come;
 * - throttling at per-API rates, answered with the operation's own throttling error from the model;
 * - IAM propagation: a role created or changed less than N s ago cannot be assumed by the consuming service;
 * - asynchronous states: new Kinesis streams and Firehose streams CREATING, Lambda functions Pending (and
 *   InProgress after an update) for a while, with AWS's errors for calls that need them ACTIVE;
 * - conformance: every request checked against the botocore models (aws-conformance.ts), see `violations()`.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { conformance, type Identified, type RawRequest, type Violation } from './aws-conformance.js';

export interface RealismOptions {
  /** moto_server's URL. */
  target: string;
  /** Added to every AWS call, in ms (default 40). */
  latencyMs?: number;
  /** Per-operation latency overriding `latencyMs`. */
  latency?: Record<string, number>;
  /** Check every request against the models (default true). */
  conformance?: boolean;
  /** Requests per second allowed, per API: `{ 'iot:*': 15, 'iot:CreateThing': 100 }` (each API its own bucket). */
  throttle?: Record<string, number>;
  /** A role created or changed (policy put/attached, trust updated) less than this many seconds ago cannot be assumed. */
  iamPropagationSeconds?: number;
  /** Limit the propagation check to these consuming operations (`firehose:CreateDeliveryStream`); all when unset. */
  iamPropagationOps?: string[];
  /** How long new resources stay in their transitional state, in ms. */
  creating?: { kinesisMs?: number; firehoseMs?: number; lambdaMs?: number; lambdaUpdateMs?: number };
  /** Operations whose requests are accepted and never answered. */
  hang?: string[];
  /** Operations answered only after this many ms (on top of latency). */
  slow?: Record<string, number>;
  /** Operations the caller is not allowed (`s3:GetObject`, `service-quotas:*`): answered with the service's AccessDenied. */
  deny?: string[];
  /**
   * Service Quotas as an account reports them (moto serves only `vpc`): ListServiceQuotas (applied) and
   * ListAWSDefaultServiceQuotas (`defaults`, else the same values) for these service codes.
   */
  serviceQuotas?: Record<string, { applied?: { QuotaCode: string; QuotaName: string; Value: number }[]; defaults?: { QuotaCode: string; QuotaName: string; Value: number }[] }>;
}

export interface CallRecord {
  key: string;
  status: number;
  /** What the proxy answered itself instead of moto (`throttled`, `iam-propagation`, `creating`, `hang`, `denied`, `quotas`). */
  injected?: string;
  /** Time in the proxy (request read to answer written), and the part of it spent checking conformance, in ms. */
  ms?: number;
  checkMs?: number;
  /** When the request arrived (performance.timeOrigin-based epoch ms), to see which calls wait on which. */
  start?: number;
}

export interface Realism {
  url: string;
  /** Change options while running (tests switch faults on and off). */
  set(opts: Partial<Omit<RealismOptions, 'target'>>): void;
  /** Every violation seen, one entry per request and member. */
  violations(): Violation[];
  /** The same, one entry per (operation, member path without indexes, rule), with a count and a sample value. */
  distinctViolations(): (Violation & { count: number })[];
  clearViolations(): void;
  calls(): CallRecord[];
  /** Forget tracked roles, resources and throttling buckets (with moto.reset()). */
  forget(): void;
  close(): Promise<void>;
}

const THROTTLING_CODES = ['ThrottlingException', 'TooManyRequestsException', 'ProvisionedThroughputExceededException', 'LimitExceededException', 'Throttling', 'ThrottledException', 'RequestThrottled', 'RequestLimitExceeded', 'SlowDown'];
const ROLE_ARN = /^arn:aws[\w-]*:iam::\d{12}:role\/(?:[\w+=,.@/-]*\/)?([\w+=,.@-]+)$/;
const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

/** The most specific setting for an operation: `service:Operation`, then `service:*`, then `*`. */
function lookup<T>(table: Record<string, T> | undefined, id: Identified): T | undefined {
  if (!table) return undefined;
  return table[`${id.service}:${id.operation}`] ?? table[`${id.service}:*`] ?? table['*'];
}

/** A function's name from a name, partial ARN or ARN (with or without qualifier). */
const functionName = (s: string) => (s.includes('function:') ? s.split('function:')[1]! : s).split(':')[0]!;
const streamName = (p: Record<string, unknown>, nameKey: string) => (p[nameKey] as string | undefined) ?? ((p.StreamARN as string | undefined)?.split('/').pop());

function findRoles(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string' && ROLE_ARN.test(v)) out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => findRoles(x, out));
  else if (v && typeof v === 'object' && !Buffer.isBuffer(v)) Object.values(v).forEach((x) => findRoles(x, out));
  return out;
}

/** An error as the service's protocol writes it, so the SDK parses the real code and message. */
function awsError(res: ServerResponse, id: Identified, status: number, code: string, message: string, extra: Record<string, unknown> = {}): void {
  const requestId = `realism-${Math.random().toString(16).slice(2, 10)}`;
  let body: string;
  const headers: Record<string, string> = { 'x-amzn-requestid': requestId, 'x-amz-request-id': requestId };
  if (id.protocol === 'json') {
    headers['content-type'] = `application/x-amz-json-${id.model.metadata.jsonVersion ?? '1.1'}`;
    headers['x-amzn-errortype'] = code;
    body = JSON.stringify({ __type: code, message, ...extra });
  } else if (id.protocol === 'rest-json') {
    headers['content-type'] = 'application/json';
    headers['x-amzn-errortype'] = code;
    body = JSON.stringify({ message, ...extra });
  } else if (id.protocol === 'query') {
    headers['content-type'] = 'text/xml';
    body = `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
  } else {
    headers['content-type'] = 'application/xml';
    body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId></Error>`;
  }
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers).end(body);
}

/** The operation's own throttling error (from its `errors` in the model), else the service family's usual one. */
function throttlingError(id: Identified): { code: string; status: number } {
  const listed = (id.op.errors ?? []).map((e) => e.shape);
  const code = THROTTLING_CODES.find((c) => listed.includes(c)) ?? (id.service === 's3' ? 'SlowDown' : id.protocol === 'query' ? 'Throttling' : 'ThrottlingException');
  const status = id.model.shapes[code]?.error?.httpStatusCode ?? (code === 'SlowDown' ? 503 : id.protocol === 'rest-json' ? 429 : 400);
  return { code, status };
}

/** The operation's "not ready" error from its model: ResourceInUseException where listed, else ResourceNotFoundException. */
function notActiveError(id: Identified): { code: string; status: number } | undefined {
  const listed = (id.op.errors ?? []).map((e) => e.shape);
  const code = ['ResourceInUseException', 'ResourceNotFoundException'].find((c) => listed.includes(c));
  return code ? { code, status: id.model.shapes[code]?.error?.httpStatusCode ?? 400 } : undefined;
}

export async function startRealism(options: RealismOptions): Promise<Realism> {
  const opts: RealismOptions = { latencyMs: 40, conformance: true, ...options };
  const target = new URL(opts.target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let seen: Violation[] = [];
  const log: CallRecord[] = [];
  const roles = new Map<string, number>(); // role name -> last change (ms)
  const functionRoles = new Map<string, string>(); // function name -> role ARN
  const streams = new Map<string, number>(); // kinesis stream -> created at
  const deliveryStreams = new Map<string, number>();
  const functions = new Map<string, number>();
  const functionUpdates = new Map<string, number>();
  const mappings = new Map<string, { functionName: string; source: string }>(); // event source mapping UUID -> its function and source
  const buckets = new Map<string, { tokens: number; at: number }>();
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const young = (arn: string) => {
    const name = ROLE_ARN.exec(arn)?.[1];
    const at = name ? roles.get(name) : undefined;
    return at !== undefined && Date.now() - at < (opts.iamPropagationSeconds ?? 0) * 1000;
  };
  const within = (map: Map<string, number>, key: string | undefined, ms: number | undefined) => key !== undefined && ms !== undefined && map.has(key) && Date.now() - map.get(key)! < ms;

  function takeToken(id: Identified): boolean {
    const rate = lookup(opts.throttle, id);
    if (!rate) return true;
    const key = `${id.service}:${id.operation}`;
    const now = Date.now();
    const b = buckets.get(key) ?? { tokens: Math.max(1, rate), at: now };
    b.tokens = Math.min(Math.max(1, rate), b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** An answer the proxy gives instead of moto (a fault AWS would produce), or undefined to forward. */
  function inject(id: Identified, p: Record<string, unknown>, res: ServerResponse): string | undefined {
    if (lookup(Object.fromEntries((opts.deny ?? []).map((k) => [k, true])), id)) {
      const code = id.service === 's3' ? 'AccessDenied' : 'AccessDeniedException';
      const action = `${id.signingName}:${id.operation}`;
      awsError(res, id, 403, code, `User: arn:aws:iam::123456789012:user/test is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`);
      return 'denied';
    }
    if (opts.serviceQuotas && id.signingName === 'servicequotas' && (id.operation === 'ListServiceQuotas' || id.operation === 'ListAWSDefaultServiceQuotas')) {
      const code = String(p.ServiceCode ?? '');
      const table = opts.serviceQuotas[code];
      if (!table) return awsError(res, id, 400, 'NoSuchResourceException', 'This service is not available in the current Region. Choose a different Region or a different service.'), 'quotas';
      const list = id.operation === 'ListServiceQuotas' ? (table.applied ?? []) : (table.defaults ?? table.applied ?? []);
      const body = JSON.stringify({ Quotas: list.map((q) => ({ ServiceCode: code, ServiceName: code, QuotaArn: `arn:aws:servicequotas:${id.region}:123456789012:${code}/${q.QuotaCode}`, Unit: 'None', Adjustable: true, GlobalQuota: false, ...q })) });
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': String(Buffer.byteLength(body)), 'x-amzn-requestid': 'realism-quotas' }).end(body);
      return 'quotas';
    }
    if (!takeToken(id)) {
      const { code, status } = throttlingError(id);
      awsError(res, id, status, code, 'Rate exceeded', id.service === 'lambda' ? { Type: 'User', Reason: 'CallerRateLimitExceeded' } : {});
      return 'throttled';
    }
    const op = `${id.service}:${id.operation}`;
    if (opts.iamPropagationSeconds && (!opts.iamPropagationOps || opts.iamPropagationOps.includes(op))) {
      if (op === 'lambda:CreateFunction' || op === 'lambda:UpdateFunctionConfiguration') {
        const role = typeof p.Role === 'string' ? p.Role : functionRoles.get(functionName(String(p.FunctionName ?? '')));
        const vpc = ((p.VpcConfig as { SubnetIds?: string[] } | undefined)?.SubnetIds ?? []).length > 0;
        // In a VPC, Lambda checks the role's EC2 network-interface permissions too, with its own message.
        if (role && young(role) && vpc) return awsError(res, id, 400, 'InvalidParameterValueException', 'The provided execution role does not have permissions to call CreateNetworkInterface on EC2', { Type: 'User' }), 'iam-propagation';
        if (typeof p.Role === 'string' && young(p.Role)) return awsError(res, id, 400, 'InvalidParameterValueException', 'The role defined for the function cannot be assumed by Lambda.', { Type: 'User' }), 'iam-propagation';
      } else if (op === 'lambda:CreateEventSourceMapping' || op === 'lambda:UpdateEventSourceMapping') {
        const mapping = mappings.get(String(p.UUID ?? ''));
        const role = functionRoles.get(functionName(String(p.FunctionName ?? mapping?.functionName ?? '')));
        const source = String(p.EventSourceArn ?? mapping?.source ?? '');
        if (role && young(role)) {
          const message = source.startsWith('arn:aws:sqs') || source.includes(':sqs:') ? 'The provided execution role does not have permissions to call ReceiveMessage on SQS' : `Cannot access stream ${source}. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, ListShards, and ListStreams Actions on your stream in IAM.`;
          return awsError(res, id, 400, 'InvalidParameterValueException', message, { Type: 'User' }), 'iam-propagation';
        }
      } else if (op === 'firehose:CreateDeliveryStream' || op === 'firehose:UpdateDestination') {
        const role = findRoles(p).find(young);
        if (role) return awsError(res, id, 400, 'InvalidArgumentException', `Firehose is unable to assume role ${role}. Please check the role provided.`), 'iam-propagation';
      } else if (op === 'iot:CreateTopicRule' || op === 'iot:ReplaceTopicRule') {
        const role = findRoles(p).find(young);
        if (role) return awsError(res, id, 400, 'InvalidRequestException', `AWS IoT (iot.amazonaws.com) is unable to assume role (sts:AssumeRole) on resource: ${role}.  If the role was just created or updated, please try again in a few seconds.`), 'iam-propagation';
      } else if (op === 'scheduler:CreateSchedule' || op === 'scheduler:UpdateSchedule') {
        const role = findRoles(p).find(young);
        if (role) return awsError(res, id, 400, 'ValidationException', 'The execution role you provide must allow AWS EventBridge Scheduler to assume the role.'), 'iam-propagation';
      }
    }
    const c = opts.creating ?? {};
    const notActive = (what: string) => {
      const e = notActiveError(id);
      if (!e) return undefined;
      awsError(res, id, e.status, e.code, e.code === 'ResourceNotFoundException' ? `${what} not found.` : `${what} is not ACTIVE: it is being created.`);
      return 'creating';
    };
    if (id.service === 'kinesis' && !/^(DescribeStream|DescribeStreamSummary|ListStreams|ListTagsForStream|ListTagsForResource|CreateStream)$/.test(id.operation)) {
      const name = streamName(p, 'StreamName');
      if (within(streams, name, c.kinesisMs)) return notActive(`Stream ${name}`);
    }
    if (id.service === 'firehose' && !/^(DescribeDeliveryStream|ListDeliveryStreams|ListTagsForDeliveryStream|CreateDeliveryStream)$/.test(id.operation)) {
      const name = p.DeliveryStreamName as string | undefined;
      if (within(deliveryStreams, name, c.firehoseMs)) return notActive(`Firehose ${name}`);
    }
    // AddPermission/RemovePermission too: AWS answers ResourceConflictException ("another operation is in progress").
    if (id.service === 'lambda' && /^(Invoke|InvokeAsync|UpdateFunctionCode|UpdateFunctionConfiguration|PublishVersion|AddPermission|RemovePermission)$/.test(id.operation)) {
      const name = functionName(String(p.FunctionName ?? ''));
      if (within(functions, name, c.lambdaMs)) return awsError(res, id, 409, 'ResourceConflictException', 'The operation cannot be performed at this time. The function is currently in the following state: Pending', { Type: 'User' }), 'creating';
      if (id.operation !== 'Invoke' && within(functionUpdates, name, c.lambdaUpdateMs)) return awsError(res, id, 409, 'ResourceConflictException', `The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:${id.region}:123456789012:function:${name}`, { Type: 'User' }), 'creating';
    }
    return undefined;
  }

  /** Track what AWS would still be working on, from successful calls (and their answers). */
  function track(id: Identified, p: Record<string, unknown>, answer: Buffer): void {
    const now = Date.now();
    switch (`${id.service}:${id.operation}`) {
      case 'lambda:CreateEventSourceMapping': {
        const uuid = (JSON.parse(answer.toString('utf8')) as { UUID?: string }).UUID;
        if (uuid) mappings.set(uuid, { functionName: functionName(String(p.FunctionName ?? '')), source: String(p.EventSourceArn ?? '') });
        break;
      }
      case 'iam:CreateRole':
      case 'iam:PutRolePolicy':
      case 'iam:AttachRolePolicy':
      case 'iam:UpdateAssumeRolePolicy':
        roles.set(String(p.RoleName), now);
        break;
      case 'iam:DeleteRole':
        roles.delete(String(p.RoleName));
        break;
      case 'lambda:CreateFunction':
        functions.set(String(p.FunctionName), now);
        if (typeof p.Role === 'string') functionRoles.set(String(p.FunctionName), p.Role);
        break;
      case 'lambda:UpdateFunctionConfiguration':
      case 'lambda:UpdateFunctionCode':
        if (typeof p.Role === 'string') functionRoles.set(functionName(String(p.FunctionName)), p.Role);
        functionUpdates.set(functionName(String(p.FunctionName)), now);
        break;
      case 'lambda:DeleteFunction':
        functions.delete(functionName(String(p.FunctionName)));
        break;
      case 'kinesis:CreateStream':
        streams.set(String(p.StreamName), now);
        break;
      case 'kinesis:DeleteStream':
        streams.delete(streamName(p, 'StreamName') ?? '');
        break;
      case 'firehose:CreateDeliveryStream':
        deliveryStreams.set(String(p.DeliveryStreamName), now);
        break;
      case 'firehose:DeleteDeliveryStream':
        deliveryStreams.delete(String(p.DeliveryStreamName));
        break;
    }
  }

  /** Describe* answers show the transitional state; undefined when the body stays as moto wrote it. */
  function rewrite(id: Identified, p: Record<string, unknown>, body: Buffer): Buffer | undefined {
    const c = opts.creating ?? {};
    const op = `${id.service}:${id.operation}`;
    const edit = (f: (j: Record<string, any>) => void) => {
      const j = JSON.parse(body.toString('utf8'));
      f(j);
      return Buffer.from(JSON.stringify(j));
    };
    if ((op === 'kinesis:DescribeStream' || op === 'kinesis:DescribeStreamSummary') && within(streams, streamName(p, 'StreamName'), c.kinesisMs))
      return edit((j) => ((j.StreamDescription ?? j.StreamDescriptionSummary ?? {}).StreamStatus = 'CREATING'));
    if (op === 'kinesis:ListStreams' && c.kinesisMs)
      return edit((j) => (j.StreamSummaries ?? []).forEach((s: Record<string, string>) => within(streams, s.StreamName, c.kinesisMs) && (s.StreamStatus = 'CREATING')));
    if (op === 'firehose:DescribeDeliveryStream' && within(deliveryStreams, p.DeliveryStreamName as string, c.firehoseMs)) return edit((j) => (j.DeliveryStreamDescription.DeliveryStreamStatus = 'CREATING'));
    if (op === 'lambda:GetFunction' || op === 'lambda:GetFunctionConfiguration') {
      const name = functionName(String(p.FunctionName ?? ''));
      const cfg = (j: Record<string, any>) => (op === 'lambda:GetFunction' ? j.Configuration : j);
      if (within(functions, name, c.lambdaMs)) return edit((j) => Object.assign(cfg(j), { State: 'Pending', StateReason: 'The function is being created.', StateReasonCode: 'Creating' }));
      if (within(functionUpdates, name, c.lambdaUpdateMs)) return edit((j) => Object.assign(cfg(j), { LastUpdateStatus: 'InProgress', LastUpdateStatusReason: 'The function is being updated.', LastUpdateStatusReasonCode: 'Updating' }));
    }
    return undefined;
  }

  function forward(req: IncomingMessage, body: Buffer, res: ServerResponse, after?: (status: number, body: Buffer) => Buffer | undefined): Promise<number> {
    return new Promise((resolve) => {
      const headers = { ...req.headers, host: target.host };
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (upRes) => {
        if (!after) {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
          upRes.on('end', () => resolve(upRes.statusCode ?? 502));
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on('data', (d: Buffer) => chunks.push(d));
        upRes.on('end', () => {
          let out: Buffer = Buffer.concat(chunks);
          const status = upRes.statusCode ?? 502;
          let changed: Buffer | undefined;
          try {
            changed = after(status, out);
          } catch {
            /* not the JSON we expected: leave it */
          }
          const h = { ...upRes.headers };
          if (changed) {
            out = changed;
            delete h['transfer-encoding'];
            h['content-length'] = String(out.length);
          }
          res.writeHead(status, h).end(out);
          resolve(status);
        });
      });
      up.on('socket', (s) => s.setNoDelay(true));
      up.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`realism proxy: ${e.message}`);
        resolve(502);
      });
      up.end(body);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const t0 = performance.now();
    const raw: RawRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body };
    let checked: ReturnType<typeof conformance>;
    try {
      checked = conformance(raw);
    } catch (e) {
      checked = { violations: [{ service: '?', operation: '?', member: '', value: `${raw.method} ${raw.url}`, rule: 'checker-error', detail: (e as Error).stack ?? String(e) }] };
    }
    const { id, params = {} } = checked;
    const checkMs = performance.now() - t0;
    if (opts.conformance) seen.push(...checked.violations);
    if (!id) {
      await forward(req, body, res); // moto's own API, unsigned calls, services without a model
      return;
    }
    const key = `${id.service}:${id.operation}`;
    await sleep(lookup(opts.latency, id) ?? opts.latencyMs ?? 0);
    if (lookup(Object.fromEntries((opts.hang ?? []).map((k) => [k, true])), id)) {
      hanging.add(res);
      log.push({ key, status: 0, injected: 'hang' });
      return;
    }
    await sleep(lookup(opts.slow, id) ?? 0);
    const injected = inject(id, params, res);
    if (injected) {
      log.push({ key, status: res.statusCode, injected });
      return;
    }
    const status = await forward(req, body, res, (s, b) => {
      if (s >= 200 && s < 300) {
        try {
          track(id, params, b);
        } catch {
          /* an answer we could not read: nothing tracked */
        }
        return rewrite(id, params, b);
      }
      return undefined;
    });
    log.push({ key, status, ms: performance.now() - t0, checkMs, start: performance.timeOrigin + t0 });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`realism proxy error: ${(e as Error).message}`);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    set(more) {
      Object.assign(opts, more);
    },
    violations: () => [...seen],
    distinctViolations() {
      const byKey = new Map<string, Violation & { count: number }>();
      for (const v of seen) {
        const k = `${v.service}:${v.operation}|${v.member.replace(/\[\d+\]/g, '[]')}|${v.rule}`;
        const hit = byKey.get(k);
        if (hit) hit.count++;
        else byKey.set(k, { ...v, count: 1 });
      }
      return [...byKey.values()];
    },
    clearViolations() {
      seen = [];
    },
    calls: () => [...log],
    forget() {
      for (const m of [roles, functionRoles, streams, deliveryStreams, functions, functionUpdates, mappings, buckets]) m.clear();
    },
    async close() {
      for (const r of hanging) r.destroy();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** An endpoint that accepts connections and never answers (a black-holing proxy, a misrouted VPC endpoint). */
export async function startBlackhole(): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createNetServer((s) => {
    count++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.resume(); // read and drop whatever is sent
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A readable list of distinct violations (for a failing assertion or the opt-in hook's summary). */
export function formatViolations(list: (Violation & { count?: number })[]): string {
  return list.map((v) => `${v.service}:${v.operation} ${v.member || '(input)'} = ${typeof v.value === 'string' ? v.value : JSON.stringify(v.value)?.slice(0, 120)}: ${v.rule}: ${v.detail}${v.count && v.count > 1 ? ` (x${v.count})` : ''}`).join('\n');
}
