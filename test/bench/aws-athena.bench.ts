// `athena run --format csv --out` on the aws target, 1,000,000 result rows paged 1,000 at a time:
// peak RSS of the consumer process (AwsAthena paging GetQueryResults lazily + the streaming CSV writer),
// against a baseline child that only loads the same modules and builds the Athena client, in the same run.
// The results come from a fake Athena endpoint (JSON protocol over HTTP, in this process), so the real
// SDK client serializes, sends and parses every page. Target: peak RSS under 200 MB.
// Run: npm run build && node --import tsx test/bench/aws-athena.bench.ts
//      (BENCH_ROWS=200000 for a quicker run; BENCH_COMPARE=1 also runs the buffer-everything variant)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const PAGE = 1000;
const LIMIT_MB = 200;

if (!existsSync('dist/targets/aws/athena.js')) {
  console.error('dist/ is missing: run `npm run build` first (npm run bench does).');
  process.exit(1);
}

// ---------------------------------------------------------------- fake Athena (awsJson1_1)
const columnInfo = [
  { Name: 'seq', Label: 'seq', Type: 'bigint' },
  { Name: 'device_id', Label: 'device_id', Type: 'varchar' },
  { Name: 'temperature', Label: 'temperature', Type: 'double' },
  { Name: 'at', Label: 'at', Type: 'timestamp' },
];
const header = { Data: columnInfo.map((c) => ({ VarCharValue: c.Name })) };
let resultPages = 0;
const maxResultsSeen = new Set<number>();

function page(offset: number, max: number) {
  // Position 0 is the header row; data row i is at position i + 1.
  const rows = [];
  const end = Math.min(offset + max, ROWS + 1);
  for (let pos = offset; pos < end; pos++) {
    if (pos === 0) {
      rows.push(header);
      continue;
    }
    const i = pos - 1;
    rows.push({ Data: [{ VarCharValue: String(i) }, { VarCharValue: `sensor-${String(i % 1000).padStart(4, '0')}` }, { VarCharValue: (15 + (i % 200) / 10).toFixed(1) }, { VarCharValue: new Date(Date.UTC(2030, 0, 1) + i * 1000).toISOString().replace('T', ' ').replace('Z', '') }] });
  }
  return { ResultSet: { Rows: rows, ResultSetMetadata: { ColumnInfo: columnInfo } }, UpdateCount: 0, ...(end < ROWS + 1 ? { NextToken: `page-${end}` } : {}) };
}

function handle(target: string, input: Record<string, unknown>): unknown {
  switch (target) {
    case 'StartQueryExecution':
      return { QueryExecutionId: 'bench-query' };
    case 'GetQueryExecution':
      return { QueryExecution: { QueryExecutionId: 'bench-query', StatementType: 'DML', Status: { State: 'SUCCEEDED' }, Statistics: { DataScannedInBytes: 52_428_800 } } };
    case 'GetQueryResults': {
      resultPages++;
      const max = Number(input.MaxResults ?? 1000);
      maxResultsSeen.add(max);
      const offset = input.NextToken ? Number(String(input.NextToken).slice('page-'.length)) : 0;
      return page(offset, Math.min(max, PAGE));
    }
    case 'StopQueryExecution':
      return {};
    default:
      throw new Error(`fake Athena: unexpected ${target}`);
  }
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const target = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonAthena\./, '');
    try {
      const body = JSON.stringify(handle(target, JSON.parse(Buffer.concat(chunks).toString() || '{}')));
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    } catch (error) {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: 'InvalidRequestException', message: (error as Error).message }));
    }
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

// ---------------------------------------------------------------- the consumer, in child processes
interface ChildResult {
  mode: string;
  rows: number;
  bytes: number;
  ms: number;
  maxRssKb: number;
}

function child(mode: 'baseline' | 'stream' | 'buffered', out: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' };
    const p = spawn(process.execPath, ['test/bench/support/athena-child.mjs', mode, endpoint, out], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(text) as ChildResult) : reject(new Error(`${mode} child exited with ${code}`))));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-aws-athena-'));
const mb = (kb: number) => kb / 1024;
try {
  const baseline = await child('baseline', join(dir, 'unused.csv'));
  const out = join(dir, 'result.csv');
  const stream = await child('stream', out);

  // The file must hold every row once, in order: the header plus ROWS lines, the last one being row ROWS-1.
  const size = statSync(out).size;
  const tail = readFileSync(out, 'utf8').slice(-200).trim().split('\n').at(-1)!;
  if (stream.rows !== ROWS || size !== stream.bytes || !tail.startsWith(`${ROWS - 1},`)) throw new Error(`bad output: ${stream.rows} rows, ${size} bytes, last line ${tail}`);
  const expectedPages = Math.ceil((ROWS + 1) / PAGE);
  if (resultPages !== expectedPages || [...maxResultsSeen].join() !== '1000') throw new Error(`expected ${expectedPages} pages of MaxResults 1000, saw ${resultPages} (${[...maxResultsSeen]})`);

  console.log(`${ROWS.toLocaleString('en-US')} rows in ${resultPages.toLocaleString('en-US')} GetQueryResults pages of ${PAGE}, ${columnInfo.length} columns; CSV ${(size / 1e6).toFixed(1)} MB`);
  console.log(`streamed in ${(stream.ms / 1000).toFixed(1)} s (${Math.round(ROWS / (stream.ms / 1000)).toLocaleString('en-US')} rows/s, fake endpoint on this machine)`);
  console.log('');
  console.log(`peak RSS, baseline (node + modules + Athena client)  ${mb(baseline.maxRssKb).toFixed(1).padStart(7)} MB`);
  console.log(`peak RSS, athena run --format csv --out (streaming)  ${mb(stream.maxRssKb).toFixed(1).padStart(7)} MB`);
  if (process.env.BENCH_COMPARE) {
    const buffered = await child('buffered', join(dir, 'buffered.csv'));
    console.log(`peak RSS, the same rows held in memory, then written ${mb(buffered.maxRssKb).toFixed(1).padStart(7)} MB   (for comparison)`);
  }
  console.log('');
  const ratio = stream.maxRssKb / baseline.maxRssKb;
  console.log(`ratio streaming / baseline: ${ratio.toFixed(2)}`);
  const pass = mb(stream.maxRssKb) < LIMIT_MB;
  console.log(`${pass ? 'PASS' : 'FAIL'}: peak RSS ${mb(stream.maxRssKb).toFixed(1)} MB vs target < ${LIMIT_MB} MB (${(mb(stream.maxRssKb) - mb(baseline.maxRssKb)).toFixed(1)} MB above the baseline)`);
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
