import { LAMBDA_RUNTIME, templateDatabaseRole } from '../../services/bundle.js';
import type { DatabaseRole } from '../../db/roles.js';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join, relative, sep } from 'node:path';
import type { EventSourceMappingConfiguration, FunctionConfiguration } from '@aws-sdk/client-lambda';
import type {
  ListScope,
  EventSourceMappingInfo,
  FailureRecord,
  FunctionDeployment,
  FunctionsPort,
  FunctionSummary,
  InvokeResult,
  LogEvent,
} from '../../ports.js';
import type { EventSourceSpec } from '../../spec/schema.js';
import { UserError } from '../../ui/errors.js';
import { decodeLogTail, parseLogLine, parseReport } from './lambda-logs.js';
import { arnOf, FUNCTION_ROLE_POLICY, lambdaLogGroup, ownershipByName, partitionOf, stageNames, type ArnPlace, type StageNames } from './naming.js';
import { ANALYTICS_TAG, assertClaimable, DATABASE_TAG, claimOf, notOurs, ownerOf, ownerTagList, ownerTags, TAG_MANAGED, tagMap, type Owner } from './ownership.js';
import { type AwsClients, isAwsError } from './sdk.js';
import { deleteServiceRole, ensureServiceRole, trustPolicy } from './iam.js';
import { abortableSleep, anyOf, lambdaBusy, retryWhen, rolePropagating, waitUntil, type WaitOptions } from './retry.js';
import { ensureDatabaseSecret } from './secrets.js';
import { plaintextSecrets, SECRET_HINT } from '../../spec/env-secrets.js';

/**
 * Lambda on AWS: the same esbuild artifact as locally, zipped in memory; CreateFunction, or
 * UpdateFunctionCode / UpdateFunctionConfiguration with a wait for `LastUpdateStatus: Successful`
 * between them; a least-privilege execution role when none is given; the Kinesis event source
 * mapping; logs from CloudWatch Logs; on-failure records from the destination SQS queue.
 *
 * A deploy whose zip (CodeSha256), configuration, tags and mapping already match makes no write call.
 */

export const RUNTIME = LAMBDA_RUNTIME;
const TAG_TEMPLATE = 'iotctl:template';
const TAG_SHA = 'iotctl:sha256';
/**
 * The zip's CodeSha256 when iotctl deployed that bundle: code changed since by anyone else no longer matches,
 * and the function reads back as changed (its bundle tag alone would still say iotctl's bundle).
 */
const TAG_CODE = 'iotctl:code-sha256';
/**
 * What the spec said where AWS stores something else, so list()/get() report the function as the spec
 * wrote it and an unchanged function plans as a no-op: the variables iotctl put in place of the template's
 * empty DATABASE_URL, and a bare on-failure queue name (AWS keeps its ARN).
 */
const TAG_DATABASE_ENV = 'iotctl:database-env';
const TAG_ON_FAILURE = 'iotctl:on-failure';
/** The logical stream of the mapping (AWS keeps the stream's ARN, under its stage-scoped name). */
const TAG_STREAM = 'iotctl:stream';
const TAG_ROLE_FOR = 'iotctl:function';
/** Zip entries get this mtime so the same bundle always gives the same zip, and the same CodeSha256. */
const ZIP_MTIME = new Date('2020-01-01T00:00:00Z');

export interface AwsFunctionsOptions {
  /** The spec's project: names the database secret, and with the stage owns the functions (their tags). */
  project: string;
  stage?: string;
  /** Whose functions these are (with `adopt`); default: the project and stage. */
  owner?: Owner;
  /** The stage's physical names (functions, their roles, streams, queues); default: stageNames of the project and stage. */
  names?: StageNames;
  /** First wait between polls of a function's state (doubles up to 5 s). */
  pollMs?: number;
  /** How long a function may stay Pending / InProgress before deploy gives up. */
  waitTimeoutMs?: number;
  /** How often `logs --follow` polls. */
  followMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * The database a function reaches, as variables without a password; filled in for functions whose
   * template declares DATABASE_URL (left empty by the template, as the local target injects it).
   */
  databaseEnvironment?: (role: DatabaseRole) => Promise<Record<string, string>>;
}

export interface ZippedArtifact {
  zip: Uint8Array;
  /** base64 sha256 of the zip: what Lambda reports as CodeSha256. */
  codeSha256: string;
}

/** Every file under the artifact's dir, sorted, with fixed mtimes and modes: deterministic bytes. */
export async function zipArtifact(dir: string): Promise<ZippedArtifact> {
  const { zipSync } = await import('fflate');
  const files = listFiles(dir).sort();
  const entries: Record<string, [Uint8Array, { mtime: Date; os: number; attrs: number }]> = {};
  for (const rel of files) {
    // Unix mode 0644 in the high bits: Lambda's runtime user must be able to read every file.
    entries[rel.split(sep).join('/')] = [readFileSync(join(dir, rel)), { mtime: ZIP_MTIME, os: 3, attrs: 0o100644 << 16 }];
  }
  const zip = zipSync(entries, { level: 9 });
  return { zip, codeSha256: createHash('sha256').update(zip).digest('base64') };
}

function listFiles(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name), root) : e.isFile() ? [relative(root, join(dir, e.name))] : []));
}

/** What deploy wants the function to look like (the comparable part of its configuration). */
interface DesiredConfig {
  Runtime: import('@aws-sdk/client-lambda').Runtime;
  Handler: string;
  Role: string;
  MemorySize: number;
  Timeout: number;
  Environment: { Variables: Record<string, string> };
  VpcConfig: { SubnetIds: string[]; SecurityGroupIds: string[] };
}

export class AwsFunctions implements FunctionsPort {
  private readonly pollMs: number;
  private readonly waitTimeoutMs: number;
  private readonly followMs: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly owner: Owner;
  private readonly names: StageNames;

  constructor(
    private readonly aws: AwsClients,
    private readonly opts: AwsFunctionsOptions,
  ) {
    this.pollMs = opts.pollMs ?? 1_000;
    this.waitTimeoutMs = opts.waitTimeoutMs ?? 300_000;
    this.followMs = opts.followMs ?? 2_000;
    this.sleep = opts.sleep ?? ((ms, signal) => abortableSleep(ms, signal, 'logs', 'FilterLogEvents'));
    this.owner = opts.owner ?? ownerOf(opts.project, opts.stage);
    this.names = opts.names ?? stageNames({ project: this.owner.project, stage: this.owner.stage });
  }

  // ------------------------------------------------------------ read

  /**
   * The functions this project and stage own, found by their stage-scoped names (a name in no scope of ours
   * is never read further) and tags, under their logical names with `physicalName`. For names the spec
   * declares: the scoped function held by anyone else is refused (with `--adopt`, one no iotctl owns is
   * listed with the tags it will get); a function an older iotctl made under the bare name (its tags name this
   * project and stage, or only `iotctl:managed`) is listed under that name, so the plan moves it (and once
   * the scoped one exists, as `retired`). Anyone else's function of the bare name is left alone.
   */
  async list(scope: ListScope = {}): Promise<FunctionSummary[]> {
    const { client, sdk } = await this.aws.get('lambda');
    const configs: FunctionConfiguration[] = [];
    let Marker: string | undefined;
    do {
      const page = await client.send(new sdk.ListFunctionsCommand({ Marker, MaxItems: 50 }), this.aws.sendOptions);
      configs.push(...(page.Functions ?? []));
      Marker = page.NextMarker;
    } while (Marker);
    const desired = scope.desired ?? [];
    const declared = new Map(desired.map((l) => [this.names.function(l), l]));
    const legacy = new Map(desired.filter((l) => this.names.function(l) !== l).map((l) => [l, l]));
    const present = new Set(configs.map((c) => c.FunctionName!));
    const candidates = configs.filter((c) => declared.has(c.FunctionName!) || legacy.has(c.FunctionName!) || ownershipByName('lambda-function', c.FunctionName!, this.owner).verdict !== 'not-ours');
    // Independent reads at once: the mappings, the roles' claims (at plan time: a role of the function's role
    // name of anyone else is refused before apply writes anything), and the candidates' tags (ListFunctions
    // carries none: read for the candidates only).
    const mappingsRead = this.listMappings();
    const rolesChecked = mapLimit(desired, 5, (name) => this.roleClaim(name));
    mappingsRead.catch(() => undefined);
    rolesChecked.catch(() => undefined);
    const tagged = await mapLimit(candidates, 10, async (c) => {
      const out = await client.send(new sdk.ListTagsCommand({ Resource: c.FunctionArn! }), this.aws.sendOptions);
      return { config: c, tags: out.Tags ?? {} };
    });
    type Found = { config: FunctionConfiguration; tags: Record<string, string>; logical: string; adopt?: Record<string, string>; retired?: true };
    const mine: Found[] = [];
    for (const t of tagged) {
      const name = t.config.FunctionName!;
      const logical = declared.get(name);
      // The analytics engine's transform functions are its own section's business.
      // So are the database section's maintenance and query functions, and the scheduled check's (check-schedule.ts).
      if ((t.tags[ANALYTICS_TAG] || t.tags[DATABASE_TAG] || t.tags['iotctl:check']) && logical === undefined) continue;
      if (logical !== undefined) {
        const claim = assertClaimable('Lambda function', name, t.tags, this.owner);
        mine.push({ ...t, logical, ...(claim === 'legacy' ? { adopt: ownerTags(this.owner) } : {}) });
        continue;
      }
      const old = legacy.get(name);
      if (old !== undefined) {
        // Moved, not adopted: the old function is deleted once the scoped one runs, so it gets no tags.
        if (claimOf(t.tags, this.owner, t.tags[TAG_MANAGED] === 'true') !== 'foreign') mine.push({ ...t, logical: old, ...(present.has(this.names.function(old)) ? { retired: true as const } : {}) });
        continue;
      }
      if (claimOf(t.tags, this.owner) !== 'owned') continue;
      const byName = ownershipByName('lambda-function', name, this.owner);
      // A shortened name hides its logical name: it shows under its physical name.
      mine.push({ ...t, logical: byName.verdict === 'ours' ? byName.logical : name });
    }
    await rolesChecked;
    const mappings = await mappingsRead;
    return mine.map(({ config, tags, logical, adopt, retired }) => ({
      ...this.summary(config, tags, mappings.filter((m) => sameFunction(m.FunctionArn, config)), logical),
      ...(adopt ? { adopt } : {}),
      ...(retired ? { retired } : {}),
    }));
  }

  async get(name: string): Promise<FunctionSummary | undefined> {
    const found = await this.getFunction(this.names.function(name));
    if (!found) return undefined;
    return this.summary(found.config, found.tags, await this.listMappings(found.config.FunctionName), name);
  }

  async mappings(name?: string): Promise<EventSourceMappingInfo[]> {
    return (await this.listMappings(name === undefined ? undefined : this.names.function(name))).map((m) => ({
      uuid: m.UUID!,
      functionName: this.logicalOf('lambda-function', functionNameOf(m.FunctionArn)),
      stream: this.logicalOf('kinesis-stream', resourceName(m.EventSourceArn)),
      state: m.State ?? 'Unknown',
      batchSize: m.BatchSize ?? 100,
      startingPosition: m.StartingPosition ?? 'TRIM_HORIZON',
      ...(m.LastProcessingResult ? { lastResult: m.LastProcessingResult } : {}),
    }));
  }

  /** The logical name of a scoped physical name of this stage; anything else as it is. */
  private logicalOf(kind: 'lambda-function' | 'kinesis-stream', physical: string): string {
    const byName = ownershipByName(kind, physical, this.owner);
    return byName.verdict === 'ours' ? byName.logical : physical;
  }

  /** A function as the spec wrote it: its logical name, its stream and on-failure queue by their logical names. */
  private summary(c: FunctionConfiguration, tags: Record<string, string>, mappings: EventSourceMappingConfiguration[], logical: string): FunctionSummary {
    const stream = tags[TAG_STREAM];
    const queue = tags[TAG_ON_FAILURE];
    const logicalNames = {
      stream: stream && mappings[0]?.EventSourceArn?.endsWith(`/${this.names.stream(stream)}`) ? stream : undefined,
      onFailure: queue && mappings[0]?.DestinationConfig?.OnFailure?.Destination?.endsWith(`:${this.names.queue(queue)}`) ? queue : undefined,
    };
    return { ...summary(c, tags, mappings, logicalNames), name: logical, physicalName: c.FunctionName! };
  }

  // ------------------------------------------------------------ deploy

  async deploy(d: FunctionDeployment, progress: (step: string) => void = () => undefined): Promise<'created' | 'updated' | 'unchanged'> {
    const { client, sdk } = await this.aws.get('lambda');
    const [region, account] = await Promise.all([this.aws.region(), this.aws.accountId()]);
    const arns = new Arns({ region, account }, this.names);
    const fn = this.names.function(d.name);
    const queue = d.eventSource?.onFailure && !d.eventSource.onFailure.startsWith('arn:') ? d.eventSource.onFailure : undefined;

    // Ownership of the function, its role and its failure queue before any write (the secret, the role, the function).
    const existing = await this.getFunction(fn);
    if (existing) assertClaimable('Lambda function', fn, existing.tags, this.owner);
    if (!d.roleArn) await this.roleClaim(d.name);
    if (queue) await this.ensureQueue(queue, false);

    progress('zip the bundle');
    const { zip, codeSha256 } = await zipArtifact(d.artifact.dir);
    const { environment, secretChanged, injected } = await this.functionEnvironment(d.environment, progress, d.allowPlaintextSecrets, templateDatabaseRole(d.template));

    const streamArn = d.eventSource ? arns.stream(d.eventSource.stream) : undefined;
    const destination = d.eventSource?.onFailure ? arns.destination(d.eventSource.onFailure) : undefined;
    let roleArn = d.roleArn;
    let roleChanged = false;
    let roleCreated = false;
    if (!roleArn) {
      progress('execution role');
      const role = await this.ensureRole(d.name, rolePolicy(arns, fn, d, { streamArn, destination, environment }));
      roleArn = role.arn;
      roleChanged = role.result !== 'unchanged';
      roleCreated = role.result === 'created';
    }

    const want: DesiredConfig = {
      Runtime: (d.runtime ?? RUNTIME) as DesiredConfig['Runtime'],
      Handler: `${basename(d.artifact.entry, extname(d.artifact.entry))}.${d.handler}`,
      Role: roleArn,
      MemorySize: d.memoryMb,
      Timeout: d.timeoutSeconds,
      Environment: { Variables: environment },
      VpcConfig: { SubnetIds: [...(d.vpc?.subnetIds ?? [])].sort(), SecurityGroupIds: [...(d.vpc?.securityGroupIds ?? [])].sort() },
    };
    const optionalTags = {
      [TAG_DATABASE_ENV]: injected.join(' '),
      [TAG_ON_FAILURE]: queue ?? '',
      [TAG_STREAM]: d.eventSource && !d.eventSource.stream.startsWith('arn:') ? d.eventSource.stream : '',
    };
    const tags: Record<string, string> = { ...(d.tags ?? {}), ...ownerTags(this.owner), [TAG_TEMPLATE]: d.template, [TAG_SHA]: d.artifact.sha256, [TAG_CODE]: codeSha256, ...Object.fromEntries(Object.entries(optionalTags).filter(([, v]) => v)) };
    const staleTags = Object.keys(optionalTags).filter((k) => !(k in tags));

    let result: 'created' | 'updated' | 'unchanged';
    if (!existing) {
      progress('create the function');
      try {
        await this.retry(
          'CreateFunction',
          `Lambda to be able to assume the role ${roleArn}`,
          () =>
            client.send(
              new sdk.CreateFunctionCommand({ FunctionName: fn, ...want, Code: { ZipFile: zip }, PackageType: 'Zip', Tags: tags, Description: `iotctl ${d.template}` }),
              this.aws.sendOptions,
            ),
          rolePropagating.lambda,
        );
      } catch (error) {
        // Leave nothing half-created: the role made for this function goes with the failed create.
        if (roleCreated) await this.removeRole(roleArn, fn).catch(() => undefined);
        throw error;
      }
      progress('wait until active');
      await this.waitReady(fn);
      result = 'created';
    } else {
      const codeChanged = existing.config.CodeSha256 !== codeSha256;
      const configChanged = configDiffers(existing.config, want);
      const untag = staleTags.filter((k) => k in existing.tags);
      const tagsChanged = untag.length > 0 || Object.entries(tags).some(([k, v]) => existing.tags[k] !== v);
      if (codeChanged || configChanged) await this.waitReady(fn);
      if (codeChanged) {
        progress('update the code');
        await client.send(new sdk.UpdateFunctionCodeCommand({ FunctionName: fn, ZipFile: zip }), this.aws.sendOptions);
        // A configuration update while the code update is in progress fails with ResourceConflictException.
        await this.waitReady(fn);
      }
      if (configChanged) {
        progress('update the configuration');
        await this.retry('UpdateFunctionConfiguration', `Lambda to be able to assume the role ${roleArn}`, () => client.send(new sdk.UpdateFunctionConfigurationCommand({ FunctionName: fn, ...want }), this.aws.sendOptions), rolePropagating.lambda);
        await this.waitReady(fn);
      }
      if (tagsChanged) await client.send(new sdk.TagResourceCommand({ Resource: existing.config.FunctionArn!, Tags: tags }), this.aws.sendOptions);
      if (untag.length) await client.send(new sdk.UntagResourceCommand({ Resource: existing.config.FunctionArn!, TagKeys: untag }), this.aws.sendOptions);
      // A role iotctl made for this function that the function no longer uses (a roleArn is given now).
      if (existing.config.Role && existing.config.Role !== roleArn) await this.removeRole(existing.config.Role, fn);
      result = codeChanged || configChanged || tagsChanged || roleChanged || secretChanged ? 'updated' : 'unchanged';
    }

    if (queue) progress('on-failure queue');
    const queued = queue ? await this.ensureQueue(queue, true) : 'unchanged';
    progress('event source mapping');
    // The role's policy may have just been put: the mapping's checks of it see the new one after IAM propagates.
    const mapping = await this.ensureMapping(fn, d.eventSource, streamArn, destination);
    if (result === 'unchanged' && (mapping !== 'unchanged' || queued !== 'unchanged')) result = 'updated';
    return result;
  }

  /**
   * The function's variables: the spec's, minus the template's empty placeholders, with a database URL
   * moved into a Secrets Manager secret (the function gets DATABASE_SECRET_ARN, never the password).
   */
  private async functionEnvironment(
    given: Record<string, string>,
    progress: (step: string) => void,
    allowed: readonly string[] = [],
    role: DatabaseRole = 'writer',
  ): Promise<{ environment: Record<string, string>; secretChanged: boolean; injected: string[] }> {
    const wantsDatabase = given.DATABASE_URL === '' && !given.DATABASE_SECRET_ARN && !given.DATABASE_IAM_AUTH;
    const database = wantsDatabase && this.opts.databaseEnvironment ? await this.opts.databaseEnvironment(role) : {};
    const env = { ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== '')), ...database };
    // The spec check refuses these already; this guards every other caller (lambda deploy of a template, tests).
    const [leak] = plaintextSecrets(env, allowed);
    if (leak) throw new UserError(`The function's environment sets ${leak.name}, which looks like a secret (${leak.reason}): it must not be stored in a Lambda configuration.`, SECRET_HINT, 'PASSWORD_IN_ENV');
    let secretChanged = false;
    if (env.DATABASE_URL) {
      progress('database secret');
      const { arn, result } = await ensureDatabaseSecret(this.aws, this.opts.project, env.DATABASE_URL, this.owner.stage);
      delete env.DATABASE_URL;
      env.DATABASE_SECRET_ARN = arn;
      // A new password reaches running containers at their next login failure (the template re-reads the secret).
      secretChanged = result !== 'unchanged';
    }
    const injected = wantsDatabase ? Object.keys(env).filter((k) => k in database || k === 'DATABASE_SECRET_ARN').sort() : [];
    return { environment: env, secretChanged, injected };
  }

  private async getFunction(name: string): Promise<{ config: FunctionConfiguration; tags: Record<string, string> } | undefined> {
    const { client, sdk } = await this.aws.get('lambda');
    try {
      const out = await client.send(new sdk.GetFunctionCommand({ FunctionName: name }), this.aws.sendOptions);
      return { config: out.Configuration!, tags: out.Tags ?? {} };
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /** Polls until the function is Active and its last update Successful; a Failed state is an error. */
  private async waitReady(name: string): Promise<void> {
    const { client, sdk } = await this.aws.get('lambda');
    await waitUntil(
      () => client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), this.aws.sendOptions),
      (c) => {
        if (c.State === 'Failed') throw new UserError(`Lambda could not make function ${name} ready: ${c.StateReasonCode ?? ''} ${c.StateReason ?? ''}`.trim(), 'Fix the cause it names (role, VPC subnets, code), then deploy again.', 'LAMBDA_FAILED');
        if (c.LastUpdateStatus === 'Failed')
          throw new UserError(`The last update of function ${name} failed: ${c.LastUpdateStatusReasonCode ?? ''} ${c.LastUpdateStatusReason ?? ''}`.trim(), 'Fix the cause it names, then deploy again.', 'LAMBDA_UPDATE_FAILED');
        if (c.State === 'Active' && (c.LastUpdateStatus === undefined || c.LastUpdateStatus === 'Successful')) return true;
        // Inactive functions wake up on the next invocation or update; waiting here would never end.
        return c.State === 'Inactive' && c.LastUpdateStatus !== 'InProgress';
      },
      {
        ...this.waits('GetFunctionConfiguration', `function ${name} to be Active`),
        state: (c) => `${c.State}/${c.LastUpdateStatus ?? '-'}`,
        onTimeout: (c, s) => new UserError(`Function ${name} is still ${c.State}/${c.LastUpdateStatus ?? '-'} after ${Math.round(s)} s.`, 'Check it in the Lambda console, then deploy again.', 'LAMBDA_TIMEOUT'),
      },
    );
  }

  /** The bounds of every wait of this adapter (waitTimeoutMs, pollMs, the test's sleep), for retryWhen and waitUntil. */
  private waits(operation: string, what: string): WaitOptions {
    return { service: 'lambda', operation, what, signal: this.aws.settings.signal, timeoutMs: this.waitTimeoutMs, delayMs: this.pollMs, maxDelayMs: 5_000, ...(this.opts.sleep ? { sleep: this.opts.sleep } : {}) };
  }

  /**
   * A write that may be refused for a while after this function's role was created or its policy put (IAM
   * propagation) or while another update of the function is in progress: retried on those errors only.
   */
  private retry<T>(operation: string, what: string, call: () => Promise<T>, propagating: (e: unknown) => boolean): Promise<T> {
    return retryWhen(call, anyOf(propagating, lambdaBusy), { ...this.waits(operation, what), delayMs: Math.max(this.pollMs, 1_000), maxDelayMs: 10_000 });
  }

  // ------------------------------------------------------------ role

  /**
   * Whether the function's role (`names.functionRole`, under the stage's IAM path) may be written: missing,
   * or ours (tags) and made for this function (its `iotctl:function` tag). Anyone else's role of that name
   * is refused; with `--adopt`, one no iotctl owns is tagged.
   */
  private async roleClaim(logical: string): Promise<'missing' | 'owned' | 'legacy'> {
    const { client, sdk } = await this.aws.get('iam');
    const RoleName = this.names.functionRole(logical);
    const fn = this.names.function(logical);
    try {
      const tags = tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName }), this.aws.sendOptions)).Tags);
      const claim = assertClaimable('IAM role', RoleName, tags, this.owner);
      // A role of ours made for another function (a hashed name that collides) stays that function's.
      if (claim === 'owned' && tags[TAG_ROLE_FOR] !== fn) throw notOurs('IAM role', RoleName, tags, this.owner);
      return claim as 'owned' | 'legacy';
    } catch (error) {
      if (isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) return 'missing';
      throw error;
    }
  }

  /** The function's own role (iam.ts), with a trust for Lambda and one inline least-privilege policy. */
  private async ensureRole(logical: string, policy: PolicyDocument): Promise<{ arn: string; result: 'created' | 'updated' | 'unchanged' }> {
    const [region, account] = await Promise.all([this.aws.region(), this.aws.accountId()]);
    const fn = this.names.function(logical);
    return ensureServiceRole(this.aws, {
      name: this.names.functionRole(logical),
      path: this.names.rolePath,
      description: `Execution role of the iotctl function ${fn}`,
      trust: trustPolicy('lambda', { account, region }),
      policyName: FUNCTION_ROLE_POLICY,
      policy,
      tags: { ...ownerTags(this.owner), [TAG_ROLE_FOR]: fn },
    });
  }

  /**
   * Deletes the role only when iotctl created it for this function (its tag says so): the stage's role, or
   * the `iotctl-fn-<name>` role an older iotctl made for a function under its bare name.
   */
  private async removeRole(roleArn: string, functionName: string): Promise<void> {
    const RoleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    await deleteServiceRole(this.aws, RoleName, (tags) => tags[TAG_ROLE_FOR] === functionName && claimOf(tags, this.owner, true) !== 'foreign');
  }

  // ------------------------------------------------------------ on-failure queue

  /**
   * The on-failure queue a bare `onFailure: <name>` names: the stage's `names.queue(name)`, created (tagged)
   * when missing; one of anyone else is refused. With `write` false, only the ownership check.
   */
  private async ensureQueue(logical: string, write: boolean): Promise<'created' | 'updated' | 'unchanged'> {
    const { client, sdk } = await this.aws.get('sqs');
    const QueueName = this.names.queue(logical);
    const url = await this.queueUrl(QueueName);
    if (!url) {
      if (write) await client.send(new sdk.CreateQueueCommand({ QueueName, tags: ownerTags(this.owner) }), this.aws.sendOptions);
      return 'created';
    }
    const tags = (await client.send(new sdk.ListQueueTagsCommand({ QueueUrl: url }), this.aws.sendOptions)).Tags ?? {};
    if (assertClaimable('SQS queue', QueueName, tags, this.owner) === 'owned') return 'unchanged';
    if (write) await client.send(new sdk.TagQueueCommand({ QueueUrl: url, Tags: ownerTags(this.owner) }), this.aws.sendOptions);
    return 'updated';
  }

  private async queueUrl(QueueName: string, QueueOwnerAWSAccountId?: string): Promise<string | undefined> {
    const { client, sdk } = await this.aws.get('sqs');
    try {
      return (await client.send(new sdk.GetQueueUrlCommand({ QueueName, QueueOwnerAWSAccountId }), this.aws.sendOptions)).QueueUrl;
    } catch (error) {
      if (isAwsError(error, 'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue')) return undefined;
      throw error;
    }
  }

  /** Deletes the failure queues in `destinations` that this stage owns and no remaining mapping sends to. */
  private async removeQueues(destinations: string[]): Promise<void> {
    if (!destinations.length) return;
    const { client, sdk } = await this.aws.get('sqs');
    const account = await this.aws.accountId();
    const still = new Set((await this.listMappings()).map((m) => m.DestinationConfig?.OnFailure?.Destination));
    for (const arn of new Set(destinations)) {
      const [, , service, , owner, QueueName] = arn.split(':');
      if (service !== 'sqs' || owner !== account || still.has(arn) || !QueueName) continue;
      const url = await this.queueUrl(QueueName);
      if (!url) continue;
      const tags = (await client.send(new sdk.ListQueueTagsCommand({ QueueUrl: url }), this.aws.sendOptions)).Tags ?? {};
      if (claimOf(tags, this.owner) === 'owned') await client.send(new sdk.DeleteQueueCommand({ QueueUrl: url }), this.aws.sendOptions);
    }
  }

  // ------------------------------------------------------------ event source mapping

  private async listMappings(functionName?: string): Promise<EventSourceMappingConfiguration[]> {
    const { client, sdk } = await this.aws.get('lambda');
    const all: EventSourceMappingConfiguration[] = [];
    let Marker: string | undefined;
    do {
      const page = await client.send(new sdk.ListEventSourceMappingsCommand({ ...(functionName ? { FunctionName: functionName } : {}), Marker }), this.aws.sendOptions);
      all.push(...(page.EventSourceMappings ?? []));
      Marker = page.NextMarker;
    } while (Marker);
    return all;
  }

  private async waitStreamActive(streamArn: string): Promise<void> {
    const { client, sdk } = await this.aws.get('kinesis');
    await waitUntil(
      () =>
        client.send(new sdk.DescribeStreamSummaryCommand({ StreamARN: streamArn }), this.aws.sendOptions).then(
          (r) => r.StreamDescriptionSummary?.StreamStatus ?? 'UNKNOWN',
          (e: unknown) => (isAwsError(e, 'ResourceNotFoundException') ? 'not created yet' : Promise.reject(e)),
        ),
      (status) => status === 'ACTIVE' || status === 'UPDATING',
      { ...this.waits('DescribeStreamSummary', `the stream ${streamArn} to be ACTIVE`), service: 'kinesis', maxDelayMs: Math.max(this.pollMs, 2_000), state: (s) => s },
    );
  }

  /** Create, update or delete the function's mapping so it matches the spec's eventSource. */
  private async ensureMapping(functionName: string, es: EventSourceSpec | undefined, streamArn: string | undefined, destination: string | undefined): Promise<'created' | 'updated' | 'deleted' | 'unchanged'> {
    const { client, sdk } = await this.aws.get('lambda');
    const current = await this.listMappings(functionName);
    let result: 'created' | 'updated' | 'deleted' | 'unchanged' = 'unchanged';
    // Kinesis mappings from another stream (the spec moved) or with no eventSource left go away; a trigger
    // of another kind was added outside iotctl and stays.
    for (const m of current.filter((m) => m.EventSourceArn !== streamArn && m.EventSourceArn?.split(':')[2] === 'kinesis')) {
      await client.send(new sdk.DeleteEventSourceMappingCommand({ UUID: m.UUID! }), this.aws.sendOptions);
      result = 'deleted';
    }
    if (!es || !streamArn) return result;
    const settings = {
      BatchSize: es.batchSize,
      MaximumBatchingWindowInSeconds: es.maximumBatchingWindowSeconds,
      BisectBatchOnFunctionError: es.bisectBatchOnFunctionError,
      MaximumRetryAttempts: es.maximumRetryAttempts,
      MaximumRecordAgeInSeconds: es.maximumRecordAgeInSeconds,
      FunctionResponseTypes: es.reportBatchItemFailures ? ['ReportBatchItemFailures' as const] : [],
      DestinationConfig: { OnFailure: destination ? { Destination: destination } : {} },
    };
    let mine = current.find((m) => m.EventSourceArn === streamArn);
    // Where a mapping starts reading is fixed when it is created: a new position replaces the mapping (the plan says so).
    if (mine && !sameStart(mine, es)) {
      await this.waitMappingSettled(mine.UUID!);
      await client.send(new sdk.DeleteEventSourceMappingCommand({ UUID: mine.UUID! }), this.aws.sendOptions);
      await this.waitMappingDeleted(mine.UUID!);
      mine = undefined;
      result = 'updated';
    }
    const what = `the execution role of ${functionName} to reach Lambda with its permissions on ${streamArn}`;
    if (!mine) {
      // apply creates the stream in parallel with the function (services/apply.ts): Lambda takes a mapping
      // only from an ACTIVE stream, so wait for it (missing counts as not yet: its CreateStream is in flight).
      await this.waitStreamActive(streamArn);
      await this.retry(
        'CreateEventSourceMapping',
        what,
        () =>
          client.send(
            new sdk.CreateEventSourceMappingCommand({
              FunctionName: functionName,
              EventSourceArn: streamArn,
              Enabled: true,
              StartingPosition: es.startingPosition,
              ...(es.startingPosition === 'AT_TIMESTAMP' && es.startingPositionTimestamp ? { StartingPositionTimestamp: new Date(es.startingPositionTimestamp) } : {}),
              ...settings,
            }),
            this.aws.sendOptions,
          ),
        rolePropagating.eventSourceMapping,
      );
      return result === 'updated' ? 'updated' : 'created';
    }
    const differs =
      mine.BatchSize !== settings.BatchSize ||
      (mine.MaximumBatchingWindowInSeconds ?? 0) !== settings.MaximumBatchingWindowInSeconds ||
      (mine.BisectBatchOnFunctionError ?? false) !== settings.BisectBatchOnFunctionError ||
      (mine.MaximumRetryAttempts ?? -1) !== settings.MaximumRetryAttempts ||
      (mine.MaximumRecordAgeInSeconds ?? -1) !== settings.MaximumRecordAgeInSeconds ||
      (mine.FunctionResponseTypes ?? []).join(',') !== settings.FunctionResponseTypes.join(',') ||
      (mine.DestinationConfig?.OnFailure?.Destination || undefined) !== destination;
    if (!differs) return result;
    await this.waitMappingSettled(mine.UUID!);
    await this.retry('UpdateEventSourceMapping', what, () => client.send(new sdk.UpdateEventSourceMappingCommand({ UUID: mine.UUID!, ...settings }), this.aws.sendOptions), rolePropagating.eventSourceMapping);
    return 'updated';
  }

  /** A deleted mapping stays Deleting for a while; a new one on the same stream waits until it is gone. */
  private async waitMappingDeleted(uuid: string): Promise<void> {
    const { client, sdk } = await this.aws.get('lambda');
    const present = () =>
      client.send(new sdk.GetEventSourceMappingCommand({ UUID: uuid }), this.aws.sendOptions).then(
        () => true,
        (error) => {
          if (isAwsError(error, 'ResourceNotFoundException')) return false;
          throw error;
        },
      );
    await waitUntil(present, (stillThere) => !stillThere, {
      ...this.waits('GetEventSourceMapping', `event source mapping ${uuid} to be deleted`),
      state: () => 'Deleting',
      onTimeout: () => new UserError(`Event source mapping ${uuid} is still being deleted.`, 'Retry the deploy in a minute.', 'LAMBDA_TIMEOUT'),
    });
  }

  /** A mapping that is Creating or Updating refuses updates (ResourceInUseException). */
  private async waitMappingSettled(uuid: string): Promise<void> {
    const { client, sdk } = await this.aws.get('lambda');
    await waitUntil(
      () => client.send(new sdk.GetEventSourceMappingCommand({ UUID: uuid }), this.aws.sendOptions),
      (m) => !/^(Creating|Updating|Enabling|Disabling)$/.test(m.State ?? ''),
      {
        ...this.waits('GetEventSourceMapping', `event source mapping ${uuid} to settle`),
        state: (m) => m.State ?? 'unknown',
        onTimeout: (m) => new UserError(`Event source mapping ${uuid} is still ${m.State}.`, 'Retry the deploy in a minute.', 'LAMBDA_TIMEOUT'),
      },
    );
  }

  // ------------------------------------------------------------ remove

  /**
   * Deletes the function (`physical` when given: the old name of a moved function, else the stage's name of
   * `logical`), its mappings, the role iotctl made for it and its on-failure queue when iotctl made that and
   * no other function sends to it. Anyone else's function is refused.
   */
  async remove(logical: string, physical?: string): Promise<boolean> {
    const name = physical ?? this.names.function(logical);
    const found = await this.getFunction(name);
    if (!found) return false;
    // An older iotctl's function (`iotctl:managed` only) may go only as the old copy of a move.
    assertClaimable('Lambda function', name, found.tags, this.owner, physical !== undefined && found.tags[TAG_MANAGED] === 'true');
    const { client, sdk } = await this.aws.get('lambda');
    const mappings = await this.listMappings(name);
    for (const m of mappings) await client.send(new sdk.DeleteEventSourceMappingCommand({ UUID: m.UUID! }), this.aws.sendOptions);
    await client.send(new sdk.DeleteFunctionCommand({ FunctionName: name }), this.aws.sendOptions);
    if (found.config.Role) await this.removeRole(found.config.Role, name);
    await this.removeQueues(mappings.map((m) => m.DestinationConfig?.OnFailure?.Destination).filter((d): d is string => !!d));
    return true;
  }

  // ------------------------------------------------------------ invoke

  async invoke(name: string, event: unknown): Promise<InvokeResult> {
    const { client, sdk } = await this.aws.get('lambda');
    const out = await client.send(
      new sdk.InvokeCommand({ FunctionName: this.names.function(name), InvocationType: 'RequestResponse', LogType: 'Tail', Payload: Buffer.from(JSON.stringify(event ?? {})) }),
      this.aws.sendOptions,
    );
    const logTail = decodeLogTail(out.LogResult);
    const report = logTail.map(parseReport).find((r) => r !== undefined);
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    let payload: unknown = null;
    if (text) {
      try {
        payload = JSON.parse(text);
      } catch {
        payload = text;
      }
    }
    return {
      requestId: report?.requestId ?? out.$metadata.requestId ?? '',
      functionName: name,
      statusCode: out.StatusCode ?? 200,
      ...(out.FunctionError ? { functionError: out.FunctionError } : {}),
      payload,
      ...(report?.durationMs !== undefined ? { durationMs: report.durationMs } : {}),
      ...(report?.billedDurationMs !== undefined ? { billedDurationMs: report.billedDurationMs } : {}),
      ...(report?.initDurationMs !== undefined ? { initDurationMs: report.initDurationMs } : {}),
      ...(report?.maxMemoryUsedMb !== undefined ? { maxMemoryUsedMb: report.maxMemoryUsedMb } : {}),
      logTail,
    };
  }

  // ------------------------------------------------------------ logs

  async *logs(name: string, opts: { since?: number; limit?: number; follow?: boolean; signal?: AbortSignal }): AsyncIterable<LogEvent> {
    const { client, sdk } = await this.aws.get('logs');
    const logGroupName = lambdaLogGroup(this.names.function(name));
    const limit = opts.limit ?? Infinity;
    let startTime = opts.since ?? 0;
    // FilterLogEvents' startTime is inclusive and events can land late at the same ms: re-read from the
    // last timestamp and skip the ids already shown (only those at that last ms need remembering).
    let seen = new Set<string>();
    let emitted = 0;
    for (;;) {
      let nextToken: string | undefined;
      let newest = startTime;
      const seenAtNewest = new Set<string>();
      do {
        if (opts.signal?.aborted) return;
        let page;
        try {
          page = await client.send(new sdk.FilterLogEventsCommand({ logGroupName, startTime, nextToken }), opts.signal ? { abortSignal: opts.signal } : this.aws.sendOptions);
        } catch (error) {
          if (isAwsError(error, 'Cancelled') && opts.signal?.aborted) return;
          // No log group yet: the function has not run. With --follow, wait for its first lines.
          if (isAwsError(error, 'ResourceNotFoundException')) break;
          throw error;
        }
        for (const e of page.events ?? []) {
          const id = e.eventId ?? `${e.logStreamName}/${e.timestamp}/${e.message}`;
          if (seen.has(id)) continue;
          const ts = e.timestamp ?? 0;
          if (ts > newest) {
            newest = ts;
            seenAtNewest.clear();
          }
          if (ts === newest) seenAtNewest.add(id);
          const parsed = parseLogLine(e.message ?? '');
          yield { id, functionName: name, requestId: parsed.requestId, timestamp: ts, level: parsed.level, message: parsed.message };
          if (++emitted >= limit) return;
        }
        nextToken = page.nextToken;
      } while (nextToken);
      if (!opts.follow) return;
      if (newest > startTime) {
        startTime = newest;
        seen = seenAtNewest;
      } else {
        for (const id of seenAtNewest) seen.add(id);
      }
      try {
        await this.sleep(this.followMs, opts.signal);
      } catch {
        return;
      }
      if (opts.signal?.aborted) return;
    }
  }

  // ------------------------------------------------------------ failures

  /**
   * The on-failure destination's records, read with VisibilityTimeout 0 so they stay in the queue for the
   * next reader. Each read still counts as a receive (ApproximateReceiveCount rises, which matters when the
   * queue has a redrive policy). SQS returns at most 10 per call and samples its servers, so the loop
   * asks again until a round brings nothing new.
   */
  async failures(name: string, opts: { limit?: number }): Promise<FailureRecord[]> {
    const limit = opts.limit ?? 100;
    const destinations = [...new Set((await this.listMappings(this.names.function(name))).map((m) => m.DestinationConfig?.OnFailure?.Destination).filter((d): d is string => !!d))];
    if (!destinations.length) {
      if (!(await this.getFunction(this.names.function(name)))) throw new UserError(`Function ${name} does not exist.`, '`iotctl lambda list` shows the deployed functions.', 'FUNCTION_NOT_FOUND');
      return [];
    }
    const { client, sdk } = await this.aws.get('sqs');
    const records: FailureRecord[] = [];
    for (const destination of destinations) {
      const [, , service, , account, resource] = destination.split(':');
      if (service !== 'sqs')
        throw new UserError(`Function ${name} sends failures to ${destination}, which iotctl cannot read back (only SQS queues can).`, 'Subscribe an SQS queue to the topic and read it, or point eventSource.onFailure at an SQS queue.', 'FAILURES_UNREADABLE');
      const { QueueUrl } = await client.send(new sdk.GetQueueUrlCommand({ QueueName: resource!, QueueOwnerAWSAccountId: account }), this.aws.sendOptions);
      const ids = new Set<string>();
      for (let round = 0; round < Math.ceil(limit / 10) + 3 && records.length < limit; round++) {
        const out = await client.send(
          new sdk.ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: Math.min(10, limit - records.length), VisibilityTimeout: 0, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['SentTimestamp'] }),
          this.aws.sendOptions,
        );
        const fresh = (out.Messages ?? []).filter((m) => !ids.has(m.MessageId!));
        if (!fresh.length) break;
        for (const m of fresh) {
          ids.add(m.MessageId!);
          records.push(failureRecord(name, destination, m));
        }
      }
    }
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt)).slice(0, limit);
  }
}

// ---------------------------------------------------------------- helpers

function failureRecord(functionName: string, destination: string, m: { MessageId?: string; Body?: string; Attributes?: Record<string, string> }): FailureRecord {
  let record: Record<string, unknown>;
  try {
    const doc = JSON.parse(m.Body ?? '') as unknown;
    record = doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : { body: doc };
  } catch {
    record = { body: m.Body ?? '' };
  }
  // Lambda's on-failure record has its own timestamp; SQS's SentTimestamp is the fallback.
  const stamped = typeof record.timestamp === 'string' && !Number.isNaN(Date.parse(record.timestamp)) ? new Date(record.timestamp) : undefined;
  const sent = m.Attributes?.SentTimestamp ? new Date(Number(m.Attributes.SentTimestamp)) : undefined;
  return { id: m.MessageId!, functionName, destination, createdAt: (stamped ?? sent ?? new Date(0)).toISOString(), record };
}

/** `logical`: the stream and queue names the spec gave, where the mapping is on their current physical names. */
function summary(c: FunctionConfiguration, tags: Record<string, string>, mappings: EventSourceMappingConfiguration[], logical: { stream?: string; onFailure?: string }): FunctionSummary {
  const handler = c.Handler ?? '';
  return {
    name: c.FunctionName!,
    arn: c.FunctionArn!,
    template: tags[TAG_TEMPLATE] ?? null,
    // The exported function's name, as deployments give it (the file part is the artifact's).
    handler: handler.slice(handler.lastIndexOf('.') + 1),
    timeoutSeconds: c.Timeout ?? 3,
    memoryMb: c.MemorySize ?? 128,
    environment: specEnvironment(c.Environment?.Variables ?? {}, tags[TAG_DATABASE_ENV]),
    sha256: tags[TAG_CODE] && c.CodeSha256 && tags[TAG_CODE] !== c.CodeSha256 ? `code changed outside iotctl (CodeSha256 ${c.CodeSha256})` : (tags[TAG_SHA] ?? c.CodeSha256 ?? ''),
    eventSource: mappings[0] ? eventSourceOf(mappings[0], logical) : null,
    ...(c.Runtime ? { runtime: c.Runtime } : {}),
    updatedAt: isoOf(c.LastModified),
    state: c.LastUpdateStatus && c.LastUpdateStatus !== 'Successful' ? `${c.State}/${c.LastUpdateStatus}` : (c.State ?? 'Active'),
  };
}

/** The variables as the spec gave them: the database variables iotctl filled in read back as the template's empty DATABASE_URL. */
function specEnvironment(variables: Record<string, string>, injected: string | undefined): Record<string, string> {
  const keys = (injected ?? '').split(' ').filter(Boolean);
  if (!keys.length) return variables;
  const rest = Object.fromEntries(Object.entries(variables).filter(([k]) => !keys.includes(k)));
  return { ...rest, DATABASE_URL: '' };
}

/**
 * The mapping as the spec would write it. A stream or queue that is not the stage's name of the spec's (an
 * older iotctl's bare name) reads back as its ARN, so the plan shows that the mapping moves.
 */
function eventSourceOf(m: EventSourceMappingConfiguration, logical: { stream?: string; onFailure?: string }): EventSourceSpec {
  const destination = logical.onFailure ?? m.DestinationConfig?.OnFailure?.Destination;
  return {
    stream: logical.stream ?? m.EventSourceArn ?? '',
    batchSize: m.BatchSize ?? 100,
    maximumBatchingWindowSeconds: m.MaximumBatchingWindowInSeconds ?? 0,
    startingPosition: (m.StartingPosition as EventSourceSpec['startingPosition']) ?? 'TRIM_HORIZON',
    ...(m.StartingPositionTimestamp ? { startingPositionTimestamp: new Date(m.StartingPositionTimestamp).toISOString() } : {}),
    maximumRetryAttempts: m.MaximumRetryAttempts ?? -1,
    maximumRecordAgeInSeconds: m.MaximumRecordAgeInSeconds ?? -1,
    bisectBatchOnFunctionError: m.BisectBatchOnFunctionError ?? false,
    reportBatchItemFailures: (m.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
    ...(destination ? { onFailure: destination } : {}),
  };
}

/** Whether the mapping starts where the spec says (AWS cannot change this after creating the mapping). */
function sameStart(m: EventSourceMappingConfiguration, es: EventSourceSpec): boolean {
  if ((m.StartingPosition ?? 'TRIM_HORIZON') !== es.startingPosition) return false;
  if (es.startingPosition !== 'AT_TIMESTAMP') return true;
  const at = m.StartingPositionTimestamp ? new Date(m.StartingPositionTimestamp).getTime() : undefined;
  return at === (es.startingPositionTimestamp ? new Date(es.startingPositionTimestamp).getTime() : undefined);
}

function configDiffers(c: FunctionConfiguration, want: DesiredConfig): boolean {
  const vpc = c.VpcConfig;
  return (
    c.Runtime !== want.Runtime ||
    c.Handler !== want.Handler ||
    c.Role !== want.Role ||
    c.MemorySize !== want.MemorySize ||
    c.Timeout !== want.Timeout ||
    !sameJson(JSON.stringify(sortKeys(c.Environment?.Variables ?? {})), JSON.stringify(sortKeys(want.Environment.Variables))) ||
    [...(vpc?.SubnetIds ?? [])].sort().join(',') !== want.VpcConfig.SubnetIds.join(',') ||
    [...(vpc?.SecurityGroupIds ?? [])].sort().join(',') !== want.VpcConfig.SecurityGroupIds.join(',')
  );
}

// ---------------------------------------------------------------- IAM policy

type PolicyDocument = { Version: '2012-10-17'; Statement: Array<{ Sid: string; Effect: 'Allow'; Action: string[]; Resource: string | string[] }> };

/** ARNs in the caller's partition, region and account, of the stage's physical names. */
class Arns {
  constructor(
    readonly place: ArnPlace,
    private readonly names: StageNames,
  ) {}
  /** A logical stream of the spec (or an ARN, as is). */
  stream(name: string): string {
    return name.startsWith('arn:') ? name : arnOf('kinesis-stream', this.place, this.names.stream(name));
  }
  /** onFailure: an SQS or SNS ARN, or a bare name: the logical name of a queue iotctl keeps for this stage. */
  destination(value: string): string {
    return value.startsWith('arn:') ? value : arnOf('sqs-queue', this.place, this.names.queue(value));
  }
  logGroup(functionName: string): string {
    return arnOf('log-group', this.place, lambdaLogGroup(functionName));
  }
}

/**
 * Least privilege for one function: write its own log group; read its stream; VPC network interfaces
 * only with a VPC; its database secret or IAM database login when it has one; its failure destination.
 */
function rolePolicy(arns: Arns, fn: string, d: FunctionDeployment, ctx: { streamArn?: string; destination?: string; environment: Record<string, string> }): PolicyDocument {
  const logGroup = arns.logGroup(fn);
  const Statement: PolicyDocument['Statement'] = [
    { Sid: 'LogGroup', Effect: 'Allow', Action: ['logs:CreateLogGroup'], Resource: logGroup },
    { Sid: 'LogEvents', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${logGroup}:*` },
  ];
  if (ctx.streamArn) {
    Statement.push({
      Sid: 'ReadStream',
      Effect: 'Allow',
      Action: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:ListShards'],
      Resource: ctx.streamArn,
    });
    // ListStreams is an account-level action: IAM matches it only against "*".
    Statement.push({ Sid: 'ListStreams', Effect: 'Allow', Action: ['kinesis:ListStreams'], Resource: '*' });
  }
  if (d.vpc) {
    // Only the two Describe actions are "*"-only; Lambda's ENIs are the account's network interfaces in the region
    // (as Lambda's guide scopes DeleteNetworkInterface), made in the function's own subnets and security groups.
    const { region, account } = arns.place;
    const ec2 = (resource: string) => `arn:${partitionOf(region)}:ec2:${region}:${account}:${resource}`;
    const sorted = (ids: string[]) => [...ids].sort();
    Statement.push({ Sid: 'VpcDescribe', Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' });
    Statement.push({
      Sid: 'VpcCreateNetworkInterface',
      Effect: 'Allow',
      Action: ['ec2:CreateNetworkInterface'],
      Resource: [ec2('network-interface/*'), ...sorted(d.vpc.subnetIds).map((id) => ec2(`subnet/${id}`)), ...sorted(d.vpc.securityGroupIds).map((id) => ec2(`security-group/${id}`))],
    });
    Statement.push({ Sid: 'VpcNetworkInterfaces', Effect: 'Allow', Action: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'], Resource: ec2('network-interface/*') });
  }
  // Its database secret, and the role secrets the maintenance function sets the roles' passwords from (*_SECRET_ARN).
  const secrets = Object.entries(ctx.environment).filter(([k, v]) => /^([A-Z]+_)?SECRET_ARN$/.test(k) && v.startsWith('arn:')).map(([, v]) => v).sort();
  if (secrets.length) Statement.push({ Sid: 'DatabaseSecret', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: secrets.length === 1 ? secrets[0]! : secrets });
  if (/^(1|true|yes)$/i.test(ctx.environment.DATABASE_IAM_AUTH ?? '') && ctx.environment.DATABASE_USER) {
    // The instance's resource id is not known here; the database user bounds the grant.
    Statement.push({ Sid: 'DatabaseIamAuth', Effect: 'Allow', Action: ['rds-db:connect'], Resource: `arn:${partitionOf(arns.place.region)}:rds-db:${arns.place.region}:${arns.place.account}:dbuser:*/${ctx.environment.DATABASE_USER}` });
  }
  if (ctx.destination) {
    const sns = ctx.destination.split(':')[2] === 'sns';
    Statement.push({ Sid: 'OnFailureDestination', Effect: 'Allow', Action: [sns ? 'sns:Publish' : 'sqs:SendMessage'], Resource: ctx.destination });
  }
  return { Version: '2012-10-17', Statement };
}

// ---------------------------------------------------------------- small utilities

/** The last part of an ARN: the stream of a Kinesis ARN, the queue of an SQS one. */
function resourceName(arn: string | undefined): string {
  if (!arn) return '';
  const last = arn.split(':').pop()!;
  return last.slice(last.lastIndexOf('/') + 1);
}

function functionNameOf(arn: string | undefined): string {
  const parts = (arn ?? '').split(':');
  const i = parts.indexOf('function');
  return i >= 0 ? parts[i + 1]! : (arn ?? '');
}

function sameFunction(arn: string | undefined, c: FunctionConfiguration): boolean {
  return functionNameOf(arn) === c.FunctionName;
}

function isoOf(value: string | undefined): string {
  if (!value) return new Date(0).toISOString();
  const t = Date.parse(value.replace(/\+0000$/, 'Z'));
  return Number.isNaN(t) ? value : new Date(t).toISOString();
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

function sameJson(a: string, b: string): boolean {
  try {
    return JSON.stringify(canonical(JSON.parse(a))) === JSON.stringify(canonical(JSON.parse(b)));
  } catch {
    return a === b;
  }
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, canonical(x)]));
  return v;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
