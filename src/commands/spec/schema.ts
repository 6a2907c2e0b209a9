import { z } from 'zod';
import { BaseCommand } from '../../base-command.js';
import { specSchema } from '../../spec/schema.js';

export default class SpecSchema extends BaseCommand<typeof SpecSchema> {
  static override summary = 'Print the JSON Schema of iotctl.yaml (for editor completion and validation).';
  static override examples = ['<%= config.bin %> spec schema > iotctl.schema.json'];

  async run(): Promise<unknown> {
    const schema = { $id: 'https://iotctl.dev/schema/iotctl.yaml.json', title: 'iotctl.yaml', ...z.toJSONSchema(specSchema, { io: 'input', unrepresentable: 'any' }) };
    if (!this.jsonEnabled()) process.stdout.write(JSON.stringify(schema, null, 2) + '\n');
    return schema;
  }
}
