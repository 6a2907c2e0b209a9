import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleTemplate, getTemplate, listTemplates } from '../../../src/services/bundle.js';
import { migrate } from '../../../src/db/migrations.js';
import { count, freshDatabase, kinesisEvent, kinesisRecord, MACHINE_URL, withPg, type TestDatabase } from './helpers.js';

const outDir = mkdtempSync(join(tmpdir(), 'iotctl-bundle-'));
let db: TestDatabase;
test.before(async () => {
  db = await freshDatabase(MACHINE_URL);
  // The ingest function never migrates (it runs as the INSERT-only role): the owner did, as `db migrate` does.
  await withPg(db.url, (c) => migrate(c));
});
test.after(async () => {
  await db.drop();
  rmSync(outDir, { recursive: true, force: true });
});

/** Loads the artifact with require() in a fresh node process (as the Lambda runtime does) and invokes its handler. */
function invokeArtifact(artifact: string, event: unknown, env: Record<string, string>): Promise<{ response: unknown; stderr: string }> {
  const script = `
    const { handler } = require(process.argv[1]);
    let input = '';
    process.stdin.on('data', (d) => (input += d)).on('end', async () => {
      const response = await handler(JSON.parse(input));
      process.stdout.write(JSON.stringify(response));
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', script, artifact], { env: { PATH: process.env.PATH!, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.stdin.end(JSON.stringify(event));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve({ response: JSON.parse(out), stderr: err }) : reject(new Error(`artifact exited ${code}: ${err}`)))),
  );
}

test('the template is listed with its settings', () => {
  assert.ok(listTemplates().some((t) => t.name === 'ingest-rds'));
  const t = getTemplate('ingest-rds');
  assert.equal([t.runtime, t.handler, t.entry], ['nodejs22.x', 'index.handler', 'handler.ts']);
  assert.ok('DATABASE_URL' in t.environment);
  assert.equal(t.eventSource?.functionResponseTypes, ['ReportBatchItemFailures']);
  assert.throws(() => getTemplate('nope'), /Unknown function template "nope"/);
});

test('bundles to one CommonJS index.js with pg inside, deterministically', async () => {
  const a = await bundleTemplate('ingest-rds', join(outDir, 'a'));
  const b = await bundleTemplate('ingest-rds', join(outDir, 'b'));
  assert.is(a.artifactPath, join(outDir, 'a', 'index.js'));
  const bytes = readFileSync(a.artifactPath);
  assert.is(a.bytes, bytes.length);
  assert.is(a.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.is(b.sha256, a.sha256, 'same sources, same bytes');
  const text = bytes.toString('utf8');
  assert.ok(text.includes('module.exports'), 'CommonJS');
  assert.not.match(text, /require\("pg"\)/, 'pg is bundled in');
  assert.match(text, /require\("pg-native"\)/, 'pg-native stays external (pg loads it only on request)');
  // pg plus, for AWS, the Secrets Manager client and rds-signer (loaded only when their variables are set).
  assert.ok(a.bytes > 50_000 && a.bytes < 2_500_000, `size ${a.bytes}`);
});

test('the artifact, loaded with require() in another process, writes a Kinesis batch to PostgreSQL', async () => {
  const { artifactPath } = await bundleTemplate('ingest-rds', join(outDir, 'run'));
  const records = [
    kinesisRecord({ device_id: 'bundled', message_id: 'b-1', ts: Date.now() - 1000, temperature: 20 }),
    kinesisRecord({ device_id: 'bundled', message_id: 'b-2', ts: Date.now() }),
    kinesisRecord(null, { raw: Buffer.from('not json') }),
  ];
  const { response } = await invokeArtifact(artifactPath, kinesisEvent(records), { DATABASE_URL: db.url, LOG_LEVEL: 'silent' });
  assert.equal(response, { batchItemFailures: [] });
  assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages WHERE device_id = 'bundled'"), 2);
  assert.is(await count(db.url, 'SELECT count(*) AS n FROM iot_ingest_errors'), 1);
  // Pointed at nothing: every record comes back for retry.
  const refused = await invokeArtifact(artifactPath, kinesisEvent(records.slice(0, 2)), { DATABASE_URL: 'postgres://postgres:x@127.0.0.1:1/none', LOG_LEVEL: 'silent' });
  assert.equal(refused.response, { batchItemFailures: records.slice(0, 2).map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })) });
});

test.run();
