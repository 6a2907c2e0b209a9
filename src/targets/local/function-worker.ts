/**
 * The code of one Lambda execution environment: a worker thread that loads the bundled CommonJS artifact once
 * (the cold start) and then runs one invocation at a time (warm starts), like the Node.js Lambda runtime.
 *
 * It is a plain JavaScript string run with `new Worker(source, { eval: true })` so it works the same from the
 * compiled dist/ and from TypeScript sources under tsx (a transpiled function body could reference helpers,
 * such as esbuild's __name, that do not exist inside the worker).
 *
 * Messages, parent -> worker: { type: 'invoke', requestId, event, deadline, context }.
 * Worker -> parent: { type: 'ready', initMs } | { type: 'init-error', error } | { type: 'log', requestId, ts, level, message }
 *                 | { type: 'result', requestId, ok, payload?, error?, maxMemoryMb }.
 */
export const FUNCTION_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const util = require('node:util');
const v8 = require('node:v8');

let current = null;
let maxHeap = 0;
const noteHeap = () => { const used = v8.getHeapStatistics().used_heap_size; if (used > maxHeap) maxHeap = used; };

const emit = (level, text) => {
  parentPort.postMessage({ type: 'log', requestId: current, ts: Date.now(), level, message: text });
};
const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' };
for (const [method, level] of Object.entries(levels)) {
  console[method] = (...args) => emit(level, util.format(...args));
}
for (const [name, level] of [['stdout', 'INFO'], ['stderr', 'ERROR']]) {
  process[name].write = (chunk, encoding, cb) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.trim()) emit(level, text.replace(/\n$/, ''));
    if (typeof encoding === 'function') encoding(); else if (typeof cb === 'function') cb();
    return true;
  };
}

const toError = (err) => {
  if (err instanceof Error) return { errorType: err.name || 'Error', errorMessage: err.message, trace: String(err.stack || '').split('\n') };
  return { errorType: 'Error', errorMessage: typeof err === 'string' ? err : util.inspect(err), trace: [] };
};

let handler;
const started = process.hrtime.bigint();
try {
  const mod = require(workerData.artifactPath);
  handler = mod[workerData.handler];
  if (typeof handler !== 'function' && mod.default && typeof mod.default[workerData.handler] === 'function') handler = mod.default[workerData.handler];
  if (typeof handler !== 'function') {
    const e = new Error(workerData.artifactPath + '.' + workerData.handler + ' is undefined or not exported');
    e.name = 'Runtime.HandlerNotFound';
    throw e;
  }
  parentPort.postMessage({ type: 'ready', initMs: Number(process.hrtime.bigint() - started) / 1e6 });
} catch (err) {
  const e = toError(err);
  if (!(err instanceof Error && err.name.startsWith('Runtime.'))) e.errorType = 'Runtime.ImportModuleError';
  parentPort.postMessage({ type: 'init-error', error: e });
}

parentPort.on('message', async (msg) => {
  if (msg.type !== 'invoke') return;
  current = msg.requestId;
  maxHeap = 0;
  noteHeap();
  const context = {
    ...msg.context,
    awsRequestId: msg.requestId,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, msg.deadline - Date.now()),
    done: undefined, succeed: undefined, fail: undefined,
  };
  let settled = false;
  const finish = (ok, value) => {
    if (settled) return;
    settled = true;
    noteHeap();
    const reply = { type: 'result', requestId: msg.requestId, ok, maxMemoryMb: Math.ceil(maxHeap / 1048576) };
    if (ok) {
      try { reply.payload = value === undefined ? null : JSON.parse(JSON.stringify(value)); }
      catch (err) { reply.ok = false; reply.error = { errorType: 'Runtime.ResponseSerializationError', errorMessage: String(err && err.message || err), trace: [] }; }
    } else reply.error = toError(value);
    current = null;
    parentPort.postMessage(reply);
  };
  context.done = (err, value) => (err ? finish(false, err) : finish(true, value));
  context.succeed = (value) => finish(true, value);
  context.fail = (err) => finish(false, err);
  try {
    const callback = (err, value) => (err ? finish(false, err) : finish(true, value));
    const out = handler.length >= 3 ? handler(msg.event, context, callback) : handler(msg.event, context);
    if (out && typeof out.then === 'function') out.then((v) => finish(true, v), (e) => finish(false, e));
    else if (handler.length < 3) finish(true, out);
  } catch (err) {
    finish(false, err);
  }
});
`;
