/** apply's database section: no database yet is a warning and an empty plan; AWS failing is an error, never a warning. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sections } from '../../../src/services/apply.js';
import { AwsCallError } from '../../../src/targets/aws/sdk.js';
import { UserError } from '../../../src/ui/errors.js';
import type { Context } from '../../../src/context.js';
import type { Target } from '../../../src/ports.js';

function databaseSection(locate: () => Promise<never>) {
  const ctx = { spec: { spec: { devices: { policy: { name: 'p' } }, functions: [], rules: [], streams: [] } } } as unknown as Context;
  const target = { name: 'aws', database: { locate } } as unknown as Target;
  return sections(ctx, target).find((s) => s.name === 'database')!;
}

test('no database configured: the schema is not planned (a warning)', async () => {
  const section = databaseSection(async () => {
    throw new UserError('No database: set DATABASE_URL or database.rds.', undefined, 'NO_DATABASE');
  });
  const stderr = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    assert.equal(await section.plan({}), []);
  } finally {
    process.stderr.write = stderr;
  }
});

for (const code of ['AccessDenied', 'ExpiredToken', 'ThrottlingException']) {
  test(`AWS refusing the lookup (${code}) fails the plan instead of planning nothing`, async () => {
    const section = databaseSection(async () => {
      throw new AwsCallError(`rds:DescribeDBInstances failed: ${code}`, undefined, code, 'DescribeDBInstances', 'rds');
    });
    const error = await section.plan({}).then(() => undefined, (e: unknown) => e);
    assert.instance(error, AwsCallError);
    assert.is((error as AwsCallError).awsCode, code);
  });
}

test.run();
