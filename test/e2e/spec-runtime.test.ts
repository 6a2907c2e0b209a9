import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli } from '../helpers/project.js';

// `spec validate` on a function's Lambda runtime, as a user runs it (the built CLI).
const spec = (runtime: string) => `project: fleet\ntarget: aws\nstreams: [{ name: telemetry }]\nfunctions:\n  - name: ingest\n    template: ingest-rds\n    runtime: ${runtime}\n    eventSource: { stream: telemetry, maximumBatchingWindowSeconds: 0.2 }\n`;

test('a deprecated runtime and a fractional batching window are refused at file:line:col; nodejs24.x passes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-runtime-'));
  try {
    writeFileSync(join(dir, 'iotctl.yaml'), spec('nodejs20.x'));
    const r = await cli(['spec', 'validate'], { cwd: dir });
    assert.is(r.code, 1);
    assert.match(r.stderr, /iotctl\.yaml:7:14 functions\[0\]\.runtime: function "ingest": nodejs20\.x is deprecated by Lambda since 2026-04-30 \(creating functions blocked from 2026-08-31, updating them from 2026-09-30\)/);
    assert.match(r.stderr, /iotctl\.yaml:8:\d+ functions\[0\]\.eventSource\.maximumBatchingWindowSeconds: 0\.2 is not a whole number of seconds/);
    writeFileSync(join(dir, 'iotctl.yaml'), spec('nodejs24.x').replace('0.2', '1'));
    const ok = await cli(['spec', 'validate', '--json'], { cwd: dir });
    assert.is(ok.code, 0, ok.stderr);
    assert.is(JSON.parse(ok.stdout).valid, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
