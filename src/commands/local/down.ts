import { BaseCommand } from '../../base-command.js';
import { stopDaemon } from '../../targets/local/lifecycle.js';
import { info } from '../../ui/output.js';
import { DEFAULT_STAGE } from '../../spec/stages.js';

export default class LocalDown extends BaseCommand<typeof LocalDown> {
  static override summary = 'Stop the background local platform cleanly.';
  static override examples = ['<%= config.bin %> local down'];

  async run(): Promise<{ stopped: boolean; pid?: number; stoppedPostgresPid?: number }> {
    const result = await stopDaemon(this.ctx.paths.stateDir);
    if (!this.jsonEnabled()) {
      const of = this.ctx.stage === DEFAULT_STAGE ? '' : ` of stage ${this.ctx.stage}`;
      info(result.stopped ? `Stopped the local platform${of} (pid ${result.pid}).` : `The local platform${of} is not running.`);
      if (result.stoppedPostgresPid) info(`Stopped the embedded PostgreSQL (pid ${result.stoppedPostgresPid}) that a crashed platform left running.`);
    }
    return result;
  }
}
