/**
 * Every physical name iotctl gives a resource on AWS, in both directions: from (project, stage, kind, the
 * logical name the user wrote) to the name AWS stores, and from a name found in a listing back to whether it
 * can belong to a project and stage. Pure: no SDK, no I/O. Adapters never build a name themselves.
 *
 * Two parts: the names deployments carry today (further below: `ruleRoleName`, `datalakeNames`, ...), which
 * every adapter writes and reads back, and the stage-scoped scheme `physicalName` that replaces them once a
 * migration plan can move a deployment without losing data-bearing resources.
 *
 * The scoped scheme is `iotctl-<project>-<stage>--<name>` (`iotctl_<project>_<stage>__<name>` where a kind
 * allows no `-`; `iotctl/<project>/<stage>/<name>` for secrets and log groups, paths by convention):
 * - `iotctl-` keeps the names iotctl has always used (`iotctl-<project>-ch-…`, role path `/iotctl/…`), tells an
 *   operator in the console who made a resource, and keeps other teams' names (`payments-team-orders`) out.
 * - The scope ends at the first `--`, and the stage (no `-`, src/spec/names.ts) is the part after the last
 *   `-` before it, so the scope is read back unambiguously: project `fleet` with stage `staging` owns
 *   `iotctl-fleet-staging--x`, never project `fleet-staging`'s `iotctl-fleet-staging-dev--x`. Unshortened names
 *   are therefore injective: no two (project, stage, name) give one physical name.
 * - A kind's forbidden characters are mapped (`-` to `_` for topic rules, lowercase for S3, Glue and IAM,
 *   whose role names are unique regardless of case); when that changes the logical name, two logical names
 *   could meet (`a-b`, `a_b`), so a hash is added (decided per name, no view of the whole spec needed, and it
 *   also keeps a renamed resource from meeting the old one).
 * - A name over the kind's limit is shortened as SST does (project first, then the logical name, stage last),
 *   plus 8 hex of SHA-256 over the full identity (project, stage, kind, logical name, global suffix), as
 *   aws-cdk's generated names: deterministic, and two names differing only after the cut differ.
 * Nothing is silent: `changes` says what was mapped or shortened, for plans and `status`.
 *
 * Ownership is decided by tags (`iotctl:project`, `iotctl:stage`; markers where a kind has no tags): a
 * shortened name whose project was cut no longer carries the whole scope. `ownershipByName` is the cheap first
 * filter for listings: `not-ours` is certain, `ours` is certain for every name iotctl writes unshortened, and
 * `check-tags` is what a shortened name in our scope's shape gets.
 */
import { createHash } from 'node:crypto';
import { athenaName, projectNameProblem, stageNameProblem } from '../../spec/names.js';
import { DEFAULT_STAGE } from '../../spec/stages.js';

export type NameKind =
  | 'kinesis-stream'
  | 'firehose-delivery-stream'
  | 'lambda-function'
  | 'sqs-queue'
  | 'iam-role'
  | 'iam-policy'
  | 'iot-topic-rule'
  | 'iot-policy'
  | 'iot-thing-group'
  | 'iot-provisioning-template'
  | 'scheduler-schedule'
  | 'scheduler-schedule-group'
  | 'glue-database'
  | 'glue-table'
  | 'athena-workgroup'
  | 'athena-named-query'
  | 's3-bucket'
  | 'secret'
  | 'log-group';

export interface Scope {
  project: string;
  stage: string;
}

/** How the parts of a name are joined: `head project mid stage end name [join hash] [join unique]`. */
interface Style {
  head: string;
  mid: string;
  end: string;
  join: string;
}
const DASH: Style = { head: 'iotctl-', mid: '-', end: '--', join: '-' };
const UNDERSCORE: Style = { head: 'iotctl_', mid: '_', end: '__', join: '_' };
const SECRET_PATH: Style = { head: 'iotctl/', mid: '/', end: '/', join: '-' };
const LOG_PATH: Style = { head: '/iotctl/', mid: '/', end: '/', join: '-' };

export interface NameRule {
  /** Longest name AWS accepts. */
  max: number;
  /** One character the kind accepts (after lowercasing, when `lowercase`). */
  allowed: RegExp;
  /** What a character the kind does not accept becomes. */
  replacement: '-' | '_';
  lowercase: boolean;
  /** Unscoped kinds live in a scoped container (a Glue table in the stage's database): only mapped and fitted. */
  style: Style | 'unscoped';
  /** A suffix unique to the account and region is part of the name (S3 bucket names are global). */
  globallyUnique?: true;
  /** Where the limits come from (the test checks them against the botocore models). */
  source: string;
}

/** Per kind: characters, case and length (AWS API models, or the documentation where a model has none). */
export const NAME_RULES: Readonly<Record<NameKind, NameRule>> = {
  'kinesis-stream': { max: 128, allowed: /[a-zA-Z0-9_.-]/, replacement: '-', lowercase: false, style: DASH, source: 'kinesis CreateStream.StreamName' },
  'firehose-delivery-stream': { max: 64, allowed: /[a-zA-Z0-9_.-]/, replacement: '-', lowercase: false, style: DASH, source: 'firehose CreateDeliveryStream.DeliveryStreamName' },
  // The model's 140 is for a full ARN; a bare function name is 64 (CreateFunction documentation).
  'lambda-function': { max: 64, allowed: /[a-zA-Z0-9_-]/, replacement: '-', lowercase: false, style: DASH, source: 'lambda CreateFunction.FunctionName (64 for a name, documented)' },
  // The SQS model states no limits: 80 characters of [A-Za-z0-9_-] (CreateQueue documentation); a FIFO queue also needs `.fifo`.
  'sqs-queue': { max: 80, allowed: /[a-zA-Z0-9_-]/, replacement: '-', lowercase: false, style: DASH, source: 'sqs CreateQueue.QueueName (documented)' },
  // IAM names are unique regardless of case ("PRODROLE" and "prodrole" cannot both exist): lowercase keeps that visible.
  'iam-role': { max: 64, allowed: /[a-z0-9_+=,.@-]/, replacement: '-', lowercase: true, style: DASH, source: 'iam CreateRole.RoleName' },
  'iam-policy': { max: 128, allowed: /[a-z0-9_+=,.@-]/, replacement: '-', lowercase: true, style: DASH, source: 'iam CreatePolicy.PolicyName' },
  'iot-topic-rule': { max: 128, allowed: /[a-zA-Z0-9_]/, replacement: '_', lowercase: false, style: UNDERSCORE, source: 'iot CreateTopicRule.ruleName' },
  'iot-policy': { max: 128, allowed: /[a-zA-Z0-9_+=,.@-]/, replacement: '-', lowercase: false, style: DASH, source: 'iot CreatePolicy.policyName' },
  'iot-thing-group': { max: 128, allowed: /[a-zA-Z0-9_:-]/, replacement: '-', lowercase: false, style: DASH, source: 'iot CreateThingGroup.thingGroupName' },
  'iot-provisioning-template': { max: 36, allowed: /[a-zA-Z0-9_-]/, replacement: '-', lowercase: false, style: DASH, source: 'iot CreateProvisioningTemplate.templateName' },
  'scheduler-schedule': { max: 64, allowed: /[a-zA-Z0-9_.-]/, replacement: '-', lowercase: false, style: DASH, source: 'scheduler CreateSchedule.Name' },
  'scheduler-schedule-group': { max: 64, allowed: /[a-zA-Z0-9_.-]/, replacement: '-', lowercase: false, style: DASH, source: 'scheduler CreateScheduleGroup.Name' },
  // Glue accepts almost anything up to 255; Athena needs lowercase, digits and `_` unquoted (src/spec/names.ts).
  'glue-database': { max: 255, allowed: /[a-z0-9_]/, replacement: '_', lowercase: true, style: UNDERSCORE, source: 'glue CreateDatabase.DatabaseInput.Name + Athena naming' },
  'glue-table': { max: 255, allowed: /[a-z0-9_]/, replacement: '_', lowercase: true, style: 'unscoped', source: 'glue CreateTable.TableInput.Name + Athena naming' },
  'athena-workgroup': { max: 128, allowed: /[a-zA-Z0-9_.-]/, replacement: '-', lowercase: false, style: DASH, source: 'athena CreateWorkGroup.Name' },
  'athena-named-query': { max: 128, allowed: /[a-zA-Z0-9_.-]/, replacement: '-', lowercase: false, style: DASH, source: 'athena CreateNamedQuery.Name' },
  // No pattern in the S3 model: the documented bucket rules (3-63, lowercase, digits, `.`, `-`); iotctl avoids `.` (TLS on virtual hosts).
  's3-bucket': { max: 63, allowed: /[a-z0-9-]/, replacement: '-', lowercase: true, style: DASH, globallyUnique: true, source: 'S3 bucket naming rules (documented)' },
  // No pattern in the model: the documented [A-Za-z0-9/_+=.@-], up to 512.
  secret: { max: 512, allowed: /[a-zA-Z0-9/_+=.@-]/, replacement: '-', lowercase: false, style: SECRET_PATH, source: 'secretsmanager CreateSecret.Name' },
  'log-group': { max: 512, allowed: /[a-zA-Z0-9._/#-]/, replacement: '-', lowercase: false, style: LOG_PATH, source: 'logs CreateLogGroup.logGroupName' },
};

export const NAME_KINDS = Object.keys(NAME_RULES) as NameKind[];

export interface PhysicalName {
  kind: NameKind;
  logical: string;
  /** The name to create on AWS. */
  name: string;
  /** The readable name before any hash or cut (equal to `name` when `changes` is empty). */
  readable: string;
  /** Why `name` is not simply `readable`, for plans; empty when it is. */
  changes: string[];
}

const HASH_HEX = 8;
/** What the first pass of shortening leaves of the project and the logical name. */
const PROJECT_STEM = 8;
const NAME_STEM = 16;

/** 8 hex of SHA-256 over everything that makes the name unique. */
function identityHash(kind: NameKind, scope: Scope, logical: string, unique: string | undefined): string {
  return createHash('sha256').update(JSON.stringify([scope.project, scope.stage, kind, logical, unique ?? null])).digest('hex').slice(0, HASH_HEX);
}

function mapChars(rule: NameRule, s: string): string {
  const cased = rule.lowercase ? s.toLowerCase() : s;
  return Array.from(cased, (c) => (rule.allowed.test(c) ? c : rule.replacement)).join('');
}

function assertScope(scope: Scope): void {
  const p = projectNameProblem(scope.project);
  if (p) throw new Error(`project name '${scope.project}' ${p.message}`);
  const s = stageNameProblem(scope.stage);
  if (s) throw new Error(`stage name '${scope.stage}' ${s.message}`);
}

const trailingJoiners = (s: string) => s.replace(/[-_./]+$/, '');

function compose(style: Style | 'unscoped', p: string, s: string, n: string, hash: string | undefined, unique: string | undefined, join: string): string {
  const tail = [hash, unique].filter((x): x is string => !!x);
  if (style === 'unscoped') return [n, ...tail].filter(Boolean).join(join);
  const scopePart = `${style.head}${p}${style.mid}${s}${style.end}`;
  return scopePart + [n, ...tail].filter(Boolean).join(style.join);
}

/**
 * The physical name of `logical` of `kind` in `scope`. `unique` (S3 buckets: `<account>-<region>`) keeps a
 * globally named resource apart from other accounts' and is never cut.
 */
export function physicalName(kind: NameKind, scope: Scope, logical: string, unique?: string): PhysicalName {
  assertScope(scope);
  if (!logical) throw new Error(`a ${kind} needs a logical name`);
  const rule = NAME_RULES[kind];
  if (rule.globallyUnique && !unique) throw new Error(`a ${kind} name is global: pass a suffix unique to the account and region`);
  const join = rule.style === 'unscoped' ? rule.replacement : rule.style.join;
  let p = mapChars(rule, scope.project);
  let s = scope.stage;
  let n = rule.style === 'unscoped' && rule.replacement === '_' ? athenaName(logical) : mapChars(rule, logical);
  const u = unique === undefined ? undefined : mapChars(rule, unique);
  const readable = compose(rule.style, p, s, n, undefined, u, join);
  const changes: string[] = [];
  if (n !== logical) changes.push(`'${logical}' has characters (or a case) a ${kind} name cannot have: it became '${n}' plus a hash, so that two names mapping alike stay apart`);
  if (readable.length > rule.max) changes.push(`'${readable}' is ${readable.length} characters, over the ${kind} limit of ${rule.max}: shortened, with a hash of the full name`);
  if (!changes.length) return { kind, logical, name: readable, readable, changes };

  const hash = identityHash(kind, scope, logical, unique);
  const length = () => compose(rule.style, p, s, n, hash, u, join).length;
  // Project first, then the logical name, stage last (the stage is what tells two deployments apart); a first
  // pass leaves each a readable stem, a second cuts to one character.
  const cut = (part: string, keep: number) => {
    const over = length() - rule.max;
    const cutTo = Math.max(Math.min(keep, part.length), part.length - over);
    return over > 0 && cutTo < part.length ? trailingJoiners(part.slice(0, cutTo)) || part.slice(0, 1) : part;
  };
  const scoped = rule.style !== 'unscoped';
  for (const [keepProject, keepName] of [[PROJECT_STEM, NAME_STEM], [1, 1]] as const) {
    if (scoped) p = cut(p, keepProject);
    n = cut(n, keepName);
  }
  if (scoped) s = cut(s, 1);
  n = length() > rule.max ? '' : n;
  const name = compose(rule.style, p, s, n, hash, u, join);
  if (name.length > rule.max) throw new Error(`cannot fit a ${kind} name into ${rule.max} characters: '${name}'`);
  return { kind, logical, name, readable, changes };
}

/** The IAM path of every role and policy of a scope, `/iotctl/<project>/<stage>/` (ListRoles PathPrefix finds exactly these). */
export function iamPath(scope: Scope): string {
  assertScope(scope);
  return `/iotctl/${scope.project}/${scope.stage}/`;
}

/** What every iotctl name of a kind starts with: the only safe server-side prefix filter (a cut project changes the rest). */
export function listingPrefix(kind: NameKind): string {
  const style = NAME_RULES[kind].style;
  return style === 'unscoped' ? '' : style.head;
}

export type NameOwnership = { verdict: 'ours'; logical: string } | { verdict: 'not-ours' } | { verdict: 'check-tags' };

const HASHED = (join: string) => new RegExp(`\\${join}[0-9a-f]{${HASH_HEX}}$`);

/**
 * Whether a physical name found in a listing can be `scope`'s. `ours`: iotctl writes exactly this name for
 * `logical` in this scope (for a lossy mapping, `logical` is the mapped form). `not-ours`: no scope's name in
 * this scope's shape, or another scope's. `check-tags`: a shortened name that may be this scope's (the hash
 * hides which): read its tags. Unscoped kinds always answer `check-tags` (their container tells).
 */
export function ownershipByName(kind: NameKind, physical: string, scope: Scope, unique?: string): NameOwnership {
  assertScope(scope);
  const rule = NAME_RULES[kind];
  const style = rule.style;
  if (style === 'unscoped') return { verdict: 'check-tags' };
  const p = mapChars(rule, scope.project);
  const u = unique === undefined ? undefined : mapChars(rule, unique);
  const uTail = u ? `${style.join}${u}` : '';
  if (!physical.startsWith(style.head) || (uTail && !physical.endsWith(uTail))) return { verdict: 'not-ours' };
  const body = physical.slice(0, physical.length - uTail.length);
  const hashed = HASHED(style.join).test(body);
  const prefix = `${style.head}${p}${style.mid}${scope.stage}${style.end}`;
  if (!hashed) {
    // Never shortened or mapped: the whole scope is there, read unambiguously.
    const logical = body.startsWith(prefix) ? body.slice(prefix.length) : '';
    return logical && physicalNameOrUndefined(kind, scope, logical, unique) === physical ? { verdict: 'ours', logical } : { verdict: 'not-ours' };
  }
  // A hashed name starting with our prefix may still be another project's whose name was cut to ours
  // (`fleet-eu-west` cut to `fleet-eu`): only its tags tell.
  if (body.startsWith(prefix)) return { verdict: 'check-tags' };
  // A shortened name: its project and stage may be cut from ours.
  const read = readScope(style, body);
  if (!read) return { verdict: 'not-ours' };
  const cutFromOurs = p.startsWith(read.project) && scope.stage.startsWith(read.stage);
  return cutFromOurs ? { verdict: 'check-tags' } : { verdict: 'not-ours' };
}

function physicalNameOrUndefined(kind: NameKind, scope: Scope, logical: string, unique?: string): string | undefined {
  try {
    return physicalName(kind, scope, logical, unique).name;
  } catch {
    return undefined;
  }
}

/** The (possibly cut, mapped) project and stage a scoped name carries. */
function readScope(style: Style, body: string): Scope | undefined {
  const rest = body.slice(style.head.length);
  if (style.mid === style.end) {
    // Path styles: `project/stage/name`.
    const [project, stage] = rest.split(style.mid);
    return project && stage ? { project, stage } : undefined;
  }
  const scopePart = rest.slice(0, Math.max(0, rest.indexOf(style.end)));
  const split = scopePart.lastIndexOf(style.mid);
  return split > 0 ? { project: scopePart.slice(0, split), stage: scopePart.slice(split + style.mid.length) } : undefined;
}

// ---------------------------------------------------------------- the stage's names, per resource

/**
 * The physical names of one project and stage, per resource: what adapters create, read back and refer to
 * (a rule's action names the stream's physical name). Roles live under `iamPath(scope)`, and carry their
 * purpose (`fn-`, `rule-`) in the name so that a function and a rule of one logical name never share a role.
 */
export function stageNames(scope: Scope, explicit: ExplicitNames = {}) {
  const name = (kind: NameKind, logical: string) => physicalName(kind, scope, logical).name;
  return {
    scope,
    stream: (logical: string) => explicit.streams?.[logical] ?? name('kinesis-stream', logical),
    function: (logical: string) => explicit.functions?.[logical] ?? name('lambda-function', logical),
    functionRole: (logical: string) => name('iam-role', `fn-${logical}`),
    queue: (logical: string) => name('sqs-queue', logical),
    rule: (logical: string) => explicit.rules?.[logical] ?? name('iot-topic-rule', logical),
    ruleRole: (logical: string) => name('iam-role', `rule-${logical}`),
    devicePolicy: (logical: string) => name('iot-policy', logical),
    deviceGroup: name('iot-thing-group', 'devices'),
    provisioningTemplate: (logical: string) => name('iot-provisioning-template', logical),
    provisioningRole: (logical: string) => name('iam-role', `prov-${logical}`),
    /** The statement of a hook function's resource policy that lets one provisioning template invoke it. */
    hookPermission: (logicalTemplate: string) => `iotctl-provisioning-${name('iot-provisioning-template', logicalTemplate)}`,
    claimPolicy: (logical: string) => name('iot-policy', `${logical}-claim`),
    rolePath: iamPath(scope),
  };
}
export type StageNames = ReturnType<typeof stageNames>;

/**
 * What runs the recent-data store in the account (src/targets/aws/database-ops.ts): the maintenance function
 * and its schedule (with a dead-letter queue and the role Scheduler assumes), the query function, and one
 * Secrets Manager secret per least-privilege database role. Logical names as plans show them.
 */
export const databaseOpsLogical = {
  maintenanceFunction: 'db-maintenance',
  queryFunction: 'db-query',
  schedule: 'db-maintenance',
  scheduleRole: 'db-maintenance-scheduler',
  deadLetterQueue: 'db-maintenance-dlq',
  roleSecret: (role: 'writer' | 'reader') => `database-${role}`,
};

export function databaseOpsNames(scope: Scope, explicit: ExplicitNames = {}) {
  const names = stageNames(scope, explicit);
  const name = (kind: NameKind, logical: string) => physicalName(kind, scope, logical).name;
  const L = databaseOpsLogical;
  return {
    maintenanceFunction: names.function(L.maintenanceFunction),
    queryFunction: names.function(L.queryFunction),
    schedule: name('scheduler-schedule', L.schedule),
    scheduleRole: name('iam-role', L.scheduleRole),
    deadLetterQueue: names.queue(L.deadLetterQueue),
    roleSecret: (role: 'writer' | 'reader') => name('secret', L.roleSecret(role)),
    rolePath: names.rolePath,
  };
}
export type DatabaseOpsNames = ReturnType<typeof databaseOpsNames>;

/**
 * The datalake engine's physical names in a stage, from the logical names model.ts gives its resources
 * (`ch-<channel>`, `pl-<pipeline>`, `transform-<pipeline>`, roles `<that>-firehose` / `-lambda` /
 * `<dataset>-scheduler`, queries and schedules `<dataset>`). One Glue database per stage; tables keep the
 * datastore's name inside it. `bucket` is the scoped bucket: the default stage may keep the bucket of a
 * deployment made before stage-scoped names (datalake.ts `lakeBucket`, it holds the data).
 */
export function stageDatalakeNames(scope: Scope, place: { accountId: string; region: string; bucket?: string }) {
  const name = (kind: NameKind) => (logical: string) => physicalName(kind, scope, logical).name;
  const stream = name('firehose-delivery-stream');
  const fn = name('lambda-function');
  const bucket = place.bucket ?? physicalName('s3-bucket', scope, 'lake', `${place.accountId}-${place.region}`).name;
  return {
    scope,
    bucket,
    /** The bucket is the one a deployment before stage-scoped names made (the default stage keeps it). */
    legacyBucket: bucket === datalakeNames(scope.project, place).bucket,
    database: lakeDatabase(scope),
    stream,
    function: fn,
    role: name('iam-role'),
    table: name('glue-table'),
    query: name('athena-named-query'),
    schedule: name('scheduler-schedule'),
    rolePath: iamPath(scope),
    channelStream: (channel: string) => stream(datalakeLogical.channelStream(channel)),
    pipelineStream: (pipeline: string) => stream(datalakeLogical.pipelineStream(pipeline)),
    transformFunction: (pipeline: string) => fn(datalakeLogical.transformFunction(pipeline)),
  };
}

/** The logical names of the datalake's resources (what plans and `status` show); stageDatalakeNames makes them physical. */
export const datalakeLogical = {
  lake: 'lake',
  channelStream: (channel: string) => `ch-${channel}`,
  pipelineStream: (pipeline: string) => `pl-${pipeline}`,
  transformFunction: (pipeline: string) => `transform-${pipeline}`,
  streamRole: (stream: string) => `${stream}-firehose`,
  functionRole: (fn: string) => `${fn}-lambda`,
  scheduleRole: (dataset: string) => `${dataset}-scheduler`,
};

/** A Glue table's physical name in plans, `<database>.<table>`: moving it to another database is a rename. */
export const qualifiedTable = (database: string, table: string) => `${database}.${table}`;
export function splitQualifiedTable(physical: string): [database: string, table: string] {
  const dot = physical.indexOf('.');
  return [physical.slice(0, dot), physical.slice(dot + 1)];
}

/** The log group Lambda writes a function's logs to (AWS's convention). */
export const lambdaLogGroup = (fn: string) => `/aws/lambda/${fn}`;
/** The log group a Firehose delivery stream reports its errors to. */
export const firehoseLogGroup = (stream: string) => `/aws/kinesisfirehose/${stream}`;
export type StageDatalakeNames = ReturnType<typeof stageDatalakeNames>;
/** The stage's Glue database: the datastores' tables, and the default database of `athena run`. */
export const lakeDatabase = (scope: Scope) => physicalName('glue-database', scope, 'lake').name;

/** Names iotctl.yaml gives explicitly (`physicalName:`, a resource built by hand and adopted), per kind and logical name. */
export interface ExplicitNames {
  streams?: Record<string, string>;
  functions?: Record<string, string>;
  rules?: Record<string, string>;
}

/** The explicit names of a spec. */
export function explicitNames(spec: { streams: { name: string; physicalName?: string }[]; functions: { name: string; physicalName?: string }[]; rules: { name: string; physicalName?: string }[] }): ExplicitNames {
  const of = (list: { name: string; physicalName?: string }[]) => Object.fromEntries(list.filter((r) => r.physicalName).map((r) => [r.name, r.physicalName!]));
  return { streams: of(spec.streams), functions: of(spec.functions), rules: of(spec.rules) };
}

// ---------------------------------------------------------------- the names deployments carry today

/*
 * What aws adapters wrote before stage-scoped names: deployments made then carry these names, which adapters
 * read back to move them to `stageNames` (plan/index.ts: a rename, data-bearing resources kept). Adapters
 * never build a name themselves.
 */

/** Shortens `name` to `max` with 8 hex of SHA-256 over `identity` (the whole name unless said otherwise). */
export function shortened(name: string, max = 64, identity = name): string {
  if (name.length <= max) return name;
  return `${name.slice(0, max - 9)}-${createHash('sha256').update(identity).digest('hex').slice(0, 8)}`;
}

/** The role iotctl creates for a rule whose actions name no roleArn (IAM: 64 characters). */
export const ruleRoleName = (rule: string) => shortened(`iotctl-rule-${rule}`, 64, rule);
/** The statement id of the Lambda permission a rule's lambda action got from older versions (at most 100 characters). */
export const rulePermissionId = (rule: string) => `iotctl-rule-${rule}`.slice(0, 100);
/**
 * The statement id of the Lambda permission a rule's lambda action gets today: its physical name (unique per
 * project and stage, `[a-zA-Z0-9_]`), shortened with a hash to the 100 characters a statement id may have.
 */
export const rulePermissionStatement = (physicalRule: string) => shortened(physicalRule, 100);

/** The execution role of a deployed function, and the name of its inline policy. */
export const functionRoleName = (fn: string) => shortened(`iotctl-fn-${fn}`, 64, fn);
export const FUNCTION_ROLE_POLICY = 'iotctl-function';

/** One database secret per project and stage; the default stage keeps the name older iotctl versions used. */
export const databaseSecretName = (project: string, stage: string) => (stage === DEFAULT_STAGE ? `iotctl/${project}/database` : `iotctl/${project}/${stage}/database`);

/** The datalake engine's names before stage-scoped names (read back only, to move such a deployment; never created). */
export function datalakeNames(project: string, place: { accountId: string; region: string }) {
  const p = `iotctl-${project}`;
  return {
    prefix: `${p}-`,
    bucket: shortened(`${p}-${place.accountId}-${place.region}`.toLowerCase(), 63),
    channelStream: (channel: string) => shortened(`${p}-ch-${channel}`),
    pipelineStream: (pipeline: string) => shortened(`${p}-pl-${pipeline}`),
    streamRole: (stream: string) => shortened(`${stream}-firehose`),
    transformPrefix: `${p}-transform-`,
    transformFunction: (pipeline: string) => shortened(`${p}-transform-${pipeline}`),
    functionRole: (fn: string) => shortened(`${fn}-lambda`),
    table: (datastore: string) => datastore.toLowerCase(),
    query: (dataset: string) => shortened(`${p}-${dataset}`),
    schedule: (dataset: string) => shortened(`${p}-${dataset}`),
    scheduleRole: (dataset: string) => shortened(`${p}-${dataset}-scheduler`),
    rolePath: datalakeRolePath(project),
  };
}

/** Every role the datalake creates lives under this IAM path, so listing finds them (and only them). */
export const datalakeRolePath = (project: string) => `/iotctl/${project}/`;

/** The ids of iotctl's expiration rules in the datalake bucket; others' rules (any other id) are kept. */
export const LIFECYCLE_RULE_PREFIX = 'iotctl-';
export const lifecycleRuleId = (kind: 'channel' | 'datastore' | 'dataset', name: string) => `${LIFECYCLE_RULE_PREFIX}${kind}-${name}`;

/** The legacy IoT Analytics engine's roles, under their own IAM path apart from the datalake's (which prunes its own). */
export function iotAnalyticsNames(project: string) {
  return {
    rolePath: `/iotctl-iotanalytics/${project}/`,
    enrichRole: shortened(`iotctl-${project}-iotanalytics-enrich`),
    exportRole: shortened(`iotctl-${project}-iotanalytics-export`),
  };
}

// ---------------------------------------------------------------- ARNs

/** The partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, the ISO partitions, else `aws`. */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-isof-')) return 'aws-iso-f';
  if (region.startsWith('eu-isoe-')) return 'aws-iso-e';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  return 'aws';
}

export interface ArnPlace {
  region: string;
  account: string;
}

/** Where a kind's ARN needs more than its name: the IAM path, the schedule group, the table's database. */
export interface ArnExtra {
  path?: string;
  group?: string;
  database?: string;
}

type ArnKind = Exclude<NameKind, 'athena-named-query'>;

/**
 * The ARN of a resource, in the region's partition. A secret's ARN ends in 6 random characters AWS adds, so
 * this gives the `-??????` form IAM policies use for it. Named queries have no ARN (they have ids).
 */
export function arnOf(kind: ArnKind, place: ArnPlace, name: string, extra: ArnExtra = {}): string {
  const P = partitionOf(place.region);
  const at = (service: string, resource: string, region = place.region, account = place.account) => `arn:${P}:${service}:${region}:${account}:${resource}`;
  const need = (v: string | undefined, what: string) => {
    if (!v) throw new Error(`the ARN of a ${kind} needs its ${what}`);
    return v;
  };
  switch (kind) {
    case 'kinesis-stream': return at('kinesis', `stream/${name}`);
    case 'firehose-delivery-stream': return at('firehose', `deliverystream/${name}`);
    case 'lambda-function': return at('lambda', `function:${name}`);
    case 'sqs-queue': return at('sqs', name);
    case 'iam-role': return at('iam', `role${extra.path ?? '/'}${name}`, '');
    case 'iam-policy': return at('iam', `policy${extra.path ?? '/'}${name}`, '');
    case 'iot-topic-rule': return at('iot', `rule/${name}`);
    case 'iot-policy': return at('iot', `policy/${name}`);
    case 'iot-thing-group': return at('iot', `thinggroup/${name}`);
    case 'iot-provisioning-template': return at('iot', `provisioningtemplate/${name}`);
    case 'scheduler-schedule': return at('scheduler', `schedule/${need(extra.group, 'schedule group')}/${name}`);
    case 'scheduler-schedule-group': return at('scheduler', `schedule-group/${name}`);
    case 'glue-database': return at('glue', `database/${name}`);
    case 'glue-table': return at('glue', `table/${need(extra.database, 'database')}/${name}`);
    case 'athena-workgroup': return at('athena', `workgroup/${name}`);
    case 's3-bucket': return at('s3', name, '', '');
    case 'secret': return at('secretsmanager', `secret:${name}-??????`);
    case 'log-group': return at('logs', `log-group:${name}`);
  }
}
