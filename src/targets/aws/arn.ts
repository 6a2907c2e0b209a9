import { partitionOf } from './naming.js';

export { partitionOf };

/**
 * A policy document written with `arn:aws:` ARNs (the device policy iotctl builds works on both targets)
 * in the partition of `region`, and back (`back`), so an unchanged document reads back equal.
 */
export function policyInPartition(json: string, region: string, back = false): string {
  const p = partitionOf(region);
  if (p === 'aws') return json;
  return back ? json.replaceAll(`"arn:${p}:`, '"arn:aws:') : json.replaceAll('"arn:aws:', `"arn:${p}:`);
}

/** An ARN in the partition of `region`: `arn(region, 'iam', '', account, 'role/x')`. */
export function arn(region: string, service: string, arnRegion: string, account: string, resource: string): string {
  return `arn:${partitionOf(region)}:${service}:${arnRegion}:${account}:${resource}`;
}
