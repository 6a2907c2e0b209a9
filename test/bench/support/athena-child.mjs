// The consumer side of the aws-athena bench, in its own process so its peak RSS is its own.
// argv: <mode: baseline|stream|buffered> <endpoint> <out.csv>. Prints one JSON line with maxRSS.
// Runs the compiled code (npm run bench builds it first), as users run it.
import { writeFileSync } from 'node:fs';
import { AwsAthena } from '../../../dist/targets/aws/athena.js';
import { AwsClients } from '../../../dist/targets/aws/sdk.js';
import { writeRowsToFile } from '../../../dist/ui/stream-rows.js';
import { toCsv } from '../../../dist/ui/output.js';

const [mode, endpointUrl, out] = process.argv.slice(2);
const aws = new AwsClients({ endpointUrl, region: 'us-east-1' });
// The baseline pays for everything but the query: node, the modules, the SDK client.
await aws.get('athena');
const started = performance.now();
let rows = 0;
let bytes = 0;
if (mode !== 'baseline') {
  const athena = new AwsAthena(aws, { database: 'iotctl', workgroup: 'primary' });
  const query = await athena.run('SELECT seq, device_id, temperature, at FROM telemetry');
  const names = query.columns.map((c) => c.name);
  if (mode === 'stream') ({ rows, bytes } = await writeRowsToFile(out, 'csv', names, query.rows));
  else {
    // What --out did before: the whole result in memory, then one string.
    const all = [];
    for await (const r of query.rows) all.push(r);
    const text = toCsv(all, names.map((header, i) => ({ header, get: (r) => r[i] })));
    writeFileSync(out, text);
    rows = all.length;
    bytes = Buffer.byteLength(text);
  }
}
aws.destroy();
process.stdout.write(JSON.stringify({ mode, rows, bytes, ms: performance.now() - started, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
