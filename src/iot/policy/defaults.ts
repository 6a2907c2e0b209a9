/** The least-privilege device policy iotctl attaches to every device certificate by default. */
import type { PolicyDocument, PolicyStatement } from './types.js';

export interface DevicePolicyTopics {
  /** Topic(s) a device publishes telemetry on, e.g. `dt/acme/${thing}/telemetry`. */
  telemetryTopic: string | readonly string[];
  /** MQTT filter(s) a device subscribes to for commands, e.g. `cmd/acme/${thing}/#`. */
  commandsFilter: string | readonly string[];
}

/** Region and account wildcards: the same document works on AWS and on the local platform. */
const ARN_PREFIX = 'arn:aws:iot:*:*:';
const THING_NAME = '${iot:Connection.Thing.ThingName}';

/** Policy-text escape of a literal MQTT topic fragment: `*` and `?` would otherwise be wildcards. */
const escapeLiteral = (text: string) => text.replace(/[*?]/g, (c) => '${' + c + '}');

/**
 * A topic template as policy text: `${thing}` becomes the thing-name policy variable, the rest is
 * literal. `mapLevel` may rewrite whole MQTT levels (used to turn `+`/`#` into policy wildcards).
 */
function templateToPolicy(template: string, mapLevel?: (level: string, isLast: boolean) => string | undefined): string {
  const unknown = /\$\{(?!thing\})[^}]*\}/.exec(template);
  if (unknown) throw new Error(`Unknown placeholder ${unknown[0]} in topic template "${template}": only \${thing} is left to substitute`);
  const levels = template.split('/');
  return levels
    .map((level, i) => mapLevel?.(level, i === levels.length - 1) ?? level.split('${thing}').map(escapeLiteral).join(THING_NAME))
    .join('/');
}

function assertTopicName(topic: string): void {
  if (/[+#]/.test(topic)) throw new Error(`Telemetry topic "${topic}" may not contain the MQTT wildcards + or #`);
  if (topic === '') throw new Error('The telemetry topic is empty');
}

function assertTopicFilter(filter: string): void {
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if ((level.includes('+') && level !== '+') || (level.includes('#') && (level !== '#' || i !== levels.length - 1))) {
      throw new Error(`"${filter}" is not a valid MQTT topic filter: + must fill a whole level, # must be the whole last level`);
    }
  });
}

/**
 * The topics an MQTT filter can deliver, as policy resource names for iot:Receive. `+` becomes `*`
 * (which, unlike `+`, can span levels: still only inside the device's own prefix) and a trailing `#`
 * covers both the parent topic and everything under it, as MQTT defines it.
 */
function receivePatterns(filter: string): string[] {
  const wildcardLevel = (level: string) => (level === '+' ? '*' : undefined);
  if (filter === '#') return ['*'];
  if (!filter.endsWith('/#')) return [templateToPolicy(filter, wildcardLevel)];
  const parent = templateToPolicy(filter.slice(0, -2), wildcardLevel);
  return [parent, `${parent}/*`];
}

const list = (value: string | readonly string[]): readonly string[] => (typeof value === 'string' ? [value] : value);

/**
 * A device may connect only with its own thing name as client id, and only while its certificate is
 * attached to that thing; publish only to its telemetry topic(s); subscribe only to its command
 * filter(s); and receive only on the topics those filters cover. The shape follows AWS's own
 * "Connect and publish" and "Publish/Subscribe" policy examples.
 *
 * Topic templates come with `${project}` already substituted; `${thing}` becomes
 * `${iot:Connection.Thing.ThingName}`. In the Subscribe resource, MQTT's `#` and `+` stay literal:
 * a policy matches the filter text the device subscribes with.
 */
export function defaultDevicePolicy(opts: DevicePolicyTopics): PolicyDocument {
  const telemetry = list(opts.telemetryTopic);
  const commands = list(opts.commandsFilter);
  telemetry.forEach(assertTopicName);
  commands.forEach(assertTopicFilter);

  const statements: PolicyStatement[] = [
    {
      Sid: 'Connect',
      Effect: 'Allow',
      Action: 'iot:Connect',
      Resource: `${ARN_PREFIX}client/${THING_NAME}`,
      Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
    },
    {
      Sid: 'PublishTelemetry',
      Effect: 'Allow',
      Action: 'iot:Publish',
      Resource: telemetry.map((topic) => `${ARN_PREFIX}topic/${templateToPolicy(topic)}`),
    },
    {
      Sid: 'SubscribeCommands',
      Effect: 'Allow',
      Action: 'iot:Subscribe',
      Resource: commands.map((filter) => `${ARN_PREFIX}topicfilter/${templateToPolicy(filter)}`),
    },
    {
      Sid: 'ReceiveCommands',
      Effect: 'Allow',
      Action: 'iot:Receive',
      Resource: [...new Set(commands.flatMap(receivePatterns))].map((topic) => `${ARN_PREFIX}topic/${topic}`),
    },
  ];
  return { Version: '2012-10-17', Statement: statements };
}
