import { partitionOf } from './naming.js';
import { tagMap } from './ownership.js';
import { isAwsError, type AwsClients } from './sdk.js';

/**
 * The one IAM module of the aws target: every service role iotctl makes (rules, functions, the datalake's
 * Firehose, transform and Scheduler roles, the legacy engine's and migrate's IoT Analytics roles, the scheduled
 * check's function and Scheduler roles, the database maintenance schedule's role, the fleet provisioning
 * templates' roles) is written,
 * checked for drift and deleted here, the same way:
 * - its trust policy names the one service that assumes it, with the confused-deputy conditions that service
 *   supports (trustPolicy);
 * - ensureServiceRole creates it with its tags and inline policy, and on an existing role rewrites only what
 *   drifted (trust, inline policy, missing tags): an unchanged role gets no write, so no IAM propagation wait;
 * - deleteServiceRole deletes it only when its tags say it is the caller's (inline and attached policies first).
 */

export type TrustedService = 'iot' | 'lambda' | 'firehose' | 'scheduler' | 'iotanalytics';

export const SERVICE_PRINCIPAL: Record<TrustedService, string> = {
  iot: 'iot.amazonaws.com',
  lambda: 'lambda.amazonaws.com',
  firehose: 'firehose.amazonaws.com',
  scheduler: 'scheduler.amazonaws.com',
  iotanalytics: 'iotanalytics.amazonaws.com',
};

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Record<string, unknown>[];
}

/** Where the role lives: the caller's account and region (the partition follows from the region). */
export interface RolePlace {
  account: string;
  region: string;
}

/**
 * Who may assume the role: the service, and only on behalf of this account (and, where the service says which
 * of its resources calls, only that one), as each service's confused-deputy guidance says:
 * - IoT: aws:SourceAccount and aws:SourceArn (the rule's ARN; a provisioning template's for its role);
 * - EventBridge Scheduler: aws:SourceAccount and aws:SourceArn (the schedule group, `default` here);
 * - IoT Analytics: aws:SourceAccount and aws:SourceArn (any of the account's IoT Analytics resources);
 * - Firehose: sts:ExternalId, which Firehose sets to the account id when it assumes a delivery stream's role;
 * - Lambda: none. Lambda assumes an execution role without a source ARN or account in the request context,
 *   and documents no condition for it; a condition here would lock the function out of its own role.
 */
export function trustPolicy(service: TrustedService, place: RolePlace, source?: { arn: string }): PolicyDocument {
  const partition = partitionOf(place.region);
  const statement: Record<string, unknown> = { Effect: 'Allow', Principal: { Service: SERVICE_PRINCIPAL[service] }, Action: 'sts:AssumeRole' };
  const account = { 'aws:SourceAccount': place.account };
  switch (service) {
    case 'iot':
      statement.Condition = { StringEquals: account, ArnLike: { 'aws:SourceArn': source?.arn ?? `arn:${partition}:iot:${place.region}:${place.account}:rule/*` } };
      break;
    case 'scheduler':
      statement.Condition = { StringEquals: account, ArnLike: { 'aws:SourceArn': source?.arn ?? `arn:${partition}:scheduler:${place.region}:${place.account}:schedule-group/default` } };
      break;
    case 'iotanalytics':
      statement.Condition = { StringEquals: account, ArnLike: { 'aws:SourceArn': source?.arn ?? `arn:${partition}:iotanalytics:${place.region}:${place.account}:*` } };
      break;
    case 'firehose':
      statement.Condition = { StringEquals: { 'sts:ExternalId': place.account } };
      break;
    case 'lambda':
      break;
  }
  return { Version: '2012-10-17', Statement: [statement] };
}

/** The service a trust policy names (its first statement's principal), for read-backs. */
export function trustedServiceOf(document: string | undefined): string | undefined {
  const doc = policyJson(document) as { Statement?: { Principal?: { Service?: string | string[] } }[] } | undefined;
  const s = doc?.Statement?.[0]?.Principal?.Service;
  return Array.isArray(s) ? s[0] : s;
}

export interface ServiceRole {
  name: string;
  path: string;
  description: string;
  trust: PolicyDocument;
  /** The one inline policy iotctl writes. */
  policyName: string;
  policy: object;
  /** Owner tags and the role's own marker (`iotctl:rule`, `iotctl:function`, ANALYTICS_TAG). */
  tags: Record<string, string>;
}

export type RoleResult = 'created' | 'updated' | 'unchanged';

/** IAM returns policy documents URL-encoded. */
export function policyJson(doc: string | undefined): unknown {
  if (!doc) return undefined;
  try {
    return JSON.parse(doc.startsWith('%') || doc.includes('%22') ? decodeURIComponent(doc) : doc);
  } catch {
    return undefined;
  }
}

/** Same document, whatever the key order. */
export function samePolicy(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, canonical(x)]));
  return v;
}

/** The role's tags, or undefined when there is no such role. */
export async function roleTags(aws: AwsClients, RoleName: string): Promise<Record<string, string> | undefined> {
  const { client, sdk } = await aws.get('iam');
  try {
    return tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName }), aws.sendOptions)).Tags);
  } catch (error) {
    if (isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) return undefined;
    throw error;
  }
}

/**
 * Creates the role, or brings an existing one in line: trust and inline policy rewritten only when they differ,
 * missing tags added. Ownership is the caller's to check first (each adapter has its own claim rules).
 */
export async function ensureServiceRole(aws: AwsClients, role: ServiceRole): Promise<{ arn: string; result: RoleResult }> {
  const { client, sdk } = await aws.get('iam');
  const { name: RoleName } = role;
  const PolicyDocument = JSON.stringify(role.policy);
  let existing;
  try {
    existing = (await client.send(new sdk.GetRoleCommand({ RoleName }), aws.sendOptions)).Role;
  } catch (error) {
    if (!isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) throw error;
  }
  const Tags = Object.entries(role.tags).map(([Key, Value]) => ({ Key, Value }));
  if (!existing) {
    const created = await client.send(
      new sdk.CreateRoleCommand({ RoleName, Path: role.path, Description: role.description, AssumeRolePolicyDocument: JSON.stringify(role.trust), Tags }),
      aws.sendOptions,
    );
    await client.send(new sdk.PutRolePolicyCommand({ RoleName, PolicyName: role.policyName, PolicyDocument }), aws.sendOptions);
    return { arn: created.Role!.Arn!, result: 'created' };
  }
  let changed = false;
  const tags = (await roleTags(aws, RoleName)) ?? {};
  if (Object.entries(role.tags).some(([k, v]) => tags[k] !== v)) {
    await client.send(new sdk.TagRoleCommand({ RoleName, Tags }), aws.sendOptions);
    changed = true;
  }
  if (!samePolicy(policyJson(existing.AssumeRolePolicyDocument), role.trust)) {
    await client.send(new sdk.UpdateAssumeRolePolicyCommand({ RoleName, PolicyDocument: JSON.stringify(role.trust) }), aws.sendOptions);
    changed = true;
  }
  let current: unknown;
  try {
    current = policyJson((await client.send(new sdk.GetRolePolicyCommand({ RoleName, PolicyName: role.policyName }), aws.sendOptions)).PolicyDocument);
  } catch (error) {
    if (!isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) throw error;
  }
  if (current === undefined || !samePolicy(current, role.policy)) {
    await client.send(new sdk.PutRolePolicyCommand({ RoleName, PolicyName: role.policyName, PolicyDocument }), aws.sendOptions);
    changed = true;
  }
  return { arn: existing.Arn!, result: changed ? 'updated' : 'unchanged' };
}

/**
 * Deletes the role when `mayDelete` accepts its tags (the caller's ownership rule): inline policies, attached
 * ones, then the role. False when there was none or it is not the caller's to delete.
 */
export async function deleteServiceRole(aws: AwsClients, RoleName: string, mayDelete: (tags: Record<string, string>) => boolean): Promise<boolean> {
  const { client, sdk } = await aws.get('iam');
  const tags = await roleTags(aws, RoleName);
  if (!tags || !mayDelete(tags)) return false;
  try {
    const { PolicyNames = [] } = await client.send(new sdk.ListRolePoliciesCommand({ RoleName }), aws.sendOptions);
    for (const PolicyName of PolicyNames) await client.send(new sdk.DeleteRolePolicyCommand({ RoleName, PolicyName }), aws.sendOptions);
    const { AttachedPolicies = [] } = await client.send(new sdk.ListAttachedRolePoliciesCommand({ RoleName }), aws.sendOptions);
    for (const p of AttachedPolicies) await client.send(new sdk.DetachRolePolicyCommand({ RoleName, PolicyArn: p.PolicyArn! }), aws.sendOptions);
    await client.send(new sdk.DeleteRoleCommand({ RoleName }), aws.sendOptions);
    return true;
  } catch (error) {
    // Deleted meanwhile: what was asked for.
    if (isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) return false;
    throw error;
  }
}
