import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { format } from 'node:util';

/**
 * Lambda Invoke where moto cannot run functions (it needs Docker): an HTTP front for moto_server that answers
 * `POST /2015-03-31/functions/<name>/invocations` itself and forwards every other request to moto unchanged.
 * An invocation runs the function's real template handler (templates/<iotctl:template tag>/handler.ts) in this
 * process with the function's environment as moto stores it (secrets are read from moto's Secrets Manager by
 * the handler itself), so the results come from the real code against the real PostgreSQL. Like Lambda it
 * refuses a response over 6 MB (Function.ResponseSizeTooLarge) and writes what the handler logs to the
 * function's CloudWatch Logs group in moto (text format: `<time>\t<request id>\tINFO\t<message>`).
 *
 * `network` is the database's network as the function sees it: variables added to each invocation's
 * environment (e.g. DATABASE_PORT: a database only the "VPC" reaches).
 *
 * It serves the SDK's HTTP, so a CLI process pointed at `url` is faked the same way (aws-sdk-client-mock reaches
 * only this process).
 */
export interface FakeInvoke {
  url: string;
  invocations: Array<{ fn: string; event: unknown; ms: number; bytes: number; error?: string }>;
  close(): Promise<void>;
}

const MAX_RESPONSE = 6 * 1024 * 1024;

export async function startFakeInvoke(motoUrl: string, opts: { network?: Record<string, string> } = {}): Promise<FakeInvoke> {
  const { LambdaClient, GetFunctionCommand } = await import('@aws-sdk/client-lambda');
  const { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } = await import('@aws-sdk/client-cloudwatch-logs');
  const cfg = { endpoint: motoUrl, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  const lambda = new LambdaClient(cfg);
  const logs = new CloudWatchLogsClient(cfg);
  const invocations: FakeInvoke['invocations'] = [];
  const target = new URL(motoUrl);

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 500, r.headers);
      r.pipe(res);
    });
    out.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    out.end(body);
  };

  async function invoke(name: string, body: Buffer, res: ServerResponse): Promise<void> {
    const fn = await lambda.send(new GetFunctionCommand({ FunctionName: decodeURIComponent(name) }));
    const physical = fn.Configuration!.FunctionName!;
    const template = fn.Tags?.['iotctl:template'];
    if (!template) throw new Error(`function ${physical} has no iotctl:template tag: the fake runs only iotctl's templates`);
    const mod = (await import(`../../templates/${template}/handler.ts`)) as { handler: (e: unknown) => Promise<unknown> };
    const env = { ...(fn.Configuration!.Environment?.Variables ?? {}), ...(opts.network ?? {}), AWS_LAMBDA_FUNCTION_NAME: physical };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    const requestId = randomUUID();
    const lines: string[] = [];
    const capture = (level: string) => (...args: unknown[]) => lines.push(`${new Date().toISOString()}\t${requestId}\t${level}\t${format(...args)}`);
    const original = { log: console.log, error: console.error };
    Object.assign(process.env, env);
    console.log = capture('INFO');
    console.error = capture('ERROR');
    const started = performance.now();
    let payload: string;
    let functionError: string | undefined;
    try {
      const event = body.length ? JSON.parse(body.toString('utf8')) : {};
      try {
        payload = JSON.stringify((await mod.handler(event)) ?? null);
        if (Buffer.byteLength(payload) > MAX_RESPONSE) {
          functionError = 'Unhandled';
          payload = JSON.stringify({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: `Response payload size (${Buffer.byteLength(payload)} bytes) exceeded maximum allowed payload size (6291556 bytes).` });
        }
      } catch (error) {
        const e = error as Error;
        functionError = 'Unhandled';
        payload = JSON.stringify({ errorType: e.name === 'UserError' || e.constructor?.name === 'UserError' ? 'UserError' : (e.name ?? 'Error'), errorMessage: e.message });
        lines.push(`${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error \t${JSON.stringify({ errorType: e.name, errorMessage: e.message })}`);
      }
      invocations.push({ fn: physical, event, ms: performance.now() - started, bytes: Buffer.byteLength(payload), ...(functionError ? { error: payload } : {}) });
    } finally {
      console.log = original.log;
      console.error = original.error;
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    await writeLogs(physical, requestId, lines);
    res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST', 'x-amzn-requestid': requestId, ...(functionError ? { 'x-amz-function-error': functionError } : {}) });
    res.end(payload);
  }

  async function writeLogs(fn: string, requestId: string, lines: string[]): Promise<void> {
    const logGroupName = `/aws/lambda/${fn}`;
    const logStreamName = `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${requestId.replace(/-/g, '')}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName })).catch(() => undefined);
    await logs.send(new CreateLogStreamCommand({ logGroupName, logStreamName }));
    const now = Date.now();
    const all = [`START RequestId: ${requestId} Version: $LATEST`, ...lines, `END RequestId: ${requestId}`];
    await logs.send(new PutLogEventsCommand({ logGroupName, logStreamName, logEvents: all.map((message) => ({ timestamp: now, message })) }));
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const m = req.method === 'POST' ? /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '') : null;
      if (!m) return forward(req, res, body);
      invoke(m[1]!, body, res).catch((e: Error) => {
        res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceException' });
        res.end(JSON.stringify({ message: `fake invoke: ${e.message}` }));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    invocations,
    async close() {
      lambda.destroy();
      logs.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
