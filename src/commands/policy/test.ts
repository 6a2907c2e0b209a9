import { BaseCommand, Flags } from '../../base-command.js';
import { readUserFile } from '../../services/files.js';
import { evaluatePolicy, validatePolicyDocument } from '../../iot/policy/index.js';
import { UserError } from '../../ui/errors.js';
import { printTable } from '../../ui/output.js';

export default class PolicyTest extends BaseCommand<typeof PolicyTest> {
  static override summary = 'Evaluate an IoT policy document for one request, as AWS IoT Core would.';
  static override examples = [
    '<%= config.bin %> policy test --policy policy.json --action iot:Publish --resource arn:aws:iot:us-east-1:123456789012:topic/dt/demo/sensor-1/telemetry --client-id sensor-1 --thing sensor-1',
    '<%= config.bin %> policy test --policy policy.json --action iot:Connect --resource arn:aws:iot:us-east-1:123456789012:client/sensor-1 --client-id sensor-1 --connect-attribute PersistentConnect',
  ];
  static override flags = {
    policy: Flags.string({ required: true, description: 'Policy document (JSON file).' }),
    action: Flags.string({ required: true, description: 'e.g. iot:Connect, iot:Publish, iot:Subscribe, iot:Receive.' }),
    resource: Flags.string({ required: true, description: 'Resource ARN (topic/, topicfilter/, client/...).' }),
    'client-id': Flags.string({ required: true, description: 'MQTT client id of the request.' }),
    thing: Flags.string({ description: 'Thing attached to the certificate.' }),
    'thing-type': Flags.string({ description: 'Thing type name.' }),
    attribute: Flags.string({ description: 'Thing attribute key=value (repeatable).', multiple: true }),
    'connect-attribute': Flags.string({ description: 'iot:ConnectAttributes of an iot:Connect (repeatable).', multiple: true, options: ['PersistentConnect', 'LastWill'] }),
  };

  async run(): Promise<unknown> {
    const text = readUserFile(this.flags.policy, 'Pass a JSON policy document with --policy.').toString('utf8');
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (e) {
      throw new UserError(`The policy ${this.flags.policy} is not JSON: ${(e as Error).message}`, 'Pass a JSON policy document with --policy.', 'POLICY_INVALID');
    }
    const problems = validatePolicyDocument(document);
    if (problems.length) throw new UserError(`The policy is invalid:\n  ${problems.join('\n  ')}`, 'Fix the document (see AWS IoT Core policy docs).', 'POLICY_INVALID');
    const attributes = Object.fromEntries((this.flags.attribute ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const result = evaluatePolicy(document as never, {
      action: this.flags.action, resource: this.flags.resource, clientId: this.flags['client-id'],
      thingName: this.flags.thing, thingTypeName: this.flags['thing-type'], thingAttributes: attributes, isAttached: Boolean(this.flags.thing),
      connectAttributes: this.flags['connect-attribute'] ?? [],
    });
    if (!this.jsonEnabled()) {
      process.stdout.write(`${result.decision}\n`);
      await printTable(result.statements, [
        { header: '#', get: (s) => s.index },
        { header: 'Sid', get: (s) => s.sid },
        { header: 'Effect', get: (s) => s.effect },
        { header: 'Matched', get: (s) => s.matched },
        { header: 'Reason', get: (s) => s.reason },
      ]);
    }
    return result;
  }
}
