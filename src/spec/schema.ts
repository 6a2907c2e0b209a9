import { z } from 'zod';
import { projectNameProblem, stageNameProblem } from './names.js';
import { DEFAULT_RUNTIME } from './runtimes.js';

/** iotctl.yaml: the desired state of the platform. Every section but `project` has defaults. */

const name = (what: string) =>
  z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, `${what} may use letters, digits, '_' and '-' (1-128 characters)`);

const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)$/, 'a duration like 90s, 15m, 24h or 7d');

/** AWS schedule expressions, as EventBridge and IoT Analytics write them. */
export const scheduleExpression = z
  .string()
  .regex(/^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^)]+\))$/, "an AWS schedule: 'rate(1 hour)' or 'cron(0 2 * * ? *)'");

export const policyDocument = z.object({
  Version: z.string().default('2012-10-17'),
  Statement: z
    .array(
      z.object({
        Sid: z.string().optional(),
        Effect: z.enum(['Allow', 'Deny']),
        Action: z.union([z.string(), z.array(z.string())]),
        Resource: z.union([z.string(), z.array(z.string())]),
        Condition: z.record(z.string(), z.record(z.string(), z.union([z.string(), z.array(z.string())]))).optional(),
      }),
    )
    .min(1),
});
export type PolicyDocument = z.infer<typeof policyDocument>;

/** `{{Name}}` in a provisioning value: a template parameter the device sends (AWS's `{"Ref": "Name"}`). */
export const PROVISIONING_PARAMETER = /\{\{([A-Za-z0-9_]+)\}\}/g;
const withParameters = (what: string) =>
  z.string().min(1).superRefine((value, ctx) => {
    const rest = value.replace(PROVISIONING_PARAMETER, '');
    if (/\{\{|\}\}/.test(rest)) ctx.addIssue({ code: 'custom', message: `${what}: a parameter is written {{Name}}, with letters, digits and _ only` });
  });

const provisioning = z
  .object({
    /** The provisioning template's name (on aws, scoped by project and stage; AWS allows 36 characters). */
    template: z.string().regex(/^[0-9A-Za-z_-]{1,36}$/, 'a provisioning template name: 1 to 36 letters, digits, _ and -'),
    description: z.string().max(500).default(''),
    /** The thing each device becomes, from the parameters it sends: `sensor-{{SerialNumber}}`. */
    thingName: withParameters('thingName'),
    /** Thing attributes, with parameters: `serial: "{{SerialNumber}}"`. */
    attributes: z.record(z.string(), withParameters('an attribute')).default({}),
    /** A function of this spec run before each device is provisioned (AWS's pre-provisioning hook). */
    preProvisioningHook: z.string().optional(),
    enabled: z.boolean().default(true),
  })
  .strict();
export type ProvisioningSpec = z.infer<typeof provisioning>;

const devices = z
  .object({
    thingType: name('thingType').default('sensor'),
    attributes: z.record(z.string(), z.string()).default({}),
    topics: z
      .object({
        /** The topic a device publishes telemetry on. ${project} and ${thing} are substituted. */
        telemetry: z.string().default('dt/${project}/${thing}/telemetry'),
        /** The filter a device subscribes to for commands. */
        commands: z.string().default('cmd/${project}/${thing}/#'),
      })
      .default({ telemetry: 'dt/${project}/${thing}/telemetry', commands: 'cmd/${project}/${thing}/#' }),
    policy: z
      .object({
        name: name('policy name').default('iotctl-device'),
        /** A custom IoT policy document; the default is least privilege (see README). */
        document: policyDocument.optional(),
      })
      .default({ name: 'iotctl-device' }),
    /** Validity of device certificates the local CA issues (default 365d); AWS-signed certificates keep AWS's. */
    certificateValidity: z
      .string()
      .regex(/^\d+(s|m|h|d|w|y)$/, 'a duration like 1h, 30d or 1y')
      .optional(),
    /** Fleet provisioning by claim (see README): a template devices call over MQTT with the claim certificate. */
    provisioning: provisioning.optional(),
  })
  .default({
    thingType: 'sensor',
    attributes: {},
    topics: { telemetry: 'dt/${project}/${thing}/telemetry', commands: 'cmd/${project}/${thing}/#' },
    policy: { name: 'iotctl-device' },
  });

/**
 * aws only: the name the resource has on AWS, instead of the stage-scoped one iotctl computes
 * (src/targets/aws/naming.ts): for a resource built by hand that `apply --adopt` takes over.
 */
const physicalName = (pattern: RegExp, rule: string) => z.string().regex(pattern, rule).optional();

const stream = z.object({
  name: name('stream name'),
  physicalName: physicalName(/^[a-zA-Z0-9_.-]{1,128}$/, 'a Kinesis stream name: 1 to 128 letters, digits, _ . -'),
  shards: z.number().int().min(1).max(64).default(1),
  retentionHours: z.number().int().min(1).max(8760).default(24),
  /** Kinesis capacity mode (default provisioned); on-demand ignores `shards` (aws only; local keeps `shards`). */
  mode: z.enum(['provisioned', 'on-demand']).optional(),
});

/** The role IoT assumes to run an action on AWS; when absent, iotctl creates one least-privilege role per rule. */
const roleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'an IAM role ARN: arn:aws:iam::123456789012:role/name').optional();

const ruleAction = z.union([
  z.object({ kinesis: z.object({ stream: z.string(), partitionKey: z.string().default('${newuuid()}'), roleArn }).strict() }).strict(),
  z.object({ iotAnalytics: z.object({ channel: z.string(), roleArn }).strict() }).strict(),
  z.object({ republish: z.object({ topic: z.string(), qos: z.union([z.literal(0), z.literal(1)]).default(0), roleArn }).strict() }).strict(),
  z.object({ s3: z.object({ bucket: z.string(), key: z.string(), roleArn }).strict() }).strict(),
  z.object({ firehose: z.object({ deliveryStream: z.string(), separator: z.string().optional(), roleArn }).strict() }).strict(),
  z.object({ lambda: z.object({ function: z.string() }).strict() }).strict(),
  /** AWS's usual errorAction: each failure as a log event in a CloudWatch Logs group. */
  z.object({ cloudwatchLogs: z.object({ logGroup: z.string().regex(/^[\w\-/.#]{1,512}$/, 'a CloudWatch Logs group name'), roleArn }).strict() }).strict(),
]);
export type RuleAction = z.infer<typeof ruleAction>;

const rule = z.object({
  name: z.string().regex(/^[a-zA-Z0-9_]{1,128}$/, 'rule names may use letters, digits and _ (AWS topic rule naming)'),
  physicalName: physicalName(/^[a-zA-Z0-9_]{1,128}$/, 'an AWS topic rule name: 1 to 128 letters, digits and _'),
  description: z.string().default(''),
  sql: z.string().min(1),
  enabled: z.boolean().default(true),
  actions: z.array(ruleAction).min(1),
  errorAction: ruleAction.optional(),
});
export type RuleSpec = z.infer<typeof rule>;

const eventSource = z.object({
  stream: z.string(),
  batchSize: z.number().int().min(1).max(10000).default(100),
  maximumBatchingWindowSeconds: z.number().min(0).max(300).default(0),
  startingPosition: z.enum(['TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP']).default('TRIM_HORIZON'),
  startingPositionTimestamp: z.string().optional(),
  maximumRetryAttempts: z.number().int().min(-1).max(10000).default(-1),
  maximumRecordAgeInSeconds: z.number().int().min(-1).max(604800).default(-1),
  bisectBatchOnFunctionError: z.boolean().default(false),
  reportBatchItemFailures: z.boolean().default(true),
  /** Where records that exhausted their retries are described (AWS: SQS/SNS; local: a named destination table). */
  onFailure: z.string().optional(),
});

const fn = z.object({
  name: name('function name'),
  physicalName: physicalName(/^[a-zA-Z0-9_-]{1,64}$/, 'a Lambda function name: 1 to 64 letters, digits, _ and -'),
  template: z.string(),
  /** The Lambda runtime (and the bundle's esbuild target); a deprecated one is refused by checks.ts. */
  runtime: z.string().regex(/^nodejs\d+\.x$/, 'a Lambda Node.js runtime, e.g. nodejs22.x or nodejs24.x').default(DEFAULT_RUNTIME),
  timeoutSeconds: z.number().int().min(1).max(900).default(30),
  memoryMb: z.number().int().min(128).max(10240).default(256),
  environment: z.record(z.string(), z.string()).default({}),
  /** Variables of `environment` that may hold a secret in plain text (refused otherwise; see README). */
  allowPlaintextSecrets: z.array(z.string()).optional(),
  eventSource: eventSource.optional(),
  /** aws only: the execution role; when absent, iotctl creates a least-privilege one. */
  roleArn,
  /** aws only: run inside these subnets (to reach RDS in a VPC). */
  vpc: z.object({ subnetIds: z.array(z.string()).min(1), securityGroupIds: z.array(z.string()).min(1) }).strict().optional(),
});
export type FunctionSpec = z.infer<typeof fn>;
export type EventSourceSpec = z.infer<typeof eventSource>;

const database = z
  .object({
    /** Overridden by DATABASE_URL / PG* when set. Empty on local means the embedded server. */
    url: z.string().optional(),
    /** aws only: an RDS instance (DescribeDBInstances), with IAM auth or a Secrets Manager secret. */
    rds: z
      .object({
        instance: z.string(),
        user: z.string().default('postgres'),
        database: z.string().default('postgres'),
        iamAuth: z.boolean().default(false),
        secretArn: z.string().optional(),
        /** An RDS Proxy endpoint to connect through instead of the instance's. */
        proxyEndpoint: z.string().optional(),
      })
      .strict()
      .optional(),
    retention: duration.default('24h'),
    retentionSchedule: scheduleExpression.default('rate(1 hour)'),
  })
  .default({ retention: '24h', retentionSchedule: 'rate(1 hour)' });

const activity = z.union([
  z.object({ filter: z.object({ filter: z.string() }).strict() }).strict(),
  z.object({ selectAttributes: z.object({ attributes: z.array(z.string()).min(1) }).strict() }).strict(),
  z.object({ removeAttributes: z.object({ attributes: z.array(z.string()).min(1) }).strict() }).strict(),
  z.object({ addAttributes: z.object({ attributes: z.record(z.string(), z.string()) }).strict() }).strict(),
  z.object({ math: z.object({ attribute: z.string(), math: z.string() }).strict() }).strict(),
  z.object({ lambda: z.object({ function: z.string(), batchSize: z.number().int().min(1).max(1000).default(100) }).strict() }).strict(),
  z.object({ deviceRegistryEnrich: z.object({ attribute: z.string(), thingName: z.string() }).strict() }).strict(),
  z.object({ deviceShadowEnrich: z.object({ attribute: z.string(), thingName: z.string() }).strict() }).strict(),
]);
export type ActivitySpec = z.infer<typeof activity>;

const analytics = z
  .object({
    engine: z.enum(['datalake', 'iotanalytics']).default('datalake'),
    channels: z.array(z.object({ name: name('channel name'), retentionDays: z.number().int().min(1).optional() })).default([]),
    pipelines: z.array(z.object({ name: name('pipeline name'), channel: z.string(), activities: z.array(activity).default([]), datastore: z.string() })).default([]),
    datastores: z
      .array(z.object({ name: name('datastore name'), format: z.enum(['parquet', 'json']).default('parquet'), retentionDays: z.number().int().min(1).optional() }))
      .default([]),
    datasets: z
      .array(
        z.object({
          name: name('dataset name'),
          sql: z.string().min(1),
          schedule: scheduleExpression.optional(),
          deltaTime: z.object({ offsetSeconds: z.number().int().default(0), timeExpression: z.string() }).optional(),
          versionsToKeep: z.number().int().min(1).max(1000).default(1),
        }),
      )
      .default([]),
  })
  .default({ engine: 'datalake', channels: [], pipelines: [], datastores: [], datasets: [] });
export type AnalyticsSpec = z.infer<typeof analytics>;

/** A name checked by one of names.ts's *NameProblem functions: its message, and the name to use instead. */
const checkedName = (problemOf: (name: string) => { message: string; suggestion: string } | undefined) =>
  z.string().superRefine((value, ctx) => {
    const problem = problemOf(value);
    if (problem) ctx.addIssue({ code: 'custom', message: `${problem.message}; try '${problem.suggestion}'` });
  });
export const stageName = checkedName(stageNameProblem);

/** An AWS account id. A string: unquoted, YAML would read 012345678901 as a number and drop the 0. */
const account = z
  .string({ error: 'an AWS account id: 12 digits, quoted ("123456789012") so that YAML keeps it a string' })
  .regex(/^\d{12}$/, 'an AWS account id: 12 digits, quoted ("123456789012")')
  .optional();

/** The top-level keys a stage override may not set: a stage belongs to its project, and stages do not nest. */
export const STAGE_FIXED_KEYS = ['project', 'stage', 'stages'] as const;

const specShape = {
  project: checkedName(projectNameProblem),
  /** The stage this file deploys when neither --stage nor IOTCTL_STAGE says (default: `default`). */
  stage: stageName.optional(),
  target: z.enum(['local', 'aws']).default('local'),
  region: z.string().default('us-east-1'),
  /** The AWS account the stage must be deployed into (commands refuse other credentials). */
  account,
  local: z
    .object({
      host: z.string().default('127.0.0.1'),
      mqttPort: z.number().int().min(0).max(65535).default(8883),
      /** Open connections the broker accepts; more are closed at once, before TLS. */
      maxConnections: z.number().int().min(1).max(1_000_000).default(1000),
      /** A connection that has not finished its TLS handshake (or sent CONNECT) by then is closed. */
      handshakeTimeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    })
    .default({ host: '127.0.0.1', mqttPort: 8883, maxConnections: 1000, handshakeTimeoutMs: 10_000 }),
  devices,
  streams: z.array(stream).default([]),
  rules: z.array(rule).default([]),
  functions: z.array(fn).default([]),
  database,
  analytics,
  athena: z.object({ database: z.string().default('iotctl'), workgroup: z.string().default('primary'), outputLocation: z.string().optional() }).default({ database: 'iotctl', workgroup: 'primary' }),
};

/**
 * One stage's overrides: any top-level key but project, stage and stages, merged into the base spec by the rule
 * in stages.ts; the merged spec is then validated whole, so the values are checked there (as `unknown` here).
 * An empty stage (`prod:` with nothing under it) declares the stage with no overrides.
 */
const stageOverride = z
  .object(Object.fromEntries(Object.keys(specShape).filter((k) => !(STAGE_FIXED_KEYS as readonly string[]).includes(k)).map((k) => [k, z.unknown().optional()])))
  .strict()
  .nullable();

export const specSchema = z
  .object({
    ...specShape,
    /** Per-stage overrides: `stages: { prod: { region: eu-west-1, streams: [{ name: telemetry, shards: 8 }] } }`. */
    stages: z.record(stageName, stageOverride).optional(),
  })
  .strict();

export type Spec = z.infer<typeof specSchema>;
export type SpecInput = z.input<typeof specSchema>;
