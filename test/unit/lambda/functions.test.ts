import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore, type Db } from '../../../src/targets/local/store.js';
import { LocalFunctions, desiredFunctionResources, actualFunctionResources, resolveDeployment, DeploymentError, type FunctionDefinition } from '../../../src/targets/local/functions.js';
import { DestinationNotFoundError } from '../../../src/targets/local/sinks.js';
import { planResources } from '../../../src/iot/plan/index.js';

const fixtures = resolve(import.meta.dirname, '../../fixtures/lambda');
const dirs: string[] = [];
const open: LocalFunctions[] = [];

function fresh(opts: ConstructorParameters<typeof LocalFunctions>[1] = {}): { db: Db; fns: LocalFunctions; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-fn-'));
  dirs.push(dir);
  const db = openStore(dir);
  const fns = new LocalFunctions(db, { region: 'eu-west-1', ...opts });
  open.push(fns);
  return { db, fns, dir };
}

function def(name: string, fixture: string, over: Partial<FunctionDefinition> = {}): FunctionDefinition {
  const artifactPath = join(fixtures, fixture);
  return {
    name,
    template: fixture.replace(/\.cjs$/, ''),
    artifactPath,
    sha256: createHash('sha256').update(readFileSync(artifactPath)).digest('hex'),
    handler: 'handler',
    timeoutSeconds: 5,
    memoryMb: 128,
    environment: {},
    ...over,
  };
}

test.after(async () => {
  await Promise.all(open.map((f) => f.stop()));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

test('invoke runs the handler in a worker with the function environment and a Lambda context; logs are captured', async () => {
  const { fns } = fresh();
  fns.register(def('echo', 'echo.cjs', { environment: { GREETING: 'hi' }, memoryMb: 256 }));
  const r = await fns.invoke('echo', { n: 7 });
  assert.is(r.functionError, undefined);
  const p = r.payload as Record<string, unknown>;
  assert.equal(p.event, { n: 7 });
  assert.is(p.greeting, 'hi');
  assert.is(p.functionNameEnv, 'echo');
  assert.is(p.awsRequestId, r.requestId);
  assert.is(p.functionName, 'echo');
  assert.is(p.invokedFunctionArn, 'arn:aws:lambda:eu-west-1:000000000000:function:echo');
  assert.is(p.memoryLimitInMB, '256');
  assert.ok((p.remaining as number) > 4000 && (p.remaining as number) <= 5000, String(p.remaining));
  assert.ok(r.initDurationMs !== undefined, 'a cold start reports its init duration');

  const levels = fns.readLogs('echo').map((l) => [l.level, l.message]);
  assert.equal(levels.slice(0, 5), [
    ['START', `START RequestId: ${r.requestId} Version: $LATEST`],
    ['INFO', 'hello 7'],
    ['ERROR', 'to stderr'],
    ['WARN', '{ warned: true }'],
    ['INFO', 'raw stdout line'],
  ]);
  assert.equal(levels[5], ['END', `END RequestId: ${r.requestId}`]);
  assert.match(levels[6]![1], new RegExp(`^REPORT RequestId: ${r.requestId}\tDuration: \\d+\\.\\d\\d ms\tBilled Duration: \\d+ ms\tMemory Size: 256 MB\tMax Memory Used: \\d+ MB\tInit Duration: `));
  assert.match(r.logTail[1]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\t${r.requestId}\tINFO\thello 7$`));
});

test('warm invocations reuse the worker (module state survives, no init duration); a redeploy starts cold', async () => {
  const { fns } = fresh();
  fns.register(def('echo', 'echo.cjs'));
  const first = await fns.invoke('echo', {});
  const second = await fns.invoke('echo', {});
  assert.is((first.payload as { invocations: number }).invocations, 1);
  assert.is((second.payload as { invocations: number }).invocations, 2);
  assert.is(second.initDurationMs, undefined);
  assert.is(fns.register(def('echo', 'echo.cjs')), 'unchanged');
  assert.is(fns.register(def('echo', 'echo.cjs', { environment: { GREETING: 'new' } })), 'updated');
  const third = await fns.invoke('echo', {});
  assert.is((third.payload as { invocations: number; greeting: string }).invocations, 1);
  assert.is((third.payload as { greeting: string }).greeting, 'new');
  assert.is(fns.get('echo')!.revision, 2);
});

test('a throwing handler is a function error with the Lambda error payload; the next invocation works', async () => {
  const { fns } = fresh();
  fns.register(def('bad', 'throws.cjs'));
  const r = await fns.invoke('bad', { n: 1 });
  assert.is(r.functionError, 'Unhandled');
  const p = r.payload as { errorType: string; errorMessage: string; trace: string[] };
  assert.is(p.errorType, 'TypeError');
  assert.is(p.errorMessage, 'bad input: 1');
  assert.match(p.trace[0]!, /^TypeError: bad input: 1/);
  assert.ok(r.logTail.some((l) => l.includes('\tERROR\tInvoke Error \t{"errorType":"TypeError","errorMessage":"bad input: 1"')));
  const ok = await fns.invoke('bad', { fail: false });
  assert.is(ok.functionError, undefined);
  assert.is(ok.payload, 'fine');
  assert.is(ok.initDurationMs, undefined, 'a handled error keeps the environment warm');
});

test('a handler that runs past its timeout is stopped, reported as Task timed out, and the next call starts cold', async () => {
  const { fns } = fresh();
  fns.register(def('slow', 'sleeps.cjs', { timeoutSeconds: 1 }));
  const started = Date.now();
  const r = await fns.invoke('slow', { ms: 10_000 });
  const took = Date.now() - started;
  assert.ok(took >= 1000 && took < 3000, `took ${took} ms`);
  assert.is(r.functionError, 'Unhandled');
  assert.is((r.payload as { errorType: string }).errorType, 'Sandbox.Timedout');
  assert.match((r.payload as { errorMessage: string }).errorMessage, /Task timed out after 1\.00 seconds$/);
  assert.ok(r.logTail.some((l) => / Task timed out after 1\.00 seconds$/.test(l)));
  assert.match(r.logTail[r.logTail.length - 1]!, /\tStatus: timeout$/);
  const next = await fns.invoke('slow', { ms: 1 });
  assert.is(next.payload, 'woke');
  assert.ok(next.initDurationMs !== undefined);
});

test('process.exit and an uncaught exception in a timer kill the environment, not the caller', async () => {
  const { fns } = fresh();
  fns.register(def('crash', 'exits.cjs'));
  const exit = await fns.invoke('crash', { how: 'exit' });
  assert.is(exit.functionError, 'Unhandled');
  assert.equal((exit.payload as { errorType: string; errorMessage: string }).errorType, 'Runtime.ExitError');
  assert.match((exit.payload as { errorMessage: string }).errorMessage, /exit status 3/);
  const uncaught = await fns.invoke('crash', { how: 'uncaught' });
  assert.is(uncaught.functionError, 'Unhandled');
  assert.is((uncaught.payload as { errorType: string }).errorType, 'RangeError');
  assert.is((uncaught.payload as { errorMessage: string }).errorMessage, 'thrown from a timer');
});

test('callback-style handlers, a missing handler export, and an unknown function', async () => {
  const { fns } = fresh();
  fns.register(def('cb', 'callback.cjs'));
  assert.equal((await fns.invoke('cb', { n: 21 })).payload, { doubled: 42 });
  const failed = await fns.invoke('cb', { fail: true });
  assert.is((failed.payload as { errorMessage: string }).errorMessage, 'callback error');
  fns.register(def('nohandler', 'no-handler.cjs'));
  const r = await fns.invoke('nohandler', {});
  assert.is(r.functionError, 'Unhandled');
  assert.is((r.payload as { errorType: string }).errorType, 'Runtime.HandlerNotFound');
  let caught: unknown;
  await fns.invoke('ghost', {}).catch((e) => (caught = e));
  assert.ok(caught instanceof DestinationNotFoundError);
});

test('invocations of one function run concurrently in separate environments', async () => {
  const { fns } = fresh();
  fns.register(def('slow', 'sleeps.cjs'));
  const started = Date.now();
  const results = await Promise.all([1, 2, 3].map(() => fns.invoke('slow', { ms: 400 })));
  assert.ok(Date.now() - started < 1100, `3 x 400 ms took ${Date.now() - started} ms`);
  assert.equal(results.map((r) => r.payload), ['woke', 'woke', 'woke']);
});

test('invokeAsync queues durably; start() runs it; a failing event is retried twice, then recorded as a failure', async () => {
  const { fns, db } = fresh({ asyncRetryDelaysMs: [50, 50] });
  fns.register(def('bad', 'throws.cjs'));
  fns.register(def('echo', 'echo.cjs'));
  await fns.invokeAsync('echo', { n: 1 });
  await fns.invokeAsync('bad', { n: 2 });
  let caught: unknown;
  await fns.invokeAsync('ghost', {}).catch((e) => (caught = e));
  assert.ok(caught instanceof DestinationNotFoundError);
  const queued = () => (db.prepare('SELECT COUNT(*) AS n FROM lambda_async_events').get() as { n: number }).n;
  assert.is(queued(), 2, 'nothing runs before start()');
  fns.start();
  const deadline = Date.now() + 10_000;
  while ((queued() > 0 || fns.listFailures('bad').length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.is(queued(), 0);
  assert.is(fns.readLogs('echo').filter((l) => l.level === 'START').length, 1);
  assert.is(fns.readLogs('bad').filter((l) => l.level === 'START').length, 3);
  const [failure] = fns.listFailures('bad');
  const rec = failure!.record as { requestContext: Record<string, unknown>; requestPayload: unknown; responsePayload: { errorMessage: string } };
  assert.is(rec.requestContext.condition, 'RetriesExhausted');
  assert.is(rec.requestContext.approximateInvokeCount, 3);
  assert.equal(rec.requestPayload, { n: 2 });
  assert.is(rec.responsePayload.errorMessage, 'bad input: 2');
});

test('plan resources for functions: spec against deployed', () => {
  const { fns } = fresh();
  fns.register(def('ingest', 'echo.cjs', { template: 'ingest-rds', timeoutSeconds: 30, memoryMb: 256 }));
  const desired = desiredFunctionResources({
    functions: [{ name: 'ingest', template: 'ingest-rds', timeoutSeconds: 60, memoryMb: 256, environment: {} }],
  });
  const plan = planResources(desired, actualFunctionResources(fns.list()));
  assert.equal(plan.map((p) => [p.action, p.name, p.changes.map((c) => `${c.path}:${String(c.before)}->${String(c.after)}`)]), [['replace', 'ingest', ['timeoutSeconds:30->60']]]);
});

test('registry validation: bad names, limits and handler names are refused', () => {
  const { fns } = fresh();
  assert.throws(() => fns.register(def('bad name', 'echo.cjs')), /not a valid function name/);
  assert.throws(() => fns.register(def('f', 'echo.cjs', { timeoutSeconds: 901 })), /timeoutSeconds must be 1 to 900/);
  assert.throws(() => fns.register(def('f', 'echo.cjs', { memoryMb: 64 })), /memoryMb must be 128 to 10240/);
  assert.throws(() => fns.register(def('f', 'echo.cjs', { handler: 'a.b' })), /not an export name/);
  const dir = dirs[dirs.length - 1]!;
  writeFileSync(join(dir, 'gone.cjs'), 'exports.handler = async () => 1;');
  fns.register({ ...def('gone', 'echo.cjs'), artifactPath: join(dir, 'gone.cjs') });
  rmSync(join(dir, 'gone.cjs'));
  return fns.invoke('gone', {}).then(
    () => assert.unreachable('a missing artifact must be an error'),
    (e: Error) => assert.match(e.message, /artifact .* is missing; deploy it again/),
  );
});

test('resolveDeployment: the spec entry over the template defaults; mismatches are refused', () => {
  const template = { name: 'ingest-rds', handler: 'index.handler', timeoutSeconds: 60, memoryMb: 256, environment: { DATABASE_URL: '', AUTO_MIGRATE: 'true' } };
  const eventSource = { stream: 't', batchSize: 10, maximumBatchingWindowSeconds: 0, startingPosition: 'LATEST' as const, maximumRetryAttempts: -1, maximumRecordAgeInSeconds: -1, bisectBatchOnFunctionError: false, reportBatchItemFailures: true };
  const spec = {
    streams: [{ name: 't', shards: 1, retentionHours: 24 }],
    functions: [{ name: 'ingest', template: 'ingest-rds', timeoutSeconds: 30, memoryMb: 512, environment: { AUTO_MIGRATE: 'false' }, eventSource }],
  };
  const d = resolveDeployment(spec, template);
  assert.equal([d.name, d.handler, d.timeoutSeconds, d.memoryMb, d.environment, d.eventSource], ['ingest', 'handler', 30, 512, { DATABASE_URL: '', AUTO_MIGRATE: 'false' }, eventSource]);
  const undeclared = resolveDeployment(spec, template, 'scratch');
  assert.equal([undeclared.name, undeclared.timeoutSeconds, undeclared.eventSource], ['scratch', 60, undefined]);
  assert.throws(() => resolveDeployment(spec, { ...template, name: 'other' }, 'ingest'), (e: unknown) => e instanceof DeploymentError && /with template "ingest-rds", not "other"/.test((e as Error).message));
  const twice = { ...spec, functions: [...spec.functions, { ...spec.functions[0]!, name: 'ingest2' }] };
  assert.throws(() => resolveDeployment(twice, template), /2 functions with template "ingest-rds"/);
  const noStream = { ...spec, streams: [] };
  assert.throws(() => resolveDeployment(noStream, template), /reads stream "t", which iotctl.yaml does not declare/);
});

test('an empty variable in the function environment leaves the platform value (templates declare DATABASE_URL: "")', async () => {
  const { fns } = fresh({ baseEnvironment: () => ({ GREETING: 'from the platform' }) });
  fns.register(def('echo', 'echo.cjs', { environment: { GREETING: '' } }));
  assert.is(((await fns.invoke('echo', {})).payload as { greeting: string }).greeting, 'from the platform');
});

test.run();
