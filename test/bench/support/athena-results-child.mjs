// The consumer side of athena-results.bench.ts, in its own process so its peak RSS is its own.
// argv: <mode: stream|paging> <endpoint> <out.csv>. `stream` is `athena run --format csv --out` as the command
// runs it (readAll: rows from the result object); `paging` is the same with GetQueryResults pages.
// Prints one JSON line. Runs the compiled code (npm run bench builds it first).
import { AwsAthena } from '../../../dist/targets/aws/athena.js';
import { AwsClients } from '../../../dist/targets/aws/sdk.js';
import { writeRowsToFile } from '../../../dist/ui/stream-rows.js';

const [mode, endpointUrl, out] = process.argv.slice(2);
const aws = new AwsClients({ endpointUrl, region: 'us-east-1' });
const started = performance.now();
const athena = new AwsAthena(aws, { database: 'iotctl', workgroup: 'primary', outputLocation: 's3://bench-results/athena/' }, { initialMs: 20, factor: 1, maxMs: 20 });
const query = await athena.run('SELECT seq, device_id, temperature, at FROM telemetry', { readAll: mode === 'stream', onNotice: (m) => process.stderr.write(m + '\n') });
const { rows, bytes } = await writeRowsToFile(out, 'csv', query.columns.map((c) => c.name), query.rows);
aws.destroy();
process.stdout.write(JSON.stringify({ mode, rows, bytes, ms: performance.now() - started, maxRssKb: process.resourceUsage().maxRSS, resultObject: query.stats().resultObject ?? null }) + '\n');
