import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The lambda commands from the sources, as a user runs them, against the real ingest-rds template.
const runner = join(import.meta.dirname, '../stream/run-command.ts');
const dir = mkdtempSync(join(tmpdir(), 'iotctl-lambda-cmd-'));
const spec = join(dir, 'iotctl.yaml');
writeFileSync(
  spec,
  `project: demo
streams:
  - name: telemetry
    shards: 2
functions:
  - name: ingest
    template: ingest-rds
    timeoutSeconds: 20
    environment:
      LOG_LEVEL: debug
    eventSource:
      stream: telemetry
      batchSize: 250
      maximumRetryAttempts: 3
`,
);
test.after(() => rmSync(dir, { recursive: true, force: true }));

function iotctl(command: string, args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', runner, command, ...args, '--spec', spec], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, DATABASE_URL: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(stdin ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('lambda templates lists the bundled templates', async () => {
  const r = await iotctl('lambda/templates', ['--json']);
  assert.is(r.code, 0, r.stderr);
  const templates = JSON.parse(r.stdout) as Array<{ name: string; handler: string }>;
  assert.ok(templates.some((t) => t.name === 'ingest-rds' && t.handler === 'index.handler'));
});

test('lambda deploy bundles the template and registers the spec entry with its event source mapping', async () => {
  const r = await iotctl('lambda/deploy', ['ingest-rds', '--json']);
  assert.is(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as { name: string; result: string; artifactPath: string; sha256: string; timeoutSeconds: number; eventSource: Record<string, unknown> };
  assert.is(d.name, 'ingest');
  assert.is(d.result, 'created');
  assert.is(d.timeoutSeconds, 20);
  assert.ok(existsSync(d.artifactPath));
  assert.ok(d.artifactPath.endsWith(join('functions', 'ingest', d.sha256.slice(0, 16), 'index.js')));
  assert.equal(d.eventSource, {
    stream: 'telemetry',
    batchSize: 250,
    maximumBatchingWindowSeconds: 0,
    startingPosition: 'TRIM_HORIZON',
    maximumRetryAttempts: 3,
    maximumRecordAgeInSeconds: -1,
    bisectBatchOnFunctionError: false,
    reportBatchItemFailures: true,
  });
  const again = JSON.parse((await iotctl('lambda/deploy', ['ingest-rds', '--json'])).stdout) as { result: string };
  assert.is(again.result, 'unchanged');
  const list = JSON.parse((await iotctl('lambda/list', ['--json'])).stdout) as Array<{ name: string; environment: Record<string, string>; declared: boolean }>;
  assert.equal(list.map((f) => [f.name, f.declared, f.environment.LOG_LEVEL, 'AUTO_MIGRATE' in f.environment]), [['ingest', true, 'debug', false]]);
});

test('lambda deploy refuses an unknown template', async () => {
  const mismatch = await iotctl('lambda/deploy', ['no-such-template']);
  assert.is(mismatch.code, 1);
  assert.match(mismatch.stderr, /Error: Unknown function template "no-such-template"\.\nTry: use one of: .*ingest-rds/);
});

test('lambda invoke runs the function once: result on stdout, log tail on stderr; lambda logs shows the same lines', async () => {
  const event = {
    Records: [
      {
        kinesis: { kinesisSchemaVersion: '1.0', partitionKey: 'd1', sequenceNumber: '1', data: Buffer.from('{"device_id":"d1"}').toString('base64'), approximateArrivalTimestamp: 1 },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: 'shardId-000000000000:1',
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::000000000000:role/iotctl-lambda-ingest',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/telemetry',
      },
    ],
  };
  writeFileSync(join(dir, 'event.json'), JSON.stringify(event));
  const r = await iotctl('lambda/invoke', ['ingest', '--event', join(dir, 'event.json')]);
  // Without a database the template reports the record as failed (a handled outcome, not a crash).
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { batchItemFailures: [{ itemIdentifier: '1' }] });
  assert.match(r.stderr, /START RequestId: [0-9a-f-]{36} Version: \$LATEST/);
  assert.match(r.stderr, /DATABASE_URL is not set/);
  assert.match(r.stderr, /REPORT RequestId: .*\tInit Duration: /);
  const logs = await iotctl('lambda/logs', ['ingest', '--json']);
  const events = JSON.parse(logs.stdout) as Array<{ level: string }>;
  assert.equal([events[0]!.level, events[events.length - 2]!.level, events[events.length - 1]!.level], ['START', 'END', 'REPORT']);
  const stdin = await iotctl('lambda/invoke', ['ingest', '--event', '-', '--json'], 'not json');
  assert.is(stdin.code, 1);
  assert.match(stdin.stdout, /"code":"USAGE".*The event in stdin is not JSON/);
  const ghost = await iotctl('lambda/invoke', ['ghost', '--event', join(dir, 'event.json')]);
  assert.match(ghost.stderr, /Error: Function "ghost" is not deployed\.\nTry: Deployed: ingest\./);
});

test('lambda logs --since rejects a bad duration; lambda failures lists nothing yet', async () => {
  const bad = await iotctl('lambda/logs', ['ingest', '--since', 'soon']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /--since "soon" is not a duration or an ISO time/);
  const failures = await iotctl('lambda/failures', ['ingest', '--json']);
  assert.is(failures.code, 0, failures.stderr);
  assert.equal(JSON.parse(failures.stdout), []);
});

test.run();
