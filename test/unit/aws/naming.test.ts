/**
 * The one naming module (src/targets/aws/naming.ts), as properties over every kind: the longest valid inputs
 * give names AWS accepts (read from AWS's API models, not copied), names are deterministic and never collide,
 * and the name read back from a listing is owned by its own scope only.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arnOf, databaseSecretName, datalakeNames, stageDatalakeNames, functionRoleName, iamPath, iotAnalyticsNames, lifecycleRuleId, listingPrefix, NAME_KINDS, NAME_RULES, ownershipByName, partitionOf, physicalName, ruleRoleName, rulePermissionId, type NameKind, type Scope } from '../../../src/targets/aws/naming.js';
import { PROJECT_NAME_MAX, projectNameProblem, STAGE_NAME_MAX, stageNameProblem } from '../../../src/spec/names.js';
import { botocoreDataDir, botocoreMissing, javaRegex, memberConstraint, type MemberConstraint } from '../../helpers/aws-models.js';

/** Where each kind's name is an input in the AWS API models. */
const MODEL: Record<NameKind, [service: string, operation: string, member: string]> = {
  'kinesis-stream': ['kinesis', 'CreateStream', 'StreamName'],
  'firehose-delivery-stream': ['firehose', 'CreateDeliveryStream', 'DeliveryStreamName'],
  'lambda-function': ['lambda', 'CreateFunction', 'FunctionName'],
  'sqs-queue': ['sqs', 'CreateQueue', 'QueueName'],
  'iam-role': ['iam', 'CreateRole', 'RoleName'],
  'iam-policy': ['iam', 'CreatePolicy', 'PolicyName'],
  'iot-topic-rule': ['iot', 'CreateTopicRule', 'ruleName'],
  'iot-policy': ['iot', 'CreatePolicy', 'policyName'],
  'iot-thing-group': ['iot', 'CreateThingGroup', 'thingGroupName'],
  'iot-provisioning-template': ['iot', 'CreateProvisioningTemplate', 'templateName'],
  'scheduler-schedule': ['scheduler', 'CreateSchedule', 'Name'],
  'scheduler-schedule-group': ['scheduler', 'CreateScheduleGroup', 'Name'],
  'glue-database': ['glue', 'CreateDatabase', 'DatabaseInput.Name'],
  'glue-table': ['glue', 'CreateTable', 'TableInput.Name'],
  'athena-workgroup': ['athena', 'CreateWorkGroup', 'Name'],
  'athena-named-query': ['athena', 'CreateNamedQuery', 'Name'],
  's3-bucket': ['s3', 'CreateBucket', 'Bucket'],
  secret: ['secretsmanager', 'CreateSecret', 'Name'],
  'log-group': ['logs', 'CreateLogGroup', 'logGroupName'],
};

/**
 * Where a model states less than AWS enforces, the documented rule (the model is still checked where it speaks).
 * Lambda: the model's 140 is for a full ARN; a function name is 64 ("FunctionName", CreateFunction).
 * SQS: the model gives QueueName as a bare String; "up to 80 characters: alphanumeric, - and _" (CreateQueue).
 * S3: no pattern or length in the model; "Bucket naming rules" in the S3 user guide.
 * Secrets Manager: a length but no pattern; "ASCII letters, numbers, /_+=.@-" (CreateSecret).
 * Glue and Athena: Glue takes almost any text; Athena needs lowercase, digits and `_` (src/spec/names.ts).
 */
const DOCUMENTED: Partial<Record<NameKind, (name: string) => boolean>> = {
  'lambda-function': (n) => /^[a-zA-Z0-9_-]{1,64}$/.test(n),
  'sqs-queue': (n) => /^[a-zA-Z0-9_-]{1,80}$/.test(n),
  's3-bucket': bucketNameIsValid,
  secret: (n) => /^[a-zA-Z0-9/_+=.@-]{1,512}$/.test(n),
  'glue-database': (n) => /^[a-z][a-z0-9_]{0,254}$/.test(n),
  'glue-table': (n) => /^[a-z][a-z0-9_]{0,254}$/.test(n),
};

function bucketNameIsValid(n: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(n) &&
    !n.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(n) &&
    !/^(xn--|sthree-|amzn-s3-demo-)/.test(n) &&
    !/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(n)
  );
}

const ACCOUNT_REGION = '123456789012-us-isof-south-1'; // the longest region name there is (15)
const uniqueFor = (kind: NameKind) => (NAME_RULES[kind].globallyUnique ? ACCOUNT_REGION : undefined);
const nameOf = (kind: NameKind, scope: Scope, logical: string) => physicalName(kind, scope, logical, uniqueFor(kind));

const LONGEST: Scope = { project: `${'p'.repeat(31)}-${'q'.repeat(31)}`, stage: 's'.repeat(STAGE_NAME_MAX) };
/** The longest logical names the spec allows: 128 of [A-Za-z0-9_-] (topic rules: no '-'). */
const longestLogical = (kind: NameKind, tail = 'z') => `${kind === 'iot-topic-rule' ? 'Ab_9' : 'Ab-9'}`.repeat(32).slice(0, 127) + tail;

const haveModels = !!botocoreDataDir();
if (!haveModels) console.log(`SKIPPED the API model checks: ${botocoreMissing()} (python3 with botocore, installed with moto, provides them)`);
const modelTest = haveModels ? test : (name: string, _fn: () => void) => test.skip(name);

const constraints = new Map<NameKind, MemberConstraint>();
const constraintOf = (kind: NameKind) => {
  if (!constraints.has(kind)) constraints.set(kind, memberConstraint(...MODEL[kind]));
  return constraints.get(kind)!;
};

/** Every reason AWS would refuse `name` for `kind`: the model's length and pattern, and the documented rule. */
function refusals(kind: NameKind, name: string): string[] {
  const c = constraintOf(kind);
  const out: string[] = [];
  if (c.min !== undefined && name.length < c.min) out.push(`shorter than the model's min ${c.min}`);
  if (c.max !== undefined && name.length > c.max) out.push(`longer than the model's max ${c.max}`);
  if (c.pattern && !c.pattern.test(name)) out.push(`does not match the model's pattern ${c.javaPattern}`);
  if (name.length > NAME_RULES[kind].max) out.push(`longer than ${NAME_RULES[kind].max}`);
  const documented = DOCUMENTED[kind];
  if (documented && !documented(name)) out.push('breaks the documented rule');
  return out;
}

modelTest('every kind: the longest valid project, stage and logical name give a name AWS accepts, as long as the kind allows', () => {
  for (const kind of NAME_KINDS) {
    const n = nameOf(kind, LONGEST, longestLogical(kind));
    assert.equal(refusals(kind, n.name), [], `${kind}: ${n.name}`);
    const longest = NAME_RULES[kind].max;
    // A kind that had to shorten uses its whole length; one that did not (Glue, secrets, log groups) keeps it
    // whole, only mapped (`Ab-9` is `ab_9` plus a hash where a kind wants lowercase and `_`).
    if (n.readable.length > longest) assert.is(n.name.length, longest, `${kind}: ${n.name}`);
    else if (n.changes.length) assert.ok(n.name.startsWith(n.readable) && n.name.length === n.readable.length + 9, `${kind}: ${n.name}`);
    else assert.is(n.name, n.readable, kind);
  }
});

modelTest('every kind: short names of ordinary specs are accepted as they are', () => {
  for (const kind of NAME_KINDS) {
    for (const [scope, logical] of [[{ project: 'fleet', stage: 'prod' }, 'telemetry'], [{ project: 'fleet-eu', stage: 'dev2' }, 'ingest_v2'], [{ project: '9lives', stage: 'a' }, 'x']] as const) {
      const n = nameOf(kind, scope, logical);
      assert.equal(refusals(kind, n.name), [], `${kind}: ${n.name}`);
    }
  }
});

modelTest('every kind: a logical name holding every printable ASCII character (and more) maps to a name AWS accepts', () => {
  const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
  for (const kind of NAME_KINDS) {
    for (const logical of [ascii, `${ascii}é€😀`, '.', ' ', '..', '-', '_', '/']) {
      const n = nameOf(kind, { project: 'fleet', stage: 'prod' }, logical);
      assert.equal(refusals(kind, n.name), [], `${kind}: ${JSON.stringify(logical)} -> ${n.name}`);
      if (logical.length > 10) assert.ok(n.changes.length > 0, `${kind}: mapping ${JSON.stringify(logical)} is reported`);
    }
  }
});

modelTest("the table's limits are the models' (Lambda's 140 is for an ARN; SQS and S3 state none; Athena's workgroup only in its pattern)", () => {
  const found: Record<string, string> = {};
  for (const kind of NAME_KINDS) {
    const c = constraintOf(kind);
    found[kind] = `${c.min ?? '-'}..${c.max ?? '-'} ${c.javaPattern ?? '(no pattern)'}`;
    const rule = NAME_RULES[kind];
    if (kind === 'lambda-function') assert.is(c.max, 140);
    else if (kind === 'sqs-queue' || kind === 's3-bucket') assert.equal([c.max, c.javaPattern], [undefined, undefined], `${kind} model now states limits: use them`);
    else if (kind === 'athena-workgroup') assert.match(c.javaPattern!, /\{1,128\}/);
    else assert.is(rule.max, c.max, kind);
  }
  // The IAM path of every role and policy: the model's pattern and length.
  const path = iamPath(LONGEST);
  for (const [op, member] of [['CreateRole', 'Path'], ['CreatePolicy', 'Path']] as const) {
    const c = memberConstraint('iam', op, member);
    assert.ok(c.pattern!.test(path) && path.length <= c.max!, `${op}.${member}: ${path}`);
  }
  assert.ok(Object.keys(found).length === NAME_KINDS.length);
});

test('the Java patterns of the models translate: POSIX classes, possessive quantifiers, anchors', () => {
  assert.ok(javaRegex('[\\p{Alnum}_-]+').test('Ab9_-'));
  assert.not.ok(javaRegex('[\\p{Alnum}_-]+').test('a.b'));
  assert.ok(javaRegex('\\p{Alpha}++[0-9]*+').test('ab12'));
  assert.ok(javaRegex('[a-zA-Z0-9-_]+').test('a-_'), "Java's [0-9-_] is 0-9, '-' and '_'");
  assert.not.ok(javaRegex('(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)').test('/a'), 'anchored around the whole alternation');
  assert.ok(javaRegex('[\\u0020-\\uD7FF\\uD800\\uDC00-\\uDBFF\\uDFFF]*').test('a😀'), 'surrogate pairs are code points');
  assert.not.ok(javaRegex('[\\u0020-\\uD7FF\\uD800\\uDC00-\\uDBFF\\uDFFF]*').test('\uE000'));
  assert.ok(javaRegex('[a-z]{1,3}+').test('abc') && !javaRegex('[a-z]{1,3}+').test('abcd'));
  assert.ok(javaRegex('(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)').test('/a/'));
});

test('names are deterministic: the same input gives the same name, shortened or not', () => {
  for (const kind of NAME_KINDS) {
    for (const logical of ['telemetry', longestLogical(kind), 'Mixed-Case.x']) {
      assert.equal(nameOf(kind, LONGEST, logical), nameOf(kind, LONGEST, logical), kind);
      assert.equal(nameOf(kind, { project: 'fleet', stage: 'prod' }, logical), nameOf(kind, { project: 'fleet', stage: 'prod' }, logical), kind);
    }
  }
});

test('two long names that differ only after the cut never share a physical name (logical name, project or stage)', () => {
  for (const kind of NAME_KINDS) {
    const a = nameOf(kind, LONGEST, longestLogical(kind, 'a'));
    const b = nameOf(kind, LONGEST, longestLogical(kind, 'b'));
    assert.is.not(a.name, b.name, `${kind}: ${a.name}`);
    const p1 = nameOf(kind, { ...LONGEST, project: `${'p'.repeat(62)}1` }, longestLogical(kind));
    const p2 = nameOf(kind, { ...LONGEST, project: `${'p'.repeat(62)}2` }, longestLogical(kind));
    assert.is.not(p1.name, p2.name, `${kind}: projects differing in the last character`);
    const s1 = nameOf(kind, { ...LONGEST, stage: `${'s'.repeat(15)}1` }, longestLogical(kind));
    const s2 = nameOf(kind, { ...LONGEST, stage: `${'s'.repeat(15)}2` }, longestLogical(kind));
    assert.is.not(s1.name, s2.name, `${kind}: stages differing in the last character`);
  }
});

test('a shortened name is never silent: it says why, shows the full readable name, and keeps the stage', () => {
  const n = physicalName('iam-role', { project: 'acme-industrial-telemetry-platform', stage: 'prod' }, 'fn-ingest-decoder');
  assert.is(n.readable, 'iotctl-acme-industrial-telemetry-platform-prod--fn-ingest-decoder');
  assert.is(n.name.length, 64);
  assert.match(n.name, /^iotctl-acme-industrial-telemetr-prod--fn-ingest-decoder-[0-9a-f]{8}$/, 'the project is cut first');
  assert.match(n.changes.join('\n'), /65 characters, over the iam-role limit of 64/);
  const fits = physicalName('iam-role', { project: 'fleet', stage: 'prod' }, 'fn-ingest');
  assert.equal(fits, { kind: 'iam-role', logical: 'fn-ingest', name: 'iotctl-fleet-prod--fn-ingest', readable: 'iotctl-fleet-prod--fn-ingest', changes: [] });
});

test('the S3 bucket keeps its account and region suffix whole, however long the rest', () => {
  for (const scope of [LONGEST, { project: 'fleet', stage: 'prod' }]) {
    const n = physicalName('s3-bucket', scope, 'lake', ACCOUNT_REGION);
    assert.ok(n.name.endsWith(`-${ACCOUNT_REGION}`), n.name);
    assert.ok(bucketNameIsValid(n.name), n.name);
  }
  assert.throws(() => physicalName('s3-bucket', { project: 'fleet', stage: 'prod' }, 'lake'), /unique to the account and region/);
  assert.is.not(physicalName('s3-bucket', { project: 'fleet', stage: 'prod' }, 'lake', '111111111111-eu-west-1').name, physicalName('s3-bucket', { project: 'fleet', stage: 'prod' }, 'lake', '222222222222-eu-west-1').name);
});

test('a mapping that changes the logical name adds a hash: names that map alike stay apart', () => {
  const scope = { project: 'fleet-eu', stage: 'prod' };
  const pairs: [NameKind, string, string][] = [
    ['iot-topic-rule', 'a-b', 'a_b'],
    ['glue-database', 'Lake', 'lake'],
    ['glue-table', 'Tele-Metry', 'tele_metry'],
    ['iam-role', 'fn-Ingest', 'fn-ingest'],
    ['s3-bucket', 'lake_1', 'lake-1'],
    ['lambda-function', 'a.b', 'a-b'],
  ];
  for (const [kind, mapped, plain] of pairs) {
    const a = nameOf(kind, scope, mapped);
    const b = nameOf(kind, scope, plain);
    assert.is.not(a.name, b.name, `${kind}: ${mapped} vs ${plain}`);
    assert.ok(a.changes.length === 1 && b.changes.length === 0, kind);
  }
  assert.is(nameOf('iot-topic-rule', scope, 'a_b').name, 'iotctl_fleet_eu_prod__a_b');
  assert.is(nameOf('glue-table', scope, 'telemetry').name, 'telemetry', 'tables live in the stage-scoped database');
});

// Scopes that read alike when joined with '-': the scheme must keep them apart.
const SCOPES: Scope[] = [
  { project: 'fleet', stage: 'staging' },
  { project: 'fleet-staging', stage: 'dev' },
  { project: 'fleet', stage: 'dev' },
  { project: 'fleet-eu', stage: 'prod' },
  { project: 'fleet', stage: 'euprod' },
  { project: 'fleet-eu-prod', stage: 'a' },
  { project: 'fleetstaging', stage: 'dev' },
];
const LOGICALS = ['x', 'dev-x', 'staging-x', 'prod', 'a_b', 'A-b'];

test('unshortened names are injective: no two scopes or logical names share a physical name', () => {
  for (const kind of NAME_KINDS.filter((k) => NAME_RULES[k].style !== 'unscoped')) {
    const seen = new Map<string, string>();
    for (const scope of SCOPES) {
      for (const logical of LOGICALS) {
        const name = nameOf(kind, scope, logical).name;
        const who = `${scope.project}/${scope.stage}/${logical}`;
        assert.not.ok(seen.has(name), `${kind}: ${who} and ${seen.get(name)} both give ${name}`);
        seen.set(name, who);
      }
    }
  }
});

test("ownership by name: a scope owns its own names and never another's (fleet is not fleet-staging), for every kind", () => {
  for (const kind of NAME_KINDS.filter((k) => NAME_RULES[k].style !== 'unscoped')) {
    for (const owner of [...SCOPES, LONGEST]) {
      for (const logical of [...LOGICALS, longestLogical(kind)]) {
        const name = nameOf(kind, owner, logical);
        const mine = ownershipByName(kind, name.name, owner, uniqueFor(kind));
        if (name.changes.length) assert.is(mine.verdict, 'check-tags', `${kind}: own shortened ${name.name}`);
        else assert.equal(mine, { verdict: 'ours', logical }, `${kind}: own ${name.name}`);
        for (const other of SCOPES.filter((s) => s !== owner)) {
          const theirs = ownershipByName(kind, name.name, other, uniqueFor(kind));
          assert.is.not(theirs.verdict, 'ours', `${kind}: ${other.project}/${other.stage} claims ${owner.project}/${owner.stage}'s ${name.name}`);
        }
      }
    }
  }
  const fleet = { project: 'fleet', stage: 'staging' };
  assert.is(ownershipByName('kinesis-stream', 'iotctl-fleet-staging-dev--telemetry', fleet).verdict, 'not-ours');
  assert.is(ownershipByName('kinesis-stream', 'iotctl-fleet-staging--telemetry', fleet).verdict, 'ours');
  assert.is(ownershipByName('kinesis-stream', 'iotctl-fleet-staging--telemetry', { project: 'fleet-staging', stage: 'dev' }).verdict, 'not-ours');
});

test('ownership by name: foreign names are not ours, and a cut name that may be ours asks for tags', () => {
  const scope = { project: 'payments', stage: 'team' };
  for (const foreign of ['payments-team-orders', 'telemetry', 'iotctl-fn-ingest', 'iotctl-payments-team-orders', 'iotctl-payments-team--a.b']) {
    assert.is(ownershipByName('lambda-function', foreign, scope).verdict, 'not-ours', foreign);
  }
  // Project `fleet-eu-west`'s long names are cut to `fleet-eu…`: project `fleet-eu` cannot tell them from its own by name.
  const cut = physicalName('lambda-function', { project: 'fleet-eu-west', stage: 'prod' }, 'x'.repeat(60)).name;
  assert.match(cut, /^iotctl-fleet-eu-prod--x+-[0-9a-f]{8}$/);
  assert.is(ownershipByName('lambda-function', cut, { project: 'fleet-eu', stage: 'prod' }).verdict, 'check-tags');
  assert.is(ownershipByName('lambda-function', cut, { project: 'fleet', stage: 'prod' }).verdict, 'not-ours', 'a cut project is a prefix of the real one, and fleet-eu is none of fleet');
  assert.is(ownershipByName('lambda-function', cut, { project: 'fleet-eu', stage: 'dev' }).verdict, 'not-ours');
  assert.is(ownershipByName('lambda-function', cut, { project: 'fleet-us', stage: 'prod' }).verdict, 'not-ours');
  assert.is(ownershipByName('glue-table', 'telemetry', scope).verdict, 'check-tags', 'tables: the database tells');
  assert.is(ownershipByName('s3-bucket', physicalName('s3-bucket', scope, 'lake', '111111111111-eu-west-1').name, scope, '222222222222-eu-west-1').verdict, 'not-ours');
  for (const kind of NAME_KINDS) assert.ok(nameOf(kind, LONGEST, longestLogical(kind)).name.startsWith(listingPrefix(kind)), kind);
});

test('project and stage names: what the scheme needs, with messages that say how to fix them', () => {
  for (const ok of ['fleet', 'fleet-eu', '9lives', 'a', 'p'.repeat(PROJECT_NAME_MAX)]) assert.is(projectNameProblem(ok), undefined, ok);
  for (const [bad, why, suggestion] of [
    ['fleet--eu', /'--'/, 'fleet-eu'],
    ['fleet-', /'--'/, 'fleet'],
    ['-fleet', /'--'/, 'fleet'],
    ['Fleet_EU', /lowercase letters, digits and single '-'/, 'fleet-eu'],
    ['', /1 to 63/, 'iot'],
    ['p'.repeat(PROJECT_NAME_MAX + 1), /1 to 63/, 'p'.repeat(PROJECT_NAME_MAX)],
  ] as const) {
    const p = projectNameProblem(bad);
    assert.match(p?.message ?? '', why, bad);
    assert.is(p!.suggestion, suggestion, bad);
    assert.is(projectNameProblem(p!.suggestion), undefined, `the suggestion for ${bad} is valid`);
  }
  for (const ok of ['prod', 'dev', 'pr123', 's'.repeat(STAGE_NAME_MAX)]) assert.is(stageNameProblem(ok), undefined, ok);
  for (const [bad, why, suggestion] of [
    ['eu-prod', /may not hold '-'/, 'euprod'],
    ['Prod', /lowercase letter/, 'prod'],
    ['1st', /start with a lowercase letter/, 's1st'],
    ['', /1 to 16/, 's'],
    ['s'.repeat(STAGE_NAME_MAX + 1), /1 to 16/, 's'.repeat(STAGE_NAME_MAX)],
  ] as const) {
    const s = stageNameProblem(bad);
    assert.match(s?.message ?? '', why, bad);
    assert.is(s!.suggestion, suggestion, bad);
    assert.is(stageNameProblem(s!.suggestion), undefined, `the suggestion for ${bad} is valid`);
  }
  assert.throws(() => physicalName('kinesis-stream', { project: 'fleet', stage: 'eu-prod' }, 'x'), /stage name 'eu-prod' may not hold '-'/);
  assert.throws(() => physicalName('kinesis-stream', { project: 'fleet--eu', stage: 'prod' }, 'x'), /project name 'fleet--eu'/);
  assert.throws(() => physicalName('kinesis-stream', { project: 'fleet', stage: 'prod' }, ''), /needs a logical name/);
});

test('ARNs carry the partition of the region', () => {
  assert.is(partitionOf('eu-west-1'), 'aws');
  assert.is(partitionOf('cn-north-1'), 'aws-cn');
  assert.is(partitionOf('us-gov-west-1'), 'aws-us-gov');
  assert.is(partitionOf('us-iso-east-1'), 'aws-iso');
  assert.is(partitionOf('us-isob-east-1'), 'aws-iso-b');
  const cn = { region: 'cn-northwest-1', account: '123456789012' };
  const gov = { region: 'us-gov-west-1', account: '123456789012' };
  const expected: [Parameters<typeof arnOf>, string][] = [
    [['kinesis-stream', cn, 's'], 'arn:aws-cn:kinesis:cn-northwest-1:123456789012:stream/s'],
    [['firehose-delivery-stream', gov, 'd'], 'arn:aws-us-gov:firehose:us-gov-west-1:123456789012:deliverystream/d'],
    [['lambda-function', cn, 'f'], 'arn:aws-cn:lambda:cn-northwest-1:123456789012:function:f'],
    [['sqs-queue', gov, 'q'], 'arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q'],
    [['iam-role', cn, 'r', { path: iamPath({ project: 'fleet', stage: 'prod' }) }], 'arn:aws-cn:iam::123456789012:role/iotctl/fleet/prod/r'],
    [['iam-policy', gov, 'p'], 'arn:aws-us-gov:iam::123456789012:policy/p'],
    [['iot-topic-rule', cn, 'r'], 'arn:aws-cn:iot:cn-northwest-1:123456789012:rule/r'],
    [['iot-policy', cn, 'p'], 'arn:aws-cn:iot:cn-northwest-1:123456789012:policy/p'],
    [['iot-thing-group', cn, 'g'], 'arn:aws-cn:iot:cn-northwest-1:123456789012:thinggroup/g'],
    [['iot-provisioning-template', cn, 't'], 'arn:aws-cn:iot:cn-northwest-1:123456789012:provisioningtemplate/t'],
    [['scheduler-schedule', gov, 's', { group: 'g' }], 'arn:aws-us-gov:scheduler:us-gov-west-1:123456789012:schedule/g/s'],
    [['scheduler-schedule-group', gov, 'g'], 'arn:aws-us-gov:scheduler:us-gov-west-1:123456789012:schedule-group/g'],
    [['glue-database', cn, 'd'], 'arn:aws-cn:glue:cn-northwest-1:123456789012:database/d'],
    [['glue-table', cn, 't', { database: 'd' }], 'arn:aws-cn:glue:cn-northwest-1:123456789012:table/d/t'],
    [['athena-workgroup', gov, 'w'], 'arn:aws-us-gov:athena:us-gov-west-1:123456789012:workgroup/w'],
    [['s3-bucket', cn, 'b'], 'arn:aws-cn:s3:::b'],
    [['secret', gov, 'iotctl/fleet/prod/db'], 'arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:iotctl/fleet/prod/db-??????'],
    [['log-group', cn, '/iotctl/fleet/prod/x'], 'arn:aws-cn:logs:cn-northwest-1:123456789012:log-group:/iotctl/fleet/prod/x'],
  ];
  for (const [args, arn] of expected) assert.is(arnOf(...args), arn);
  assert.throws(() => arnOf('scheduler-schedule', cn, 's'), /needs its schedule group/);
  assert.ok(NAME_KINDS.filter((k) => k !== 'athena-named-query').every((k) => expected.some(([a]) => a[0] === k)), 'every kind with an ARN is covered');
});

test("the datalake's names are the stage's: one database per stage, roles under the stage's path, a bucket per account and region", () => {
  const place = { accountId: '123456789012', region: 'eu-west-1' };
  const n = stageDatalakeNames({ project: 'fleet', stage: 'prod' }, place);
  assert.equal(
    [n.bucket, n.database, n.stream('ch-raw'), n.function('transform-main'), n.role('ch-raw-firehose'), n.table('telemetry'), n.query('hourly'), n.schedule('hourly'), n.rolePath],
    ['iotctl-fleet-prod--lake-123456789012-eu-west-1', 'iotctl_fleet_prod__lake', 'iotctl-fleet-prod--ch-raw', 'iotctl-fleet-prod--transform-main', 'iotctl-fleet-prod--ch-raw-firehose', 'telemetry', 'iotctl-fleet-prod--hourly', 'iotctl-fleet-prod--hourly', '/iotctl/fleet/prod/'],
  );
  // Project fleet-staging's names are never project fleet's (stage staging).
  const other = stageDatalakeNames({ project: 'fleet-staging', stage: 'default' }, place);
  assert.is(ownershipByName('scheduler-schedule', other.schedule('hourly'), { project: 'fleet', stage: 'staging' }).verdict, 'not-ours');
  // A long project: every name fits its kind, and is read back as possibly ours (tags decide).
  const long = { project: `fleet-${'x'.repeat(54)}`, stage: 'default' };
  const l = stageDatalakeNames(long, place);
  for (const [kind, name] of [['s3-bucket', l.bucket], ['firehose-delivery-stream', l.stream('ch-raw')], ['scheduler-schedule', l.schedule('hourly')], ['iam-role', l.role('hourly-scheduler')]] as const) {
    assert.ok(name.length <= NAME_RULES[kind].max, `${kind} ${name}`);
    if (kind !== 's3-bucket') assert.is.not(ownershipByName(kind, name, long).verdict, 'not-ours', name);
  }
});

test('the names deployments carry today stay exactly as they were (an existing deployment keeps its resources)', () => {
  const d = datalakeNames('fleet', { accountId: '123456789012', region: 'eu-west-1' });
  assert.equal(
    [d.bucket, d.channelStream('raw'), d.pipelineStream('main'), d.streamRole(d.channelStream('raw')), d.transformFunction('main'), d.query('hourly'), d.schedule('hourly'), d.scheduleRole('hourly'), d.rolePath, d.table('Telemetry')],
    ['iotctl-fleet-123456789012-eu-west-1', 'iotctl-fleet-ch-raw', 'iotctl-fleet-pl-main', 'iotctl-fleet-ch-raw-firehose', 'iotctl-fleet-transform-main', 'iotctl-fleet-hourly', 'iotctl-fleet-hourly', 'iotctl-fleet-hourly-scheduler', '/iotctl/fleet/', 'telemetry'],
  );
  assert.equal([ruleRoleName('to_stream'), rulePermissionId('to_stream'), functionRoleName('ingest')], ['iotctl-rule-to_stream', 'iotctl-rule-to_stream', 'iotctl-fn-ingest']);
  assert.equal([databaseSecretName('fleet', 'default'), databaseSecretName('fleet', 'prod')], ['iotctl/fleet/database', 'iotctl/fleet/prod/database']);
  assert.equal(iotAnalyticsNames('fleet'), { rolePath: '/iotctl-iotanalytics/fleet/', enrichRole: 'iotctl-fleet-iotanalytics-enrich', exportRole: 'iotctl-fleet-iotanalytics-export' });
  assert.is(lifecycleRuleId('dataset', 'hourly'), 'iotctl-dataset-hourly');
  // Shortened names keep the hashes older versions wrote: a role's over its logical name, the datalake's over the whole.
  assert.is(ruleRoleName('r'.repeat(80)), `iotctl-rule-${'r'.repeat(43)}-11318ee9`);
  assert.is(functionRoleName('f'.repeat(80)), `iotctl-fn-${'f'.repeat(45)}-30483a49`);
  assert.is(d.channelStream('c'.repeat(60)), `iotctl-fleet-ch-${'c'.repeat(39)}-238e20da`);
});

modelTest('the names deployments carry today are accepted by the API models, for the longest inputs', () => {
  const project = `${'p'.repeat(31)}-${'q'.repeat(31)}`;
  const logical = longestLogical('lambda-function');
  const d = datalakeNames(project, { accountId: '123456789012', region: 'us-isof-south-1' });
  const cases: [NameKind, string][] = [
    ['iam-role', ruleRoleName(longestLogical('iot-topic-rule'))],
    ['iam-role', functionRoleName(logical)],
    ['iam-role', d.streamRole(d.channelStream(logical))],
    ['iam-role', d.functionRole(d.transformFunction(logical))],
    ['iam-role', d.scheduleRole(logical)],
    ['iam-role', iotAnalyticsNames(project).enrichRole],
    ['s3-bucket', d.bucket],
    ['firehose-delivery-stream', d.channelStream(logical)],
    ['firehose-delivery-stream', d.pipelineStream(logical)],
    ['lambda-function', d.transformFunction(logical)],
    ['athena-named-query', d.query(logical)],
    ['scheduler-schedule', d.schedule(logical)],
    ['secret', databaseSecretName(project, 's'.repeat(STAGE_NAME_MAX))],
  ];
  for (const [kind, name] of cases) assert.equal(refusals(kind, name), [], `${kind}: ${name}`);
});

test.run();

