import { UserError } from '../../ui/errors.js';

/**
 * Who owns a resource on AWS: every resource iotctl creates carries the project and stage tags (or, where
 * the service has no tags, the same pair as a marker in its description). Listing, planning and pruning
 * see only resources whose tags name this project and stage; a foreign one is never touched.
 */

import { DEFAULT_STAGE } from '../../spec/stages.js';

export { DEFAULT_STAGE };

export const TAG_PROJECT = 'iotctl:project';
export const TAG_STAGE = 'iotctl:stage';
/** The marker older iotctl versions wrote (functions, their roles, the database secret). */
export const TAG_MANAGED = 'iotctl:managed';

/** On resources the analytics engine owns where other sections list the same type (transform functions). */
export const ANALYTICS_TAG = 'iotctl:analytics';
/** On the functions the database section runs (maintenance, query): not the `functions` section's to list or prune. */
export const DATABASE_TAG = 'iotctl:database';

export interface Owner {
  project: string;
  stage: string;
  /** `apply --adopt`: a resource the spec names that no iotctl deployment owns is taken over (tagged). */
  adopt?: boolean;
}

export function ownerOf(project: string, stage = DEFAULT_STAGE, adopt = false): Owner {
  return adopt ? { project, stage, adopt } : { project, stage };
}

/** The tags every resource iotctl creates carries. */
export function ownerTags(o: Owner): Record<string, string> {
  return { [TAG_MANAGED]: 'true', [TAG_PROJECT]: o.project, [TAG_STAGE]: o.stage };
}

/** The same, as the `[{Key, Value}]` list IAM, Firehose and S3 take. */
export function ownerTagList(o: Owner): { Key: string; Value: string }[] {
  return Object.entries(ownerTags(o)).map(([Key, Value]) => ({ Key, Value }));
}

export const tagMap = (list: { Key?: string; Value?: string }[] | undefined): Record<string, string> => Object.fromEntries((list ?? []).map((t) => [t.Key!, t.Value ?? '']));

/**
 * - owned: the tags name this project and stage;
 * - legacy: made by an iotctl before the project/stage tags (this project without a stage, or
 *   `legacyMarker`: that version's marker and no project); planned only when the spec names it, then tagged;
 * - foreign: anything else (no tags, another project or stage).
 */
export type Claim = 'owned' | 'legacy' | 'foreign';

export function claimOf(tags: Record<string, string>, o: Owner, legacyMarker = false): Claim {
  if (tags[TAG_PROJECT] === o.project && tags[TAG_STAGE] === o.stage) return 'owned';
  // Older versions wrote the project alone (analytics, secrets), or only their marker.
  if (tags[TAG_PROJECT] === o.project && tags[TAG_STAGE] === undefined) return 'legacy';
  if (tags[TAG_PROJECT] === undefined && legacyMarker) return 'legacy';
  return 'foreign';
}

export const owned = (tags: Record<string, string>, o: Owner): boolean => claimOf(tags, o) === 'owned';

/** Who the tags say owns it, for messages. */
export function describeOwner(tags: Record<string, string>): string {
  if (tags[TAG_PROJECT]) return `iotctl project ${tags[TAG_PROJECT]}, stage ${tags[TAG_STAGE] ?? '(none)'}`;
  if (tags[TAG_MANAGED]) return 'an iotctl deployment of another project';
  return 'no iotctl project (it carries no iotctl tags)';
}

/** The refusal for a resource of the spec's name that this project and stage do not own. */
export function notOurs(kind: string, name: string, tags: Record<string, string>, o: Owner): UserError {
  const ofIotctl = tags[TAG_PROJECT] !== undefined;
  return new UserError(
    `The ${kind} ${name} already exists in this account and region, and iotctl project ${o.project} (stage ${o.stage}) does not manage it: per its tags its owner is ${describeOwner(tags)}.`,
    ofIotctl
      ? `Rename the ${kind} in iotctl.yaml so that it does not collide; iotctl never takes over another project's or stage's resource.`
      : `Rename the ${kind} in iotctl.yaml so that it does not collide, or take this one over: \`iotctl apply --adopt\` tags it as this project's and stage's (shown in the plan, applied only once you confirm).`,
    'RESOURCE_NOT_OURS',
  );
}

/**
 * Refuses unless the claim is owned or legacy. With `apply --adopt` (Owner.adopt), a resource no iotctl
 * deployment owns is claimed as legacy: the plan shows the tags it gets. Another project's or stage's
 * resource is never adopted: that is how staging would take over prod's stream.
 */
export function assertClaimable(kind: string, name: string, tags: Record<string, string>, o: Owner, legacyMarker = false): Claim {
  const claim = claimOf(tags, o, legacyMarker);
  if (claim !== 'foreign') return claim;
  if (o.adopt && tags[TAG_PROJECT] === undefined) return 'legacy';
  throw notOurs(kind, name, tags, o);
}

/**
 * Where a service has no tags (Athena named queries, Scheduler schedules), the owner is written at the end
 * of the description: `[iotctl:project=<p> stage=<s>]`.
 */
export function ownerMarker(o: Owner): string {
  return `[iotctl:project=${o.project} stage=${o.stage}]`;
}

const MARKER = / ?\[iotctl:project=([^ \]]+) stage=([^ \]]+)\]$/;

/** The owner written in a description, as tags (empty when there is none). */
export function markerTags(description: string | undefined): Record<string, string> {
  const m = MARKER.exec(description ?? '');
  return m ? { [TAG_PROJECT]: m[1]!, [TAG_STAGE]: m[2]! } : {};
}

export const stripMarker = (description: string): string => description.replace(MARKER, '');

export function withMarker(description: string, o: Owner): string {
  const base = stripMarker(description);
  return base ? `${base} ${ownerMarker(o)}` : ownerMarker(o);
}
