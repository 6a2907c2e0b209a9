/** The AWS IoT Core policy actions and the resource type each one is checked against. */

export type IotResourceKind = 'client' | 'topic' | 'topicfilter' | 'thing' | 'rolealias' | '*';

/** From "AWS IoT Core policy actions" and "AWS IoT Core action resources". */
export const IOT_POLICY_ACTIONS: Readonly<Record<string, IotResourceKind>> = {
  // MQTT
  'iot:Connect': 'client',
  'iot:DeleteConnection': 'client',
  'iot:Publish': 'topic',
  'iot:Receive': 'topic',
  'iot:RetainPublish': 'topic',
  'iot:Subscribe': 'topicfilter',
  'iot:GetRetainedMessage': 'topic',
  'iot:ListRetainedMessages': '*',
  // Device Shadow
  'iot:GetThingShadow': 'thing',
  'iot:UpdateThingShadow': 'thing',
  'iot:DeleteThingShadow': 'thing',
  'iot:ListNamedShadowsForThing': '*',
  // Jobs
  'iotjobsdata:DescribeJobExecution': 'thing',
  'iotjobsdata:GetPendingJobExecutions': 'thing',
  'iotjobsdata:StartNextPendingJobExecution': 'thing',
  'iotjobsdata:UpdateJobExecution': 'thing',
  // Credentials provider
  'iot:AssumeRoleWithCertificate': 'rolealias',
};

const BY_LOWER_NAME = new Map(Object.keys(IOT_POLICY_ACTIONS).map((name) => [name.toLowerCase(), name]));

/** The canonical spelling of a known action (`IOT:publish` -> `iot:Publish`), or undefined. */
export function canonicalAction(action: string): string | undefined {
  return BY_LOWER_NAME.get(action.toLowerCase());
}

/** The resource type the action is checked against, e.g. `topicfilter` for `iot:Subscribe`. */
export function resourceKindOf(action: string): IotResourceKind | undefined {
  const name = canonicalAction(action);
  return name === undefined ? undefined : IOT_POLICY_ACTIONS[name];
}

export const DEFAULT_REGION = 'local';
export const DEFAULT_ACCOUNT = '000000000000';

/** `arn:aws:iot:<region>:<account>:<kind>/<name>`. The defaults are the local platform's. */
export function iotArn(
  kind: 'topic' | 'topicfilter' | 'client' | 'thing',
  name: string,
  region = DEFAULT_REGION,
  account = DEFAULT_ACCOUNT,
): string {
  return `arn:aws:iot:${region}:${account}:${kind}/${name}`;
}

/** Accepts `topic/a/b` (and the other short forms) for a request resource, as a convenience. */
export function normalizeRequestResource(resource: string): string {
  const short = /^(topic|topicfilter|client|thing)\/(.*)$/s.exec(resource);
  return short ? iotArn(short[1] as 'topic', short[2]!) : resource;
}
