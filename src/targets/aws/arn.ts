/** The AWS partition of a region: ARNs in China and GovCloud are not `arn:aws:`. */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** An ARN in the partition of `region`: `arn(region, 'iam', '', account, 'role/x')`. */
export function arn(region: string, service: string, arnRegion: string, account: string, resource: string): string {
  return `arn:${partitionOf(region)}:${service}:${arnRegion}:${account}:${resource}`;
}
