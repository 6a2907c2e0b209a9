import type { AwsClients } from '../../src/targets/aws/sdk.js';

/** A trust policy for a Lambda execution role. */
export const LAMBDA_TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
/** The smallest zip Lambda takes (an empty archive). */
export const EMPTY_ZIP = new Uint8Array(Buffer.from('UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==', 'base64'));
export const TEAM_TAGS = { team: 'payments' };

/**
 * Another team's stream, role, function and queue in the same account, made with the SDK as their own
 * tooling would (tags of theirs, none of iotctl's): iotctl must never list, plan or prune them.
 */
export async function createTeamResources(aws: AwsClients): Promise<{ roleArn: string }> {
  const k = await aws.get('kinesis');
  await k.client.send(new k.sdk.CreateStreamCommand({ StreamName: 'payments-team-orders', ShardCount: 1 }));
  await k.client.send(new k.sdk.AddTagsToStreamCommand({ StreamName: 'payments-team-orders', Tags: TEAM_TAGS }));
  const iam = await aws.get('iam');
  const role = await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'payments-role', AssumeRolePolicyDocument: LAMBDA_TRUST, Tags: [{ Key: 'team', Value: 'payments' }] }));
  const lambda = await aws.get('lambda');
  await lambda.client.send(new lambda.sdk.CreateFunctionCommand({ FunctionName: 'payments-fn', Runtime: 'nodejs22.x', Role: role.Role!.Arn!, Handler: 'index.handler', Code: { ZipFile: EMPTY_ZIP }, Tags: TEAM_TAGS }));
  const sqs = await aws.get('sqs');
  await sqs.client.send(new sqs.sdk.CreateQueueCommand({ QueueName: 'payments-queue', tags: TEAM_TAGS }));
  return { roleArn: role.Role!.Arn! };
}
