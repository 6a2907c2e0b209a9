/**
 * Per-function Lambda runtimes: nodejs22.x by default, nodejs24.x allowed, a deprecated one refused with Lambda's
 * date at its file:line:col, one that deprecates within 90 days warned about, and the bundle built for it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRuntimes } from '../../../src/spec/checks.js';
import { parseSpec } from '../../../src/spec/loader.js';
import { DEFAULT_RUNTIME, esbuildTarget, NODE_RUNTIMES, runtimeProblem } from '../../../src/spec/runtimes.js';
import { bundleTemplate } from '../../../src/services/bundle.js';
import { specProblems } from '../../helpers/project.js';
import { serviceModel, botocoreDataDir } from '../../helpers/aws-models.js';

const spec = (runtime?: string) =>
  `project: fleet\ntarget: aws\nstreams: [{ name: telemetry }]\nfunctions:\n  - name: ingest\n    template: ingest-rds\n${runtime ? `    runtime: ${runtime}\n` : ''}    eventSource: { stream: telemetry }\n`;

test('the default is nodejs22.x; nodejs24.x is accepted', () => {
  assert.is(DEFAULT_RUNTIME, 'nodejs22.x');
  assert.is(parseSpec(spec(), 'iotctl.yaml').spec.functions[0]!.runtime, 'nodejs22.x');
  assert.is(parseSpec(spec('nodejs24.x'), 'iotctl.yaml').spec.functions[0]!.runtime, 'nodejs24.x');
});

test('a deprecated runtime is refused with its deprecation date, at its line and column', () => {
  const [p, ...rest] = specProblems(spec('nodejs20.x'));
  assert.is(rest.length, 0);
  assert.is(p!.path, 'functions[0].runtime');
  assert.equal([p!.line, p!.col], [7, 14]);
  assert.match(p!.message, /nodejs20\.x is deprecated by Lambda since 2026-04-30 \(creating functions blocked from 2026-08-31, updating them from 2026-09-30\)/);
  assert.match(String(p!.hint), /nodejs24\.x|nodejs22\.x/);
  const [unknown] = specProblems(spec('nodejs99.x'));
  assert.match(unknown!.message, /not a Lambda Node\.js runtime iotctl knows/);
  assert.match(specProblems(spec('python3.13'))[0]!.message, /a Lambda Node\.js runtime/);
});

test('a runtime Lambda deprecates within 90 days is a warning, not a refusal', () => {
  const check = checkRuntimes(() => new Date('2027-03-01T00:00:00Z'));
  const base = parseSpec(spec('nodejs22.x'), 'iotctl.yaml').spec;
  const [w] = check(base);
  assert.is(w!.severity, 'warning');
  assert.match(w!.message, /nodejs22\.x is deprecated by Lambda on 2027-04-30, in 60 days/);
  assert.match(String(w!.hint), /nodejs24\.x/);
  assert.equal(checkRuntimes(() => new Date('2026-12-07T00:00:00Z'))(base), [], '144 days ahead: nothing to say');
  assert.is(runtimeProblem('nodejs22.x', new Date('2027-04-30T00:00:00Z'))!.severity, 'error', 'from the date on: refused');
});

test('the esbuild target follows the runtime, and the bundle is built for it', async () => {
  assert.is(esbuildTarget('nodejs22.x'), 'node22');
  assert.is(esbuildTarget('nodejs24.x'), 'node24');
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-rt-'));
  try {
    // Both bundles build; node20 lowers syntax node24 keeps (nothing here needs it, so the code is the same).
    const a = await bundleTemplate('ingest-rds', join(dir, 'a'), 'nodejs24.x');
    const b = await bundleTemplate('ingest-rds', join(dir, 'b'), 'nodejs22.x');
    assert.ok(a.bytes > 1000 && b.bytes > 1000);
    assert.ok(readFileSync(a.artifactPath, 'utf8').includes('handler'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

if (botocoreDataDir()) {
  test("every runtime the table still supports is in Lambda's Runtime enum (the API model)", () => {
    const values = serviceModel('lambda').shapes.Runtime!.enum!;
    for (const r of NODE_RUNTIMES) assert.ok(values.includes(r.id), r.id);
  });
}

test.run();
