import type { EventSourceSpec, RuleSpec } from './spec/schema.js';
import type { PolicyDocument } from './iot/policy/index.js';
import type { PlanItem, Resource } from './iot/plan/index.js';
import type { CertificateView, RotationState } from './iot/certificates.js';

/**
 * The ports commands and services program against. `targets/local` (the embedded platform) and
 * `targets/aws` (SDK v3) implement the same interfaces; each lists only the operations the commands use.
 * Types here are target-neutral: no adapter's own types leak through them.
 */

// ---------------------------------------------------------------- devices

export interface RegisterDeviceInput {
  thingName: string;
  thingType: string;
  attributes: Record<string, string>;
  policyName: string;
  csrPem?: string;
  /** aws only: let AWS generate the key pair (CreateKeysAndCertificate) instead of a local CSR. */
  awsGeneratedKeys?: boolean;
  /** Local CA only: the certificate's validity (aws: AWS signs with its own validity). */
  validityMs?: number;
}

/** A further certificate for an existing thing (rotation): active, with the device policy and the thing attached. */
export interface AddCertificateInput {
  thingName: string;
  policyName: string;
  csrPem?: string;
  validityMs?: number;
}

/** What the target knows of a certificate's connections since a moment. */
export interface ConnectionEvidence {
  /** False where the target cannot see connections (aws without fleet indexing connectivity). */
  known: boolean;
  connected: boolean;
  evidence?: string;
}

export interface RegisteredDevice {
  thingName: string;
  certificateId: string;
  fingerprint: string;
  certPem: string;
  /** Only when the key was generated here or by AWS (no CSR given). */
  keyPem?: string;
  caPem: string;
  endpoint: Endpoint;
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface DeviceSummary {
  thingName: string;
  thingType: string;
  attributes: Record<string, string>;
  certificateId: string | null;
  certificateStatus: string | null;
  createdAt: string;
  /** aws: registered before stage groups (found through the legacy device policy), not in this stage's thing group yet. */
  legacy?: true;
}

export interface DeviceDetails extends DeviceSummary {
  fingerprint: string | null;
  notAfter: string | null;
  policies: string[];
}

export interface DeviceRegistryPort extends ProvisioningPort {
  endpoint(): Promise<Endpoint>;
  caPem(): Promise<string>;
  putPolicy(name: string, document: PolicyDocument): Promise<void>;
  getPolicy(name: string): Promise<PolicyDocument | undefined>;
  exists(thingName: string): Promise<boolean>;
  register(input: RegisterDeviceInput): Promise<RegisteredDevice>;
  list(): Promise<DeviceSummary[]>;
  show(thingName: string): Promise<DeviceDetails | undefined>;
  /** `revoked`: AWS's REVOKED status (permanent) rather than INACTIVE. Local has one status. */
  revoke(thingName: string, opts?: { revoked?: boolean }): Promise<{ revoked: string[] }>;
  delete(thingName: string): Promise<{ deletedCertificates: string[] }>;
  /** Workers for bulk registration (aws: from its API rates). */
  bulkConcurrency(): Promise<number>;
  /** The names of the stage's things (cheap: no per-thing calls). */
  thingNames(): Promise<string[]>;
  /** The stage's things' certificates (one thing's with `thingName`); `orphans` adds the stage's certificates attached to no thing. */
  certificates(opts?: { thingName?: string; orphans?: boolean }): Promise<CertificateView[]>;
  addCertificate(input: AddCertificateInput): Promise<RegisteredDevice & { notAfter: string | null }>;
  /** Rotations in progress (one thing's with `thingName`). */
  rotations(thingName?: string): Promise<RotationState[]>;
  /** Records (or with undefined, clears) a thing's rotation in progress. */
  setRotation(thingName: string, state: RotationState | undefined): Promise<void>;
  /** Whether the certificate connected at or after `sinceMs`. */
  connectedSince(certificateId: string, thingName: string, sinceMs: number): Promise<ConnectionEvidence>;
  /** Deactivates a certificate, detaches its policies and things, and deletes it. */
  retireCertificate(certificateId: string): Promise<void>;
  /** aws: the per-API rates bulk registration paces at (the account's quotas), with where each comes from. */
  apiRates?(): Promise<ApiRatesInfo>;
  /** aws: the device policy and the stage's thing group as deployed, for the plan (the local target has getPolicy only). */
  deployed?(policyName: string): Promise<DeployedDevices>;
  /** aws: creates the stage's thing group (tagged) when it is missing. */
  ensureGroup?(): Promise<void>;
  /**
   * aws: deletes the device policy `name` of this stage, or the one under `physical` (an older deployment's
   * name): its certificates get the stage's policy, and their things join the stage's group, before it is detached.
   */
  deletePolicy?(name: string, physical?: string): Promise<void>;
}

/** `devices.provisioning` as the ports take it: logical names; each target renders its template body. */
export interface ProvisioningTemplateInput {
  name: string;
  description: string;
  thingName: string;
  attributes: Record<string, string>;
  enabled: boolean;
  /** The device policy (logical name). */
  policyName: string;
  thingType: string;
  /** A function of the spec (logical name). */
  preProvisioningHook?: string;
}

/** What a plan compares of a provisioning template: as the target holds it. */
export interface ProvisioningTemplateConfig {
  templateBody: Record<string, unknown>;
  description: string;
  enabled: boolean;
  /** local: the function's name; aws: its ARN. */
  preProvisioningHook?: string;
  /** aws: the provisioning role the template runs as. */
  provisioningRole?: string;
}

export interface DeployedProvisioningTemplate extends PhysicalIdentity {
  name: string;
  config: ProvisioningTemplateConfig;
}

/** The shared claim certificate a factory flashes into every device. */
export interface ClaimCertificate {
  template: string;
  certificateId: string;
  certPem: string;
  keyPem?: string;
  caPem: string;
  policyName: string;
  endpoint: Endpoint;
}

/** Fleet provisioning by claim (devices.provisioning), on both targets. */
export interface ProvisioningPort {
  templateConfig(input: ProvisioningTemplateInput): Promise<ProvisioningTemplateConfig>;
  /** The templates this project and stage own (logical names); `declared`: whether the spec names one. */
  listTemplates(declared?: boolean): Promise<DeployedProvisioningTemplate[]>;
  putTemplate(input: ProvisioningTemplateInput): Promise<void>;
  deleteTemplate(name: string, physical?: string): Promise<void>;
  /** Issues a claim certificate with the template's claim policy (created or updated first). */
  issueClaimCertificate(input: ProvisioningTemplateInput): Promise<ClaimCertificate>;
  /** One certificate by id (a claim certificate has no thing): INACTIVE, or REVOKED when asked (local: REVOKED). */
  revokeCertificate(certificateId: string, opts?: { revoked?: boolean }): Promise<void>;
}

/** What the aws target has of the devices section (names are physical). */
export interface DeployedDevices {
  policy?: { document: PolicyDocument; physicalName: string };
  /** The policy an iotctl before stages made under the bare spec name; the plan moves its certificates. */
  legacy?: { document: PolicyDocument; physicalName: string; certificates: number };
  group: { physicalName: string; exists: boolean };
}

// ---------------------------------------------------------------- physical names

/**
 * Where the target stores a logical resource (the name the user wrote) under another name. The aws target
 * scopes every name by project and stage (src/targets/aws/naming.ts); the local target uses logical names.
 */
export interface PhysicalIdentity {
  /** The name on the target, where it is not the logical name. */
  physicalName?: string;
  /** An older copy under a previous physical name (a deployment before stage-scoped names) whose replacement exists. */
  retired?: true;
}

/** The resource kinds commands name by their logical names; Target.physicalName maps them. */
export type LogicalKind = 'stream' | 'function' | 'rule' | 'policy' | 'provisioning template';

// ---------------------------------------------------------------- rules

export interface RulesPort {
  /** `adopt`: the owner a rule of the spec gets (aws: its description's marker), as for streams. */
  /** `compare`: the rule in the target's own shape, where the spec's shape reads it back lossily (aws). */
  list(scope?: ListScope): Promise<(RuleSpec & PhysicalIdentity & { adopt?: Record<string, string>; compare?: unknown })[]>;
  /** A rule of the spec in the shape list() gives as `compare` (aws): plans compare those. */
  targetShape?(rule: RuleSpec): Promise<unknown>;
  get(name: string): Promise<RuleSpec | undefined>;
  put(rule: RuleSpec): Promise<void>;
  /** `physical`: the name to delete when it is not the current one (an old name the plan retires). */
  delete(name: string, physical?: string): Promise<void>;
  /**
   * aws: the IAM roles iotctl manages for these rules (kind `rule role`, config: trust and inline policy), as
   * wanted and as they are, so the plan shows them; `putRole` applies a planned role when its rule is unchanged.
   */
  roles?(rules: RuleSpec[]): Promise<{ desired: Resource[]; actual: Resource[] }>;
  putRole?(ruleName: string, config: unknown): Promise<void>;
}

/** AWS's error action payload: what a failing rule action sends to the errorAction. */
export interface RuleErrorRecord {
  ruleName: string;
  messageId: string;
  /** ISO 8601 */
  at: string;
  error: Record<string, unknown>;
}

export interface RuleErrorsPort {
  /**
   * Newest first. On AWS: the errorAction's CloudWatch Logs group, when the rule has one. `since` (epoch ms):
   * nothing older is needed (aws reads only from then on; the local store may return older ones too).
   */
  list(opts: { rule?: string; limit?: number; since?: number }): Promise<RuleErrorRecord[]>;
}

// ---------------------------------------------------------------- stream

export interface StreamConfig {
  name: string;
  /** Open shards; ignored in on-demand mode. */
  shards: number;
  retentionHours: number;
  mode?: 'provisioned' | 'on-demand';
}

export interface StreamSummary extends PhysicalIdentity {
  name: string;
  arn: string;
  status: string;
  /** Open shards. */
  shards: number;
  retentionHours: number;
  mode: 'provisioned' | 'on-demand';
  /** ISO 8601 */
  createdAt: string;
  /** aws: made by an older iotctl, without these ownership tags (see ListScope). */
  adopt?: Record<string, string>;
}

export interface ShardInfo {
  shardId: string;
  parentShardId?: string;
  adjacentParentShardId?: string;
  hashKeyRange: { startingHashKey: string; endingHashKey: string };
  sequenceNumberRange: { startingSequenceNumber: string | null; endingSequenceNumber: string | null };
  /** Closed shards (after a reshard) have an ending sequence number and take no new records. */
  open: boolean;
  /** Known locally; undefined on AWS. */
  records?: number;
  bytes?: number;
}

export interface StreamDescription extends StreamSummary {
  shardList: ShardInfo[];
  records?: number;
  bytes?: number;
}

export type TailStart = { kind: 'latest' } | { kind: 'trim-horizon' } | { kind: 'timestamp'; at: number } | { kind: 'sequence'; sequenceNumber: string };

export interface TailRecord {
  stream: string;
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  /** ISO 8601 */
  approximateArrivalTimestamp: string;
  /** The decoded JSON payload, or the payload in base64 when it is not JSON. */
  data: unknown;
  /** Whether `data` is decoded JSON (false: base64). */
  json: boolean;
}

export interface TailFilter {
  partitionKey?: string;
  /** Matches a partition key equal to the device, or a payload whose device_id is the device. */
  device?: string;
  /** True to keep the record; gets the decoded JSON payload (or the raw bytes when it is not JSON). */
  where?: (doc: unknown) => boolean;
}

export interface TailOptions {
  from: TailStart;
  filter?: TailFilter;
  signal?: AbortSignal;
  /** Called once every shard's iterator is taken (`iotctl check` publishes only after it); adapters may omit it. */
  onStarted?: () => void;
}

/** What list() of a stream or function port is told about the spec (the aws target scopes by ownership). */
export interface ListScope {
  /**
   * Names the spec declares: one that exists but belongs to someone else is refused (UserError); one made
   * by an older iotctl without the ownership tags is listed with `adopt`.
   */
  desired?: string[];
}

export interface StreamPort {
  list(scope?: ListScope): Promise<StreamSummary[]>;
  /** Throws NotFoundError when the stream does not exist. */
  describe(name: string): Promise<StreamDescription>;
  /** Create, or change retention/shard count in place. */
  /** `onExists`: called once the stream exists, before it is ready (aws: CREATING → ACTIVE). */
  ensure(config: StreamConfig, opts?: { onExists?: () => void }): Promise<'created' | 'updated' | 'unchanged'>;
  /** `physical`: the name to delete when it is not the current one (an old name the plan retires). */
  delete(name: string, physical?: string): Promise<boolean>;
  /** Every open shard at once, following child shards after a reshard, until the signal aborts. */
  tail(name: string, opts: TailOptions): AsyncIterable<TailRecord>;
}

// ---------------------------------------------------------------- functions

export interface VpcConfig {
  subnetIds: string[];
  securityGroupIds: string[];
}

/** A bundled template ready to deploy: the same esbuild artifact on both targets. */
export interface FunctionArtifact {
  /** The bundle's directory (handler file and any assets). */
  dir: string;
  /** Entry file name inside dir, e.g. index.js */
  entry: string;
  sha256: string;
  bytes: number;
}

export interface FunctionDeployment {
  name: string;
  template: string;
  handler: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment: Record<string, string>;
  eventSource?: EventSourceSpec;
  vpc?: VpcConfig;
  /** The execution role; aws creates a least-privilege one when absent. */
  roleArn?: string;
  /** The Lambda runtime (default nodejs22.x); the artifact was bundled for it. */
  runtime?: string;
  /** Variables that may hold a secret in plain text (iotctl.yaml's allowPlaintextSecrets); any other secret is refused. */
  allowPlaintextSecrets?: string[];
  /** aws: tags beyond the ownership ones (a section's functions, e.g. the database's, are told apart by them). */
  tags?: Record<string, string>;
  artifact: FunctionArtifact;
}

export interface FunctionSummary extends PhysicalIdentity {
  name: string;
  arn: string;
  template: string | null;
  handler: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment: Record<string, string>;
  /** Compared to decide whether a deploy changes anything. */
  sha256: string;
  eventSource: EventSourceSpec | null;
  /** aws: the function's Lambda runtime. */
  runtime?: string;
  /** ISO 8601 */
  updatedAt: string;
  state?: string;
  /** Where the deployed code is, when the target shows it (local: the artifact file). */
  location?: string;
  /** aws: made by an older iotctl, without these ownership tags (see ListScope). */
  adopt?: Record<string, string>;
}

export interface EventSourceMappingInfo {
  uuid: string;
  functionName: string;
  stream: string;
  state: string;
  batchSize: number;
  startingPosition: string;
  /** Records waiting in the stream for this mapping, where the target knows it. */
  lag?: number;
  lastResult?: string;
}

export interface InvokeResult {
  requestId: string;
  functionName: string;
  statusCode: number;
  functionError?: string;
  payload: unknown;
  durationMs?: number;
  billedDurationMs?: number;
  initDurationMs?: number;
  maxMemoryUsedMb?: number;
  logTail: string[];
}

export interface LogEvent {
  id: string;
  functionName: string;
  requestId: string | null;
  /** ms since epoch */
  timestamp: number;
  /** START, END, REPORT, INFO, WARN, ERROR, DEBUG, TRACE */
  level: string;
  message: string;
}

export interface FailureRecord {
  id: string;
  functionName: string;
  destination: string;
  /** ISO 8601 */
  createdAt: string;
  record: Record<string, unknown>;
}

export interface FunctionsPort {
  list(scope?: ListScope): Promise<FunctionSummary[]>;
  get(name: string): Promise<FunctionSummary | undefined>;
  /** A deployment whose code hash and settings match what runs is 'unchanged' and makes no change. */
  deploy(d: FunctionDeployment, progress?: (step: string) => void): Promise<'created' | 'updated' | 'unchanged'>;
  /** `physical`: the name to delete when it is not the current one (an old name the plan retires). */
  remove(name: string, physical?: string): Promise<boolean>;
  invoke(name: string, event: unknown): Promise<InvokeResult>;
  /** Oldest first from `since`; with follow, keeps polling until the signal aborts. */
  logs(name: string, opts: { since?: number; limit?: number; follow?: boolean; signal?: AbortSignal }): AsyncIterable<LogEvent>;
  /** Records that exhausted their retries (on AWS: read from the SQS on-failure queue without deleting). */
  failures(name: string, opts: { limit?: number }): Promise<FailureRecord[]>;
  mappings(name?: string): Promise<EventSourceMappingInfo[]>;
}

// ---------------------------------------------------------------- database

/** Where PostgreSQL is, resolved for this target (embedded, DATABASE_URL, or RDS with IAM/secret). */
export interface DatabaseLocation {
  /** A pg connection string, when there is one. */
  url: string | undefined;
  /** For messages: the URL with its password masked. */
  display: string;
  source: string;
  /** Extra pg.ClientConfig: TLS options, an IAM token or secret password. */
  clientConfig?: Record<string, unknown>;
}

export interface DatabasePort {
  /**
   * role: on the embedded server, which least-privilege role to connect as (reader for queries; owner, the
   * default, for migrations). Servers iotctl does not create use their URL's own user.
   */
  locate(role?: 'owner' | 'writer' | 'reader'): Promise<DatabaseLocation>;
}

// ---------------------------------------------------------------- lake query (athena)

export interface ColumnInfo {
  name: string;
  type: string;
}

export interface QueryStats {
  rows: number;
  bytesScanned: number;
  filesScanned?: number;
  filesTotal?: number;
  bytesExact: boolean;
  elapsedMs: number;
  /** aws: Athena's query execution id. */
  queryId?: string;
  /** aws: the rows were streamed from this result object (s3://...csv) rather than paged. */
  resultObject?: string;
}

export interface QueryProgress {
  state: string;
  bytesScanned: number;
  elapsedMs: number;
}

/** A running query: its columns, then every row streamed, then the final stats. */
/** Per-API request rates (TPS) and the source of each ("applied quota", "documented default", ...). */
export interface ApiRatesInfo {
  rates: Record<string, number>;
  sources: Record<string, string>;
  /** Why some rates are not the account's (Service Quotas unreadable), in one line. */
  note?: string;
}

export interface LakeQuery {
  columns: ColumnInfo[];
  rows: AsyncIterable<unknown[]>;
  stats(): QueryStats;
}

export interface TableDescription {
  table: string;
  kind: 'datastore' | 'channel' | 'table';
  format: string;
  files?: number;
  bytes?: number;
  partitions?: number;
  location?: string;
  columns: ColumnInfo[];
}

export interface LakeQueryPort {
  run(sql: string, opts: { params?: readonly string[]; signal?: AbortSignal; onProgress?: (p: QueryProgress) => void; readAll?: boolean; onNotice?: (message: string) => void }): Promise<LakeQuery>;
  tables(): Promise<TableDescription[]>;
}

// ---------------------------------------------------------------- analytics (channels, pipelines, datastores, datasets)

export interface AnalyticsResource {
  kind: string;
  name: string;
  config: Record<string, unknown>;
}

/** Who started a dataset run. */
export type DatasetTrigger = 'manual' | 'schedule';

/** One run of a dataset, kept as a content version. On AWS the version id is the Athena query execution id. */
export interface DatasetVersion {
  dataset: string;
  version: string;
  /** RUNNING: only on AWS, a scheduled query still running. */
  status: 'SUCCEEDED' | 'FAILED' | 'RUNNING';
  trigger: DatasetTrigger;
  createdAt: number;
  scheduledFor: number | null;
  windowStart: number | null;
  windowEnd: number | null;
  /** null where the target does not count them without reading the content (AWS). */
  rows: number | null;
  bytes: number | null;
  elapsedMs: number | null;
  error: string | null;
}

export interface DatasetRunResult extends DatasetVersion {
  /** The content (CSV) on this machine; absent when the run failed. */
  file?: string;
  columns: { name: string; type: string }[];
  /** The first rows of the content, for display. */
  preview: unknown[][];
}

export interface ReprocessResult {
  id: string;
  pipeline: string;
  from: number;
  to: number;
  messages: number;
  out: number;
  filtered: number;
  failed: number;
  filesWritten: number;
  filesReplaced: number;
}

/**
 * `analytics status`. Counters are all-time on the local target; on AWS they come from CloudWatch and cover
 * [countersSince, now]. A field a target cannot know is null.
 */
export interface AnalyticsStatus {
  /** ISO time the counters start from (AWS: the CloudWatch window); null when they are all-time. */
  countersSince: string | null;
  channels: ChannelStatus[];
  pipelines: PipelineStatus[];
  datastores: DatastoreStatus[];
  datasets: DatasetStatus[];
  schemaChanges: SchemaChangeStatus[];
  reprocessing: { id: string; pipeline: string; status: string; from: string | null; to: string | null; messages: number | null; error: string | null }[];
}

export interface ChannelStatus {
  name: string;
  messages: number;
  bytes: number;
  /** Messages stored in the channel (AWS: Firehose's DeliveryToS3.Records; fewer than `messages` while some wait or fail). */
  delivered: number;
  /** Local: committed segment files. AWS: raw objects in S3. */
  segments: number;
  duplicatesDropped: number | null;
  retentionDays: number | null;
}

export interface PipelineStatus {
  name: string;
  channel: string;
  datastore: string;
  messagesIn: number;
  messagesOut: number;
  filtered: number;
  failed: number;
  /** Channel messages the pipeline has not committed yet (null on AWS: Firehose reports only their age). */
  lagMessages: number | null;
  /** Age of the oldest of them, in seconds (0 when caught up). */
  lagSeconds: number;
  lastError: string | null;
  recentFailures: { messageId: string; receivedAt: string; activity: number; activityType: string; reason: string }[];
}

export interface DatastoreStatus {
  name: string;
  format: string;
  rows: number | null;
  files: number;
  bytes: number;
  partitions: number;
  columns: { name: string; type: string }[];
}

export interface DatasetStatus {
  name: string;
  schedule: string | null;
  lastRun: { version: string; status: string; at: string; rows: number | null; error: string | null } | null;
  nextRun: string | null;
  versions: number;
  missedRuns: number;
  recentMissed: string[];
}

export interface SchemaChangeStatus {
  datastore: string;
  column: string;
  change: string;
  from: string | null;
  to: string;
  detail: string | null;
  at: string;
}

export interface AnalyticsPort {
  /** The spec's analytics section against what the target has; validates pipelines and dataset SQL. */
  plan(opts: { prune?: boolean }): Promise<{ items: PlanItem[]; warnings: string[] }>;
  /** Applies a plan from plan(); a delete also deletes that resource's data. */
  apply(items: PlanItem[]): Promise<void>;
  list(): Promise<AnalyticsResource[]>;
  /** `since` (epoch ms) starts the counters' window where counters are windowed (AWS); the local target ignores it. */
  status(opts?: { since?: number }): Promise<AnalyticsStatus>;
  /** `progress` gets a line when a remote run changes state (AWS: the Athena query). */
  runDataset(name: string, opts: { previewRows?: number; progress?: (line: string) => void }): Promise<DatasetRunResult>;
  datasetVersions(name: string): Promise<DatasetVersion[]>;
  /** A version's content: a CSV file on this machine. */
  datasetContent(name: string, version?: string): Promise<{ version: DatasetVersion; file: string }>;
  /** Replays a pipeline's raw messages received in [from, to]; progress lines go to `progress`. */
  reprocess(
    pipeline: string,
    opts: { from?: number; to?: number; timeoutSeconds: number; progress?: (line: string) => void },
  ): Promise<ReprocessResult | { id: string; pipeline: string; status: string }>;
  /**
   * `iotctl check`: waits until a channel holds a message whose JSON payload has `field` = `value`, has every
   * pipeline commit what it buffered (a flush), then says which datastores hold it. Undefined: not found by
   * the deadline. Optional: a target without it reports the lake stage as skipped.
   */
  trace?(find: { field: string; value: string }, opts: { since: number; deadline: number; signal?: AbortSignal }): Promise<LakeTrace | undefined>;
  /**
   * `iotctl check`: how long the lake stage may take for a message on `channel`, and why (aws: Firehose's buffer
   * interval, read from the delivery streams, plus `graceMs` to deliver). Absent or undefined: the check's --timeout.
   */
  traceTimeout?(channel: string, opts?: { graceMs?: number }): Promise<{ ms: number; reason: string } | undefined>;
  /** aws only: move the analytics section off IoT Analytics to the datalake engine (see AnalyticsMigration). */
  migrate(opts: { specText: string; file: string; dryRun?: boolean; export?: boolean }): Promise<AnalyticsMigration>;
}

/** Where one message got to in the lake (`iotctl check`): per channel that holds it, each pipeline's datastore. */
export interface LakeTrace {
  channel: string;
  /** ms since epoch the channel received it. */
  receivedAt: number;
  messageId: string;
  pipelines: { pipeline: string; datastore: string; stored: boolean; /** Why not: the pipeline's failure, or its filter. */ reason?: string }[];
}

/** What `analytics migrate` found and would do; the command writes specText unless it is a dry run. */
export interface AnalyticsMigration {
  source: 'iotanalytics' | 'spec';
  specText: string;
  changed: boolean;
  plan: PlanItem[];
  exports: { datastore: string; dataset: string; versionId?: string; state: 'SUCCEEDED' | 'FAILED' | 'SKIPPED'; s3Uri?: string; reason?: string }[];
  warnings: string[];
  deleteCommands: string[];
}

// ---------------------------------------------------------------- the scheduled check (aws)

/** `iotctl check --schedule`: what the check function follows (stages as check-stages.ts plans them). */
export interface ScheduledCheckDeployment {
  /** EventBridge Scheduler expression, e.g. rate(5 minutes). */
  expression: string;
  /** The canary's telemetry topic (the function may publish there only). */
  topic: string;
  timeoutMs: number;
  /** The planned stages; a stream stage carries its name on the target (`physical`). */
  stages: { id: string; kind: string; name: string; after: string[]; streams?: string[]; channels?: string[]; stream?: string; physical?: string }[];
  /** The database's network, when the function must run in it (the ingest function's). */
  vpc?: VpcConfig;
}

export interface ScheduledCheckChange {
  resource: 'function' | 'role' | 'schedule';
  name: string;
  result: 'created' | 'updated' | 'unchanged' | 'deleted';
}

export interface ScheduledCheckLast {
  schedule: string;
  function: string;
  /** The CloudWatch namespace of its metrics. */
  namespace: string;
  /** The last run's result, when one ran in the last day. */
  last?: { at: string; checkId: string; ok: boolean; totalMs: number; stages: { stage: string; status: string; ms: number | null; detail: string }[] };
}

export interface ScheduledCheckPort {
  apply(d: ScheduledCheckDeployment, progress?: (step: string) => void): Promise<ScheduledCheckChange[]>;
  remove(): Promise<ScheduledCheckChange[]>;
  /** Undefined when no scheduled check is deployed. */
  last(): Promise<ScheduledCheckLast | undefined>;
}

// ---------------------------------------------------------------- the target: every port

/**
 * aws: the database operated in the account (src/targets/aws/database-ops.ts): `apply`'s database section, the
 * maintenance and query functions the `--via lambda` commands invoke, and the maintenance run `status` shows.
 */
export interface DatabaseOpsPort {
  plan(): Promise<PlanItem[]>;
  apply(items: PlanItem[], progress?: (step: string) => void): Promise<void>;
  /** The maintenance function's result ({} a run, {dryRun}, {migrate}); a function error is a UserError. */
  invokeMaintenance(event: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** One page from the query function (templates/query-rds); its {error} is a UserError. */
  invokeQuery(event: Record<string, unknown>): Promise<Record<string, unknown>>;
  maintenanceStatus(): Promise<MaintenanceStatusInfo>;
}

export interface MaintenanceStatusInfo {
  function: string;
  schedule: string;
  lastRun: { at: string; ok: boolean; action: string; dryRun: boolean; summary: string; error?: string } | null;
  deadLetters: number | null;
  errors24h: number | null;
  failing: boolean;
}

export interface Target {
  name: 'local' | 'aws';
  devices: DeviceRegistryPort;
  rules: RulesPort;
  ruleErrors: RuleErrorsPort;
  streams: StreamPort;
  functions: FunctionsPort;
  database: DatabasePort;
  /** aws: what runs the database in the account (maintenance and query functions, schedule, role secrets). */
  databaseOps?: DatabaseOpsPort;
  lake: LakeQueryPort;
  analytics: AnalyticsPort;
  /** aws only: the check as a scheduled function in the account (`iotctl check --schedule`). */
  scheduledCheck?: ScheduledCheckPort;
  /** Whether what is deployed runs now: the local platform is up (always true on AWS). */
  running(): boolean;
  /** The name a logical resource has on the target (aws: scoped by project and stage); absent: the logical name. */
  physicalName?(kind: LogicalKind, logical: string): string;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- errors shared by adapters

/** A named resource the target does not have. Commands turn it into a UserError with a hint. */
export class NotFoundError extends Error {
  constructor(
    readonly kind: string,
    readonly resource: string,
  ) {
    super(`${kind} "${resource}" does not exist`);
    this.name = 'NotFoundError';
  }
}
