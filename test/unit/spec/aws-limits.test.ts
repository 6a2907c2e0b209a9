/**
 * The aws target's numeric limits (src/spec/aws-limits.ts) against AWS's own API models (botocore, installed with
 * moto): each row's type and range must be the member's, so a model change or a typo in the table fails here. Then
 * `spec validate` refuses, at file:line:col, what AWS would refuse or truncate, on aws only.
 */
import { test } from 'uvu';
import { z } from 'zod';
import * as assert from 'uvu/assert';
import { AWS_MEMBER_LIMITS } from '../../../src/spec/aws-limits.js';
import { parseSpec } from '../../../src/spec/loader.js';
import { specSchema } from '../../../src/spec/schema.js';
import { botocoreDataDir, botocoreMissing, serviceModel } from '../../helpers/aws-models.js';
import { specProblems } from '../../helpers/project.js';

const haveModels = !!botocoreDataDir();
if (!haveModels) console.log(`SKIPPED the API model checks: ${botocoreMissing()}`);
const modelTest = haveModels ? test : (name: string, _fn: () => void) => test.skip(name);

/** The shape a member path of an operation's input ends at (`[]` steps into a list). */
function memberShape(service: string, operation: string, member: string) {
  const model = serviceModel(service);
  let name = model.operations[operation]!.input!.shape;
  for (const part of member.split('.')) {
    const shape = model.shapes[name]!;
    const next = part === '[]' ? shape.member : shape.members?.[part];
    assert.ok(next, `${service} ${operation}: no ${part} in ${name}`);
    name = next!.shape;
  }
  return model.shapes[name]!;
}

modelTest('every limit row is its member as the AWS API model states it (type, min, max)', () => {
  assert.ok(AWS_MEMBER_LIMITS.length >= 10);
  for (const row of AWS_MEMBER_LIMITS) {
    const shape = memberShape(row.api.service, row.api.operation, row.api.member);
    const where = `${row.path} -> ${row.api.service}:${row.api.operation}.${row.api.member}`;
    assert.is(row.integer, shape.type === 'integer' || shape.type === 'long', `${where}: type ${shape.type}`);
    assert.is(row.min, shape.min, `${where}: min`);
    assert.is(row.max, shape.max, `${where}: max`);
  }
});

test('every numeric spec field of functions, event sources and streams (all sent to AWS) has a row', () => {
  type Node = { type?: string; properties?: Record<string, Node>; items?: Node; anyOf?: Node[] };
  const root = z.toJSONSchema(specSchema, { io: 'input', unrepresentable: 'any' }) as Node;
  const object = (n: Node | undefined): Node | undefined => (n?.properties ? n : n?.items ? object(n.items) : n?.anyOf?.map(object).find(Boolean));
  const numeric = (n: Node | undefined, prefix: string) =>
    Object.entries(object(n)?.properties ?? {})
      .filter(([, v]) => v.type === 'number' || v.type === 'integer')
      .map(([k]) => `${prefix}.${k}`);
  const functions = object(root.properties!.functions)!;
  const fields = [...numeric(functions, 'functions.*'), ...numeric(functions.properties!.eventSource, 'functions.*.eventSource'), ...numeric(root.properties!.streams, 'streams.*')];
  assert.ok(fields.includes('functions.*.eventSource.maximumBatchingWindowSeconds'), fields.join());
  const rows = new Set(AWS_MEMBER_LIMITS.map((r) => r.path));
  assert.equal(fields.filter((f) => !rows.has(f)), []);
});

const aws = (body: string) => `project: fleet\ntarget: aws\n${body}`;
const fn = (es: string, extra = '') => aws(`streams: [{ name: telemetry }]\nfunctions:\n  - name: ingest\n    template: ingest-rds\n${extra}    eventSource: { stream: telemetry, ${es} }\n`);

test('on aws: what AWS refuses is refused at its line and column, with the member and the range', () => {
  const [age] = specProblems(fn('maximumRecordAgeInSeconds: 30'));
  assert.match(age!.message, /30 is refused by Lambda: the maximum record age is -1 \(no limit\) or at least 60 seconds/);
  assert.is(age!.path, 'functions[0].eventSource.maximumRecordAgeInSeconds');
  assert.is(age!.line, 7);
  assert.equal(specProblems(fn('maximumRecordAgeInSeconds: 60')), []);
  assert.equal(specProblems(fn('maximumRecordAgeInSeconds: -1')), []);

  const [window] = specProblems(fn('maximumBatchingWindowSeconds: 2.5'));
  assert.match(window!.message, /2\.5 is not a whole number of seconds: Lambda's MaximumBatchingWindowInSeconds \(CreateEventSourceMapping\) is an integer from 0 to 300/);
  assert.match(String(window!.hint), /Use 3/);

  const [retention] = specProblems(aws('streams: [{ name: telemetry, retentionHours: 12 }]\n'));
  assert.match(retention!.message, /12 is refused by Kinesis: a stream keeps records for 24 to 8760 hours/);
  assert.is(retention!.line, 3);

  // The schema itself already takes whole days only (for both targets).
  assert.is(specProblems(aws('analytics:\n  channels: [{ name: raw, retentionDays: 1.5 }]\n'))[0]!.line, 4);
  // The same values on local: the local platform takes them as they are.
  for (const yaml of [fn('maximumRecordAgeInSeconds: 30'), fn('maximumBatchingWindowSeconds: 2.5'), aws('streams: [{ name: telemetry, retentionHours: 12 }]\n')]) assert.equal(specProblems(yaml.replace('target: aws', 'target: local')), []);
});

test('the init-like defaults validate on aws', () => {
  assert.ok(parseSpec(fn('batchSize: 100, maximumBatchingWindowSeconds: 1, maximumRetryAttempts: 3, maximumRecordAgeInSeconds: 3600'), 'iotctl.yaml').spec);
});

test.run();
