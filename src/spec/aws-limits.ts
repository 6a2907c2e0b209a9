/**
 * The aws target's numeric limits: each spec field that iotctl sends as an AWS API member, with that member's
 * type and range as AWS's API models state them (botocore's service-2.json; test/unit/spec/aws-limits.test.ts
 * reads the models and fails when a row here differs), plus the documented rules the models leave out.
 * `spec validate` refuses a value AWS would refuse (or silently truncate, as Lambda does with a fractional
 * integer) at its file:line:col, instead of iotctl rounding it.
 */

export interface AwsMemberLimit {
  /** The spec path, `*` for any list index. */
  path: string;
  /** Where the value goes: botocore service, operation and member path (`[]` steps into a list). */
  api: { service: string; operation: string; member: string };
  /** How the service is named in messages. */
  serviceName: string;
  /** What the number counts, for messages ("seconds"). */
  unit?: string;
  integer: boolean;
  min?: number;
  max?: number;
  /** A rule AWS documents beyond the model: the message when `ok` is false. */
  documented?: { ok: (v: number) => boolean; rule: string; hint: string };
  /** Only for this analytics engine (the datalake's S3 lifecycle, not IoT Analytics' retention). */
  engine?: 'datalake' | 'iotanalytics';
}

export const AWS_MEMBER_LIMITS: AwsMemberLimit[] = [
  { path: 'streams.*.shards', api: { service: 'kinesis', operation: 'CreateStream', member: 'ShardCount' }, serviceName: 'Kinesis', unit: 'shards', integer: true, min: 1 },
  {
    path: 'streams.*.retentionHours',
    api: { service: 'kinesis', operation: 'IncreaseStreamRetentionPeriod', member: 'RetentionPeriodHours' },
    serviceName: 'Kinesis',
    unit: 'hours',
    integer: true,
    // Kinesis Data Streams developer guide, "Changing the data retention period": 24 hours to 8760 hours (365 days).
    documented: { ok: (v) => v >= 24 && v <= 8760, rule: 'a stream keeps records for 24 to 8760 hours', hint: 'Use 24 (the default) up to 8760.' },
  },
  { path: 'functions.*.timeoutSeconds', api: { service: 'lambda', operation: 'CreateFunction', member: 'Timeout' }, serviceName: 'Lambda', unit: 'seconds', integer: true, min: 1 },
  { path: 'functions.*.memoryMb', api: { service: 'lambda', operation: 'CreateFunction', member: 'MemorySize' }, serviceName: 'Lambda', unit: 'MB', integer: true, min: 128, max: 32768 },
  { path: 'functions.*.eventSource.batchSize', api: { service: 'lambda', operation: 'CreateEventSourceMapping', member: 'BatchSize' }, serviceName: 'Lambda', unit: 'records', integer: true, min: 1, max: 10000 },
  {
    path: 'functions.*.eventSource.maximumBatchingWindowSeconds',
    api: { service: 'lambda', operation: 'CreateEventSourceMapping', member: 'MaximumBatchingWindowInSeconds' },
    serviceName: 'Lambda',
    unit: 'seconds',
    integer: true,
    min: 0,
    max: 300,
  },
  { path: 'functions.*.eventSource.maximumRetryAttempts', api: { service: 'lambda', operation: 'CreateEventSourceMapping', member: 'MaximumRetryAttempts' }, serviceName: 'Lambda', integer: true, min: -1, max: 10000 },
  {
    path: 'functions.*.eventSource.maximumRecordAgeInSeconds',
    api: { service: 'lambda', operation: 'CreateEventSourceMapping', member: 'MaximumRecordAgeInSeconds' },
    serviceName: 'Lambda',
    unit: 'seconds',
    integer: true,
    min: -1,
    max: 604800,
    // Lambda API reference, CreateEventSourceMapping: "The minimum valid value for maximum record age is 60s".
    documented: { ok: (v) => v === -1 || v >= 60, rule: 'the maximum record age is -1 (no limit) or at least 60 seconds', hint: 'Use -1, or 60 up to 604800.' },
  },
  // The datalake expires raw channel and datastore objects with an S3 lifecycle rule (Expiration.Days).
  { path: 'analytics.channels.*.retentionDays', api: { service: 's3', operation: 'PutBucketLifecycleConfiguration', member: 'LifecycleConfiguration.Rules.[].Expiration.Days' }, serviceName: 'S3', unit: 'days', integer: true, engine: 'datalake' },
  { path: 'analytics.datastores.*.retentionDays', api: { service: 's3', operation: 'PutBucketLifecycleConfiguration', member: 'LifecycleConfiguration.Rules.[].Expiration.Days' }, serviceName: 'S3', unit: 'days', integer: true, engine: 'datalake' },
];

/** Every value at `path` in `root` with its concrete path (`*` expanded over lists). */
export function valuesAt(root: unknown, path: string): { path: (string | number)[]; value: unknown }[] {
  let found: { path: (string | number)[]; value: unknown }[] = [{ path: [], value: root }];
  for (const part of path.split('.')) {
    const next: typeof found = [];
    for (const f of found) {
      if (part === '*') {
        if (Array.isArray(f.value)) f.value.forEach((v, i) => next.push({ path: [...f.path, i], value: v }));
      } else if (f.value && typeof f.value === 'object' && part in (f.value as object)) {
        next.push({ path: [...f.path, part], value: (f.value as Record<string, unknown>)[part] });
      }
    }
    found = next;
  }
  return found;
}

/** Why AWS would refuse `v` for this member, or undefined. */
export function limitProblem(limit: AwsMemberLimit, v: number): { message: string; hint: string } | undefined {
  const member = limit.api.member.split('.').at(-1)!;
  const range = limit.min !== undefined && limit.max !== undefined ? ` from ${limit.min} to ${limit.max}` : limit.min !== undefined ? ` of at least ${limit.min}` : limit.max !== undefined ? ` of at most ${limit.max}` : '';
  const what = `${limit.serviceName}'s ${member} (${limit.api.operation}) is an ${limit.integer ? 'integer' : 'number'}${range}`;
  if (limit.integer && !Number.isInteger(v)) {
    const rounded = Math.min(limit.max ?? Infinity, Math.max(limit.min ?? -Infinity, Math.round(v)));
    return { message: `${v} is not a whole number${limit.unit ? ` of ${limit.unit}` : ''}: ${what}; AWS would refuse or truncate it`, hint: `Use ${rounded}${member === 'MaximumBatchingWindowInSeconds' ? ' (0 sends each batch as soon as records arrive)' : ''}.` };
  }
  if ((limit.min !== undefined && v < limit.min) || (limit.max !== undefined && v > limit.max)) return { message: `${v} is out of range: ${what}`, hint: `Use a value${range}.` };
  if (limit.documented && !limit.documented.ok(v)) return { message: `${v} is refused by ${limit.serviceName}: ${limit.documented.rule}`, hint: limit.documented.hint };
  return undefined;
}
