import { BaseCommand } from '../../base-command.js';
import { withDatabase } from '../../db/cli.js';
import { migrate, type MigrationResult } from '../../db/migrations.js';
import { printLine, warn } from '../../ui/output.js';

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override summary = 'Create or upgrade the PostgreSQL schema (iot_messages, iot_ingest_errors).';
  static override description =
    'Idempotent: applies only the migrations the database does not have yet, each in its own transaction. Concurrent runs are safe (an advisory lock serializes them). The server is DATABASE_URL, else the PG* variables, else database.url in iotctl.yaml, else the running local platform.';
  static override examples = ['<%= config.bin %> db migrate', 'DATABASE_URL=postgres://user@db:5432/iot <%= config.bin %> db migrate --json'];

  async run(): Promise<MigrationResult & { database: string; source: string }> {
    const { result, target } = await withDatabase(this.ctx, 'owner', async (client, target) => ({ result: await migrate(client), target }));
    if (!this.jsonEnabled()) {
      if (result.applied.length === 0) printLine(`${target.display}: schema is up to date (version ${result.version}).`);
      else {
        printLine(`${target.display}: applied ${result.applied.length} migration${result.applied.length === 1 ? '' : 's'}, now at version ${result.version}.`);
        for (const m of result.applied) printLine(`  ${m.version}  ${m.name}  (${m.ms} ms)`);
      }
      if (result.roles.created.length) printLine(`  created roles ${result.roles.created.join(', ')}`);
    }
    // Also with --json (on stderr): a database without its least-privilege roles must not pass unnoticed.
    if (result.roles.warning) warn(result.roles.warning);
    return { database: target.display, source: target.source, ...result };
  }
}
