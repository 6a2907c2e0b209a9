import { BaseCommand, Flags } from '../../base-command.js';
import { resetState } from '../../targets/local/lifecycle.js';
import { UserError } from '../../ui/errors.js';
import { info } from '../../ui/output.js';

export default class LocalReset extends BaseCommand<typeof LocalReset> {
  static override summary = 'Delete all local platform state: CA, devices, rules, stream, database and lake.';
  static override examples = ['<%= config.bin %> local reset --yes'];
  static override flags = { yes: Flags.boolean({ description: 'Confirm: this deletes every local certificate, message and table.' }) };

  async run(): Promise<{ stateDir: string; removed: string[] }> {
    const stateDir = this.ctx.paths.stateDir;
    if (!this.flags.yes) throw new UserError(`This deletes everything under ${stateDir}.`, 'Run again with --yes to confirm.', 'CONFIRMATION_REQUIRED');
    const { removed } = await resetState(stateDir);
    if (!this.jsonEnabled()) info(removed.length ? `Removed ${stateDir}.` : 'Nothing to reset.');
    return { stateDir, removed };
  }
}
