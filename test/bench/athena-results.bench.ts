// `athena run --format csv --out` of 1,000,000 rows on the aws target, through the realism proxy at 40 ms per
// call (test/helpers/aws-realism.ts, conformance on): rows streamed from the query's result object in S3 (one
// GetObject) against paging GetQueryResults (1,001 calls), measured in the same run. Both write the same file.
// Behind the proxy, a fake Athena (awsJson1_1, paging with MaxResults as AWS does; moto ignores it) and a fake
// S3 GetObject serving the result CSV as Athena writes it. Targets: streaming >= 10x faster, peak RSS < 200 MB.
// Run: npm run build && node --import tsx test/bench/athena-results.bench.ts   (BENCH_ROWS=200000 for a quicker run)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRealism } from '../helpers/aws-realism.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 40);
const PAGE = 1000;

if (!existsSync('dist/targets/aws/athena.js')) {
  console.error('dist/ is missing: run `npm run build` first (npm run bench does).');
  process.exit(1);
}

const columnInfo = [
  { Name: 'seq', Label: 'seq', Type: 'bigint' },
  { Name: 'device_id', Label: 'device_id', Type: 'varchar' },
  { Name: 'temperature', Label: 'temperature', Type: 'double' },
  { Name: 'at', Label: 'at', Type: 'timestamp' },
];
const values = (i: number) => [String(i), `sensor-${String(i % 1000).padStart(4, '0')}`, (15 + (i % 200) / 10).toFixed(1), new Date(Date.UTC(2030, 0, 1) + i * 1000).toISOString().replace('T', ' ').replace('Z', '')];

function page(offset: number, max: number) {
  const rows = [];
  const end = Math.min(offset + max, ROWS + 1);
  for (let pos = offset; pos < end; pos++) rows.push({ Data: (pos === 0 ? columnInfo.map((c) => c.Name) : values(pos - 1)).map((v) => ({ VarCharValue: v })) });
  return { ResultSet: { Rows: rows, ResultSetMetadata: { ColumnInfo: columnInfo } }, UpdateCount: 0, ...(end < ROWS + 1 ? { NextToken: `page-${end}` } : {}) };
}

const counts: Record<string, number> = {};
function athena(target: string, input: Record<string, unknown>): unknown {
  counts[target] = (counts[target] ?? 0) + 1;
  switch (target) {
    case 'StartQueryExecution':
      return { QueryExecutionId: 'bench-query' };
    case 'GetQueryExecution':
      return { QueryExecution: { QueryExecutionId: 'bench-query', StatementType: 'DML', Status: { State: 'SUCCEEDED' }, Statistics: { DataScannedInBytes: 52_428_800 }, ResultConfiguration: { OutputLocation: 's3://bench-results/athena/bench-query.csv' } } };
    case 'GetQueryResults': {
      const offset = input.NextToken ? Number(String(input.NextToken).slice('page-'.length)) : 0;
      return page(offset, Math.min(Number(input.MaxResults ?? PAGE), PAGE));
    }
    default:
      throw new Error(`fake Athena: unexpected ${target}`);
  }
}

/** The result object, written in chunks as Athena's CSV: every value quoted. */
function serveObject(res: ServerResponse): void {
  counts.GetObject = (counts.GetObject ?? 0) + 1;
  res.writeHead(200, { 'content-type': 'text/csv' });
  let i = -1;
  const more = () => {
    let chunk = '';
    while (i < ROWS && chunk.length < 256 * 1024) {
      chunk += (i < 0 ? columnInfo.map((c) => c.Name) : values(i)).map((v) => `"${v}"`).join(',') + '\n';
      i++;
    }
    if (i >= ROWS) res.end(chunk);
    else if (res.write(chunk)) setImmediate(more);
    else res.once('drain', more);
  };
  more();
}

const backend = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url?.startsWith('/bench-results/athena/bench-query.csv')) return serveObject(res);
    const target = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonAthena\./, '');
    try {
      const body = JSON.stringify(athena(target, JSON.parse(Buffer.concat(chunks).toString() || '{}')));
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(body) }).end(body);
    } catch (error) {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ __type: 'InvalidRequestException', message: (error as Error).message }));
    }
  });
});
await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
const realism = await startRealism({ target: `http://127.0.0.1:${(backend.address() as { port: number }).port}`, latencyMs: LATENCY_MS });

interface ChildResult {
  mode: string;
  rows: number;
  bytes: number;
  ms: number;
  maxRssKb: number;
  resultObject: string | null;
}
function child(mode: 'stream' | 'paging', out: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' };
    const p = spawn(process.execPath, ['test/bench/support/athena-results-child.mjs', mode, realism.url, out], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as ChildResult) : reject(new Error(`${mode} child exited with ${code}`))));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-athena-results-'));
const mb = (kb: number) => kb / 1024;
try {
  const before = { ...counts };
  const stream = await child('stream', join(dir, 'stream.csv'));
  const streamCalls = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v - (before[k] ?? 0)]));
  const mid = { ...counts };
  const paging = await child('paging', join(dir, 'paging.csv'));
  const pagingCalls = (counts.GetQueryResults ?? 0) - (mid.GetQueryResults ?? 0);

  const same = readFileSync(join(dir, 'stream.csv')).equals(readFileSync(join(dir, 'paging.csv')));
  if (stream.rows !== ROWS || paging.rows !== ROWS || !same || !stream.resultObject) throw new Error(`bad output: stream ${stream.rows} rows (${stream.resultObject}), paging ${paging.rows}, files equal: ${same}`);
  const violations = realism.distinctViolations();
  if (violations.length) throw new Error(`requests break the AWS models: ${JSON.stringify(violations.slice(0, 3))}`);

  const ratio = paging.ms / stream.ms;
  console.log(`${ROWS.toLocaleString('en-US')} rows, ${columnInfo.length} columns, CSV ${(stream.bytes / 1e6).toFixed(1)} MB; ${LATENCY_MS} ms per call through the realism proxy (conformance on)`);
  console.log(`paging GetQueryResults (baseline): ${(paging.ms / 1000).toFixed(1)} s, ${pagingCalls} GetQueryResults calls, peak RSS ${mb(paging.maxRssKb).toFixed(1)} MB`);
  console.log(`streaming the result object:       ${(stream.ms / 1000).toFixed(1)} s, ${streamCalls.GetObject ?? 0} GetObject + ${streamCalls.GetQueryResults ?? 0} GetQueryResults, peak RSS ${mb(stream.maxRssKb).toFixed(1)} MB`);
  console.log(`identical files: ${same}`);
  console.log('');
  console.log(`ratio paging / streaming: ${ratio.toFixed(1)}x (target >= 10x)`);
  const pass = ratio >= 10 && mb(stream.maxRssKb) < 200;
  console.log(`${pass ? 'PASS' : 'FAIL'}: ${ratio.toFixed(1)}x faster, peak RSS ${mb(stream.maxRssKb).toFixed(1)} MB (target < 200 MB)`);
} finally {
  await realism.close();
  backend.close();
  rmSync(dir, { recursive: true, force: true });
}
