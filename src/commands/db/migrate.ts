import { BaseCommand, Flags } from '../../base-command.js';
import { specIfPresent, withDatabase } from '../../db/cli.js';
import { VIA_OPTIONS, withVia } from '../../db/via.js';
import { migrate, type MigrationResult } from '../../db/migrations.js';
import { printLine, warn } from '../../ui/output.js';

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override summary = 'Create or upgrade the PostgreSQL schema (iot_messages, iot_ingest_errors).';
  static override description =
    'Idempotent: applies only the migrations the database does not have yet, each in its own transaction. Concurrent runs are safe (an advisory lock serializes them). The server is DATABASE_URL, else the PG* variables, else database.url in iotctl.yaml, else the running local platform.';
  static override examples = ['<%= config.bin %> db migrate', 'DATABASE_URL=postgres://user@db:5432/iot <%= config.bin %> db migrate --json'];

  static override flags = {
    via: Flags.string({ description: 'How to reach the database: direct, lambda (aws: the maintenance function in its VPC, as the schema owner), or auto (direct when it answers within 2 s).', options: [...VIA_OPTIONS], default: 'auto', env: 'IOTCTL_VIA' }),
  };

  async run(): Promise<MigrationResult & { database: string; source: string }> {
    let viaLambda: (MigrationResult & { database: string; source: string }) | undefined;
    if (specIfPresent(this.ctx)) {
      viaLambda = await withVia(this.ctx, this.flags.via, 'owner', async (via, target) => {
        if (via !== 'lambda') return undefined;
        const ops = target.databaseOps!;
        const out = (await ops.invokeMaintenance({ migrate: true })) as unknown as MigrationResult;
        return { ...out, database: 'the maintenance function', source: 'lambda' };
      });
    }
    const { result, target } = viaLambda
      ? { result: viaLambda as MigrationResult, target: { display: viaLambda.database, source: viaLambda.source } }
      : await withDatabase(this.ctx, 'owner', async (client, target) => ({ result: await migrate(client), target }));
    if (!this.jsonEnabled()) {
      if (result.applied.length === 0) printLine(`${target.display}: schema is up to date (version ${result.version}).`);
      else {
        printLine(`${target.display}: applied ${result.applied.length} migration${result.applied.length === 1 ? '' : 's'}, now at version ${result.version}.`);
        for (const m of result.applied) printLine(`  ${m.version}  ${m.name}  (${m.ms} ms)`);
      }
      if (result.roles?.created.length) printLine(`  created roles ${result.roles.created.join(', ')}`);
    }
    // Also with --json (on stderr): a database without its least-privilege roles must not pass unnoticed.
    if (result.roles?.warning) warn(result.roles.warning);
    return { database: target.display, source: target.source, ...result };
  }
}
